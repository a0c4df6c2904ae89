"""The wrong-answer audit of a semantic cache: which cached answers would be served for another question.

For every entry, its nearest other entries by the stored vectors (no model needed): from the
all-pairs engine over the vectors streamed by the scan (allpairs.py, the default), or from the
index's own KNN (neighbours.iter_nearest, --method knn). On a Redis Cluster the scan reads every
shard; without a search coordinator an index covers one shard, so knn falls back to the exact
all-pairs search there (and says so). A pair closer than the cache's threshold
whose answers differ is a collision: asking one question returns the other's answer. Pairs only
count within one lookup scope, the way each library filters (SemanticLayout.lookup_scope):
LangChain compares the llm_string of the hit (another model's entry is a miss, not a wrong answer),
RedisVL and LiteLLM filter on their filter fields.

From the same pass: the nearest-neighbour distance histogram, the worst pairs, and the largest
threshold with no collision. With the cache's embedding model: precision/recall on a labelled set
(labelled.py), and the same audit on the bare user text, which shows how much LangChain's serialised
message wrapper compresses distances.
"""

from __future__ import annotations

import heapq
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import redis

from ..errors import ConfigError, NotFound, UsageError
from ..layouts import DEFAULT_SEMANTIC, Context, Entry, semantic_layout
from ..server.topology import search_fans_out
from .labelled import LabelledReport, LabelledSet, evaluate, just_below
from .neighbours import NearestList, NearestStats, SemanticCache, iter_nearest, semantic_caches
from .vectorizers import load_vectorizer, spec_for_cache, threshold_for_cache

BIN = 0.005  # histogram resolution while streaming (cosine distance spans 0..2)
NBINS = int(2 / BIN) + 1
PAIR_IDS_MAX = 500_000  # unordered pairs remembered for de-duplication; beyond, counts are lower bounds


@dataclass
class AuditOptions:
    cache: str | None = None
    threshold: float | None = None  # None: config file, else the library's default
    k: int = 10  # neighbours per entry
    top: int = 10  # worst pairs kept
    model: str | None = None
    embedding: str | None = None  # vectorizer SPEC overriding the config file
    labelled: LabelledSet | None = None
    min_precision: float = 0.99
    bare: bool = True  # compare with the bare text when a model is known
    bare_sample: int = 300
    method: str = "auto"  # neighbour search: auto | exact | ivf (allpairs.py) | knn (the index's own KNN)


@dataclass
class Pair:
    distance: float
    a: Entry
    b: Entry

    def to_dict(self) -> dict:
        return {
            "distance": round(self.distance, 6),
            "model": self.a.model,
            "a": {"key": self.a.key, "prompt": self.a.prompt, "answer": self.a.answer},
            "b": {"key": self.b.key, "prompt": self.b.prompt, "answer": self.b.answer},
        }


@dataclass
class Histogram:
    """Nearest-neighbour distances in fixed bins (streamed), summarised for display."""

    counts: list[int] = field(default_factory=lambda: [0] * NBINS)
    total: int = 0
    low: float | None = None
    high: float | None = None

    def add(self, d: float) -> None:
        self.counts[min(NBINS - 1, max(0, int(d / BIN)))] += 1
        self.total += 1
        self.low = d if self.low is None else min(self.low, d)
        self.high = d if self.high is None else max(self.high, d)

    def quantile(self, q: float) -> float | None:
        if not self.total:
            return None
        seen, want = 0, q * self.total
        for i, c in enumerate(self.counts):
            seen += c
            if seen >= want:
                return round((i + 0.5) * BIN, 4)
        return self.high

    def rows(self, buckets: int = 12, include: float | None = None) -> list[tuple[float, float, int]]:
        """(from, to, count) over the occupied range (stretched to `include`), in about `buckets` rows."""
        if not self.total or self.low is None or self.high is None:
            return []
        first = int(self.low / BIN)
        last = min(NBINS - 1, int(self.high / BIN))
        if include is not None:
            first, last = min(first, int(include / BIN)), max(last, min(NBINS - 1, int(include / BIN)))
        width = max(1, -(-(last - first + 1) // buckets))
        out = []
        for start in range(first, last + 1, width):
            out.append(
                (round(start * BIN, 4), round((start + width) * BIN, 4), sum(self.counts[start : start + width]))
            )
        return out

    def to_dict(self) -> dict:
        return {
            "entries": self.total,
            "min": self.low,
            "median": self.quantile(0.5),
            "max": self.high,
            "bins": [{"from": a, "to": b, "count": c} for a, b, c in self.rows()],
        }


@dataclass
class BareComparison:
    """The same audit on a sample, with the bare user text embedded instead of the stored string."""

    sample: int
    threshold: float
    median_nn_stored: float | None
    median_nn_bare: float | None
    collisions_stored: int
    collisions_bare: int
    safe_threshold_stored: float | None
    safe_threshold_bare: float | None
    labelled: LabelledReport | None = None

    def to_dict(self) -> dict:
        return {
            "sample": self.sample,
            "threshold": self.threshold,
            "median_nn_stored": self.median_nn_stored,
            "median_nn_bare": self.median_nn_bare,
            "collisions_stored": self.collisions_stored,
            "collisions_bare": self.collisions_bare,
            "safe_threshold_stored": self.safe_threshold_stored,
            "safe_threshold_bare": self.safe_threshold_bare,
            "labelled": self.labelled.to_dict() if self.labelled else None,
        }


@dataclass
class CacheAudit:
    cache: str
    index: str
    library: str
    threshold: float
    threshold_source: str
    k: int
    entries: int = 0
    scopes: int = 0  # distinct lookup scopes (models / filter values)
    colliding_pairs: int = 0  # unordered pairs within the threshold, same scope, different answers
    colliding_entries: int = 0  # entries with at least one such neighbour
    pairs_exact: bool = True  # False when the pair count is a lower bound
    k_saturated: int = 0  # entries whose k nearest were all within the threshold (more pairs may exist)
    worst: list[Pair] = field(default_factory=list)
    nn: Histogram = field(default_factory=Histogram)
    closest_conflict: float | None = None  # smallest distance between different answers in one scope
    safe_threshold: float | None = None  # largest threshold with no collision among the entries
    labelled: LabelledReport | None = None
    recommended: float | None = None
    recommended_because: str = ""
    embedding: str | None = None
    wrapper_compresses: bool = False  # the library embeds a serialised message list
    bare: BareComparison | None = None
    skipped: int = 0
    notes: list[str] = field(default_factory=list)
    search: dict | None = None  # how the neighbours were found (allpairs.SearchReport.to_dict())

    def to_dict(self) -> dict:
        return {
            "cache": self.cache,
            "index": self.index,
            "library": self.library,
            "threshold": self.threshold,
            "threshold_source": self.threshold_source,
            "k": self.k,
            "entries": self.entries,
            "scopes": self.scopes,
            "colliding_pairs": self.colliding_pairs,
            "colliding_pairs_exact": self.pairs_exact,
            "colliding_entries": self.colliding_entries,
            "worst_pairs": [p.to_dict() for p in self.worst],
            "nn_distances": self.nn.to_dict(),
            "closest_conflict": self.closest_conflict,
            "safe_threshold": self.safe_threshold,
            "recommended_threshold": self.recommended,
            "recommended_because": self.recommended_because,
            "embedding": self.embedding,
            "wrapper_compresses": self.wrapper_compresses,
            "labelled": self.labelled.to_dict() if self.labelled else None,
            "bare_text": self.bare.to_dict() if self.bare else None,
            "skipped_entries": self.skipped,
            "neighbour_search": self.search,
            "notes": self.notes,
        }


@dataclass
class AuditReport:
    caches: list[CacheAudit]

    @property
    def colliding_pairs(self) -> int:
        return sum(c.colliding_pairs for c in self.caches)

    def to_dict(self) -> dict:
        return {"colliding_pairs": self.colliding_pairs, "caches": [c.to_dict() for c in self.caches]}


def lookup_scope(entry: Entry) -> tuple:
    """What a lookup must share with an entry to be served it, as its layout says: LangChain's
    llm_string; RedisVL's filter field values (the app's filter_expression)."""
    return (semantic_layout(entry.layout) or DEFAULT_SEMANTIC).lookup_scope(entry)


def same_answer(a: Entry, b: Entry) -> bool:
    return " ".join((a.answer or "").split()) == " ".join((b.answer or "").split())


def run_audit(client: redis.Redis, ctx: Context, opts: AuditOptions) -> AuditReport:
    caches = semantic_caches(client, ctx, opts.cache)
    unsupported = [sc for sc in caches if not sc.semantic.audit]
    if opts.cache is not None and unsupported:
        raise UsageError(
            f"cache {opts.cache!r} is a {unsupported[0].semantic.library} cache: the audit does not support it"
        )
    caches = [sc for sc in caches if sc.semantic.audit]
    if not caches:
        raise NotFound(
            "no semantic cache (a search index with a prompt and a vector field) on this server; "
            "list caches with `cacheops caches`"
        )
    return AuditReport([audit_cache(client, ctx, sc, opts) for sc in caches])


def audit_cache(client: redis.Redis, ctx: Context, sc: SemanticCache, opts: AuditOptions) -> CacheAudit:
    threshold, source = threshold_for_cache(sc.name, sc.layout, opts.threshold)
    result = CacheAudit(sc.name, sc.index.name, sc.layout, threshold, source, opts.k)
    result.wrapper_compresses = sc.semantic.wraps_prompt and sc.chat
    stats = NearestStats()
    scopes: set = set()
    pair_ids: set[int] = set()
    worst: list[tuple[float, int, Pair]] = []  # max-heap by distance (negated) of the closest collisions
    closest = None
    nearest: Iterable[NearestList]
    if opts.method == "knn" and not search_fans_out(client):
        # Without a coordinator the index answers from one shard: the all-pairs engine reads the
        # vectors of every shard and finds the same k nearest (exactly, as a FLAT KNN does).
        opts = replace(opts, method="exact")
        result.notes.append(
            f"--method knn: on this Redis Cluster the search module has no coordinator, so index "
            f"{sc.index.name!r} covers one shard's entries; the neighbours were found by the exact "
            f"all-pairs search over the stored vectors of every shard instead"
        )
    if opts.method == "knn":
        nearest = iter_nearest(client, ctx, sc.name, k=opts.k, stats=stats, model=opts.model)
        result.search = {"method": "knn"}
    else:
        nearest = ()
        closest = _nearest_by_rows(client, ctx, sc, opts, result, stats, scopes, worst)
    for nl in nearest:
        entry = nl.entry
        if len(scopes) < 100_000:
            scopes.add(lookup_scope(entry))
        if nl.neighbours:
            result.nn.add(max(0.0, nl.neighbours[0].distance))
        at_risk = False
        for n in nl.neighbours:
            if lookup_scope(n.entry) != lookup_scope(entry) or same_answer(n.entry, entry):
                continue
            closest = n.distance if closest is None else min(closest, n.distance)
            if n.distance > threshold:
                continue
            at_risk = True
            pid = hash((min(entry.key, n.entry.key), max(entry.key, n.entry.key)))
            _count_pair(result, pair_ids, worst, opts.top, pid, n.distance, Pair(n.distance, entry, n.entry))
        result.colliding_entries += at_risk
        if len(nl.neighbours) >= opts.k and nl.neighbours[-1].distance <= threshold:
            # its k-th nearest is still within the threshold: farther colliding pairs go uncounted
            result.k_saturated += 1
            result.pairs_exact = False
    result.entries = stats.entries
    result.skipped = stats.skipped
    result.scopes = len(scopes)
    result.worst = [p for _, _, p in sorted(worst, key=lambda x: (-x[0], x[1]))]
    result.closest_conflict = closest
    result.safe_threshold = just_below(closest) if closest is not None else None
    if stats.bleed:
        result.notes.append(
            f"{stats.bleed} neighbour(s) came from keys of another cache that the index "
            f"{sc.index.name!r} also covers (prefix bleed): the library's lookups can return "
            f"them too; see `cacheops doctor`"
        )
    if stats.skipped:
        result.notes.append(f"{stats.skipped} entries have no vector the index can search (skipped)")
    if result.k_saturated:
        result.notes.append(
            f"{result.k_saturated} entries have all {opts.k} nearest neighbours within the threshold, so the "
            f"pair count is a lower bound (+); raise --k to count every pair"
        )
    if closest is None and result.entries > 1:
        result.notes.append(
            f"no two entries with different answers are among each other's {opts.k} nearest: raise --k to look further"
        )
    _model_dependent(client, ctx, sc, opts, result)
    _recommend(result)
    return result


def _answer_text(entry: Entry) -> str:
    """What same_answer compares."""
    return " ".join((entry.answer or "").split())


def _count_pair(result, pair_ids: set[int], worst: list, top: int, pid: int, distance: float, pair) -> None:
    """One colliding pair, counted once (by `pid`, while PAIR_IDS_MAX ids are remembered: beyond, the
    count is a lower bound) and kept among the `top` worst (closest) in the `worst` heap."""
    if pid in pair_ids:
        return
    if len(pair_ids) < PAIR_IDS_MAX:
        pair_ids.add(pid)
    else:
        result.pairs_exact = False
    result.colliding_pairs += 1
    item = (-distance, result.colliding_pairs, pair)
    if len(worst) < top:
        heapq.heappush(worst, item)
    elif item > worst[0]:
        heapq.heapreplace(worst, item)


def _nearest_by_rows(client, ctx, sc: SemanticCache, opts: AuditOptions, result: CacheAudit, stats, scopes, worst):
    """The same accounting as the KNN loop in audit_cache, over allpairs' row blocks: every entry's k
    nearest of its own scope, compared by answer hashes; only the worst pairs' entries are read in
    full. Returns the closest distance between different answers (None when there is none)."""
    import numpy as np

    from . import allpairs

    store = allpairs.collect(
        client, ctx, sc, model=opts.model, scope_of=lookup_scope, answer_of=_answer_text, stats=stats
    )
    search = allpairs.SearchReport(opts.method)
    closest = None
    pair_ids: set[int] = set()
    found: list[tuple[float, int, tuple[int, int]]] = []
    try:
        assert store.answer is not None  # loaded above
        scopes.update(store.scope_hashes(100_000))
        for rows, idx, dist in allpairs.nearest_blocks(store, opts.k, opts.method, search):
            for d in dist[idx[:, 0] >= 0, 0].tolist():
                result.nn.add(max(0.0, d))
            valid = idx >= 0
            differ = valid & (store.answer[np.where(valid, idx, 0)] != store.answer[rows][:, None])
            if differ.any():
                low = float(dist[differ].min())
                closest = low if closest is None else min(closest, low)
            colliding = differ & (dist <= result.threshold)
            result.colliding_entries += int(colliding.any(axis=1).sum())
            for r, c in zip(*np.nonzero(colliding)):
                a, b, d = int(rows[r]), int(idx[r, c]), float(dist[r, c])
                _count_pair(result, pair_ids, found, opts.top, min(a, b) * store.count + max(a, b), d, (a, b))
        keys = {row: store.key(row) for _, _, pair in found for row in pair}
        entries = allpairs.read_entries(client, ctx, sc, sorted(set(keys.values())))
    finally:
        store.close()
    for neg, n, (a, b) in found:
        if keys[a] in entries and keys[b] in entries:
            worst.append((neg, n, Pair(-neg, entries[keys[a]], entries[keys[b]])))
    result.search = search.to_dict()
    result.notes.extend(search.notes)
    return closest


def _model_dependent(client, ctx, sc: SemanticCache, opts: AuditOptions, result: CacheAudit) -> None:
    """The parts that need the cache's embedding model: labelled set, bare-text comparison."""
    want_bare = opts.bare and result.wrapper_compresses and result.entries > 1
    if opts.labelled is None and not want_bare:
        return
    try:
        spec = spec_for_cache(sc.name, opts.embedding)
    except ConfigError:
        if opts.labelled is not None:
            raise
        result.notes.append(f"pass --embedding SPEC (or set caches.{sc.name}.embedding) to compare with the bare text")
        return
    result.embedding = spec
    vectorizer = load_vectorizer(spec)

    def embedder(wrap: bool):
        def embed(items: list[tuple[str, str | None]]):
            texts = [sc.semantic.embedded_text(t, s, sc.chat) if wrap else t for t, s in items]
            return unit_rows(vectorizer.embed_many(texts, batch_size=32))

        return embed

    if opts.labelled is not None:
        result.labelled = evaluate(opts.labelled, embedder(True), opts.min_precision, extra=(result.threshold,))
    if want_bare:
        result.bare = bare_comparison(client, ctx, sc, opts, result, embedder(False))
        if opts.labelled is not None:
            result.bare.labelled = evaluate(
                opts.labelled, embedder(False), opts.min_precision, extra=(result.threshold,)
            )


def unit_rows(rows):
    import numpy as np

    m = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.where(norms == 0, 1, norms)


def bare_comparison(
    client, ctx, sc: SemanticCache, opts: AuditOptions, result: CacheAudit, embed_bare
) -> BareComparison:
    """On a sample of entries: the stored vectors against embeddings of the bare user text, same rules."""
    import numpy as np

    from ..inspect.catalog import EntryFilter, iter_entries

    sample: list[Entry] = []
    for item in iter_entries(client, ctx, EntryFilter(cache=sc.name, model=opts.model)):
        if isinstance(item, Entry) and item.prompt is not None:
            sample.append(item)
            if len(sample) >= opts.bare_sample:
                break
    pipe = client.pipeline(transaction=False)
    for e in sample:
        pipe.hget(e.key, sc.vector_field)
    raw = pipe.execute()
    dtype = np.dtype(sc.dtype).newbyteorder("<")
    keep = [(e, v) for e, v in zip(sample, raw) if isinstance(v, bytes) and len(v) == sc.vector.nbytes]
    sample = [e for e, _ in keep]
    stored = unit_rows([np.frombuffer(v, dtype=dtype) for _, v in keep]) if keep else None
    bare = embed_bare([(e.prompt, None) for e in sample]) if sample else None

    def summarise(m):
        if m is None or len(sample) < 2:
            return None, 0, None
        d = 1.0 - m @ m.T
        np.fill_diagonal(d, np.inf)
        nn = np.min(d, axis=1)
        collisions, closest = 0, None
        for i in range(len(sample)):
            for j in range(i + 1, len(sample)):
                if lookup_scope(sample[i]) != lookup_scope(sample[j]) or same_answer(sample[i], sample[j]):
                    continue
                closest = float(d[i, j]) if closest is None else min(closest, float(d[i, j]))
                collisions += d[i, j] <= result.threshold
        return (
            round(float(statistics.median(nn.tolist())), 4),
            int(collisions),
            (just_below(closest) if closest is not None else None),
        )

    med_s, col_s, safe_s = summarise(stored)
    med_b, col_b, safe_b = summarise(bare)
    return BareComparison(len(sample), result.threshold, med_s, med_b, col_s, col_b, safe_s, safe_b)


def _recommend(result: CacheAudit) -> None:
    """One threshold to act on: no collision among the stored entries, and (with a labelled set) the
    target precision; the smaller of the two when both are known."""
    options = []
    if result.safe_threshold is not None and result.safe_threshold > result.threshold and result.labelled is None:
        # The stored entries bound the threshold from above; they do not show that paraphrases the
        # cache has never seen stay apart, so raising it is advice only a labelled set can back.
        options.append(
            (
                result.threshold,
                f"the current one: no collision among the stored entries, which would allow up to "
                f"{result.safe_threshold:g}; confirm a higher threshold with --labels before raising it",
            )
        )
    elif result.safe_threshold is not None:
        options.append(
            (
                result.safe_threshold,
                f"largest threshold with no collision among the stored entries: just below "
                f"{result.closest_conflict:.6f}, the closest pair of different answers "
                f"(a cache serves distances up to and including its threshold)",
            )
        )
    if result.labelled and result.labelled.recommended is not None:
        options.append(
            (
                result.labelled.recommended,
                f"largest threshold with precision >= {result.labelled.min_precision:g} on the labelled set",
            )
        )
    if options:
        result.recommended, result.recommended_because = min(options, key=lambda o: o[0])


WRAPPER_EXPLANATION = (
    "LangChain's RedisSemanticCache embeds the serialised message list "
    '(\'[{"lc": 1, "type": "constructor", "id": ["langchain", "schema", "messages", '
    '"HumanMessage"], "kwargs": {"content": ...}}]\'), not the user\'s text. The fixed JSON wrapper is '
    "most of every embedded string, so every prompt looks alike to the model and distances shrink: a "
    "threshold that suits bare text (LangChain's default 0.2) matches unrelated questions."
)
