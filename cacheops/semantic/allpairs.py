"""Every entry's nearest other entries of a semantic cache, from its stored vectors, without a query per entry.

The index's own KNN (neighbours.iter_nearest) asks the server one FLAT query per entry: quadratic,
about 0.9 ms per query at 5k entries and 9 ms at 50k. Here the vectors are read once through the scan
engine and compared on the client:

- exact: blocks of rows against blocks of rows, float32 matrix products (BLAS), a running top-k per
  row. The vectors are spilled to a temporary file as they stream in and read back one block at a
  time, so memory is bounded by the block size, not by the cache (about 30 bytes per entry stay in
  memory: key offset, scope and answer hashes).
- ivf: beyond EXACT_MAX rows in one lookup scope, an inverted file: sqrt(n) spherical k-means
  lists; each list's rows are compared exactly, by the same matrix products, with the rows of the
  lists whose centroids are nearest its own (probes). Its recall@k is measured against exact on a
  sample before it is used, and the probes doubled until recall reaches MIN_RECALL; if it never
  does, the scope is searched exactly. Memory: a list's candidates are read from the file per list.
  Chosen by measurement: on the benchmark's cache (50k entries, 384 dims, many entries at nearly
  the same distance) hnswlib and faiss HNSW reached recall@10 0.85-0.88 at ef 64-256; faiss
  IVFFlat reached 1.0 at nprobe 8 but scans lists one query at a time (~1 GFLOP/s here: 158 s of
  CPU at 100k); the same inverted file searched a list at a time with BLAS needs no extra package.

Pairs only ever form within one lookup scope (the audit passes how to tell an entry's scope and
answer apart): rows are grouped by scope and each group is searched on its own.
Distances are cosine distances (1 - cosine similarity), the unit of the libraries' thresholds.
"""

from __future__ import annotations

import tempfile
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import redis

from ..inspect.catalog import EntryFilter, decode_record
from ..layouts import Context, Entry
from ..server.keyspace import DEFAULT_ELIDE, ScanOptions, iter_batches, read_records
from .neighbours import NearestStats, SemanticCache, searchable

METHODS = ("auto", "exact", "ivf", "knn")
BLOCK = 1024  # rows per block of the exact search: a block pair is BLOCK^2 float32 similarities (4 MB)
EXACT_MAX = 40_000  # auto: rows of one scope searched exactly; beyond, the approximate index
MIN_RECALL = 0.99  # recall@k the approximate index must reach on the sample, or the scope is searched exactly
RECALL_SAMPLE = 500  # rows whose exact neighbours are computed to measure the approximate index


@dataclass
class SearchReport:
    """How the neighbours were found, for the audit's output."""

    method: str  # exact | ivf | mixed | knn
    rows: int = 0
    scopes_exact: int = 0
    scopes_ivf: int = 0
    recall_at_k: float | None = None  # lowest measured over the approximate scopes
    recall_sample: int = 0
    probes: str | None = None  # lists searched per query / lists, of the first approximate scope
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "rows": self.rows,
            "scopes_exact": self.scopes_exact,
            "scopes_approximate": self.scopes_ivf,
            "recall_at_k": None if self.recall_at_k is None else round(self.recall_at_k, 4),
            "recall_sample": self.recall_sample,
            "probes": self.probes,
        }


class StoredVectors:
    """The cache's entries as rows: unit float32 vectors in a temporary file, and per row in memory
    only the key's place in a second file, a scope hash and an answer hash."""

    def __init__(self, dims: int, directory: str | None = None):
        self.dims = dims
        # Closed by close() (the audit's finally): they outlive any one with-block here.
        self._vectors = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115
        self._keys = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115
        self._key_ends = array("q")
        self._scopes = array("q")
        self._answers = array("q")
        self._key_hashes = array("q")
        self.count = 0
        self.alive: np.ndarray | None = None
        self.scope: np.ndarray | None = None
        self.answer: np.ndarray | None = None

    def add(self, keys: list[bytes], scopes: list[int], answers: list[int], vectors: np.ndarray) -> None:
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = (vectors / np.where(norms == 0, 1, norms)).astype(np.float32, copy=False)
        self._vectors.write(vectors.tobytes())
        end = self._key_ends[-1] if self._key_ends else 0
        for key in keys:
            end += len(key)
            self._key_ends.append(end)
            self._key_hashes.append(hash(key))
        self._keys.write(b"".join(keys))
        self._scopes.extend(scopes)
        self._answers.extend(answers)
        self.count += len(keys)

    def finish(self) -> int:
        """Freeze the rows; SCAN may return a key twice: later copies are dropped. Returns the duplicates."""
        self._vectors.flush()
        self._keys.flush()
        self.scope = np.frombuffer(self._scopes, dtype=np.int64)
        self.answer = np.frombuffer(self._answers, dtype=np.int64)
        hashes = np.frombuffer(self._key_hashes, dtype=np.int64)
        self.alive = np.zeros(self.count, dtype=bool)
        self.alive[np.unique(hashes, return_index=True)[1]] = True
        self._key_hashes = array("q")
        return int(self.count - self.alive.sum())

    def rows(self, index: np.ndarray) -> np.ndarray:
        """The vectors of these rows (sorted ascending), read from the file: only they enter memory."""
        if not len(index):
            return np.empty((0, self.dims), dtype=np.float32)
        first, last = int(index[0]), int(index[-1])
        if last - first + 1 == len(index):  # a contiguous run: one read
            self._vectors.seek(first * self.dims * 4)
            buf = self._vectors.read(len(index) * self.dims * 4)
            return np.frombuffer(buf, dtype=np.float32).reshape(len(index), self.dims)
        mapped = np.memmap(self._vectors, dtype=np.float32, mode="r", shape=(self.count, self.dims))
        try:
            return np.array(mapped[index])
        finally:
            del mapped

    def key(self, row: int) -> bytes:
        start = self._key_ends[row - 1] if row else 0
        self._keys.seek(start)
        return self._keys.read(self._key_ends[row] - start)

    def groups(self) -> list[np.ndarray]:
        """Row numbers per lookup scope (alive rows only), each sorted ascending."""
        rows = np.flatnonzero(self.alive)
        if not len(rows):
            return []
        scopes = self.scope[rows]
        if (scopes == scopes[0]).all():
            return [rows]
        order = np.argsort(scopes, kind="stable")
        rows, scopes = rows[order], scopes[order]
        cuts = np.flatnonzero(scopes[1:] != scopes[:-1]) + 1
        return [np.sort(g) for g in np.split(rows, cuts)]

    def close(self) -> None:
        self._vectors.close()
        self._keys.close()


def collect(
    client: redis.Redis,
    ctx: Context,
    sc: SemanticCache,
    *,
    model: str | None,
    scope_of: Callable[[Entry], object],
    answer_of: Callable[[Entry], str],
    stats: NearestStats,
    count: int = 1000,
) -> StoredVectors:
    """One streaming pass over the cache's keys (SCAN MATCH on its prefix), its vectors included."""
    flt = EntryFilter(cache=sc.name, model=model)
    field_name = sc.vector_field.encode()
    opts = ScanOptions(
        match=flt.scan_match(None, ctx),
        count=count,
        elide=tuple(f for f in DEFAULT_ELIDE if f != sc.vector_field),
    )
    dtype = np.dtype(sc.dtype).newbyteorder("<")
    nbytes = sc.index.vector.nbytes
    store = StoredVectors(nbytes // dtype.itemsize)
    for batch in iter_batches(client, opts):
        keys, scopes, answers, raws = [], [], [], []
        for rec in batch:
            item = decode_record(rec, ctx, full=False)
            if not isinstance(item, Entry) or not searchable(item.layout) or not flt.accepts(item):
                continue
            raw = rec.value.get(field_name) if isinstance(rec.value, dict) else None
            if not isinstance(raw, bytes) or len(raw) != nbytes:
                stats.skipped += 1
                continue
            keys.append(rec.key)
            scopes.append(hash(scope_of(item)))
            answers.append(hash(answer_of(item)))
            raws.append(raw)
        if keys:
            vectors = np.frombuffer(b"".join(raws), dtype=dtype).reshape(len(keys), -1).astype(np.float32)
            store.add(keys, scopes, answers, vectors)
    store.finish()
    stats.entries = int(store.alive.sum())
    return store


def read_entries(client: redis.Redis, ctx: Context, sc: SemanticCache, keys: list[bytes]) -> dict[bytes, Entry]:
    """The few entries the audit shows (its worst pairs), read in full."""
    out = {}
    for rec in read_records(client, keys, elide=(sc.vector_field,)):
        item = decode_record(rec, ctx)
        if isinstance(item, Entry):
            out[rec.key] = item
    return out


# -- the searches -----------------------------------------------------------------------------------
# Each yields (rows, neighbours, distances): global row numbers of a block of rows, their k nearest
# other rows of the same group (-1 where the group has fewer), and cosine distances, closest first.

Block = tuple[np.ndarray, np.ndarray, np.ndarray]


def exact_blocks(store: StoredVectors, group: np.ndarray, k: int, queries: np.ndarray | None = None) -> Iterator[Block]:
    """Exact top-k of `queries` (default: every row of the group) among the group's rows."""
    queries = group if queries is None else queries
    same = queries is group
    for qs in range(0, len(queries), BLOCK):
        qrows = queries[qs : qs + BLOCK]
        q = store.rows(qrows)
        best_sim = np.full((len(qrows), k), -np.inf, dtype=np.float32)
        best_idx = np.full((len(qrows), k), -1, dtype=np.int64)
        for cs in range(0, len(group), BLOCK):
            crows = group[cs : cs + BLOCK]
            c = q if same and cs == qs else store.rows(crows)
            sim = q @ c.T
            if same and cs == qs:
                np.fill_diagonal(sim, -np.inf)
            elif not same:
                _mask_self(sim, qrows, crows)
            _merge(best_sim, best_idx, sim, crows, k)
        yield _sorted(qrows, best_sim, best_idx)


def _merge(best_sim: np.ndarray, best_idx: np.ndarray, sim: np.ndarray, crows: np.ndarray, k: int) -> None:
    """Fold a block of similarities into the running top-k: the block's own top-k first (one
    argpartition over the block), then the 2k candidates per row, only for rows the block improves."""
    need = np.flatnonzero(sim.max(axis=1) > best_sim.min(axis=1))
    if not len(need):
        return
    sim = sim[need]
    if sim.shape[1] > k:
        part = np.argpartition(sim, sim.shape[1] - k, axis=1)[:, -k:]
        top_sim = np.take_along_axis(sim, part, axis=1)
        top_idx = crows[part]
    else:
        top_sim, top_idx = sim, np.broadcast_to(crows, sim.shape)
    cand_sim = np.concatenate([best_sim[need], top_sim], axis=1)
    cand_idx = np.concatenate([best_idx[need], top_idx], axis=1)
    part = np.argpartition(cand_sim, cand_sim.shape[1] - k, axis=1)[:, -k:]
    best_sim[need] = np.take_along_axis(cand_sim, part, axis=1)
    best_idx[need] = np.take_along_axis(cand_idx, part, axis=1)


def ivf_blocks(store: StoredVectors, group: np.ndarray, k: int, report: SearchReport) -> Iterator[Block] | None:
    """The group's neighbours from an inverted file: k-means lists (sqrt(n) of them), and each list's
    rows compared exactly (float32 matrix products, like the exact search) with the rows of the
    `probes` lists whose centroids are nearest to its own. Used once its recall on a sample reaches
    MIN_RECALL, the probes doubled until it does; None when it never does (the caller searches exactly)."""
    lists = _kmeans(store, group, max(1, int(len(group) ** 0.5)))
    assign = _assign(store, group, lists)
    order = np.argsort(assign, kind="stable")
    starts = np.searchsorted(assign[order], np.arange(len(lists) + 1))
    members = [order[starts[c] : starts[c + 1]] for c in range(len(lists))]  # positions in the group
    closeness = lists @ lists.T
    sample = _sample(group)
    (_, exact_idx, exact_dist) = _concat(exact_blocks(store, group, k, queries=sample))
    in_sample = np.isin(group, sample)
    probes = min(len(lists), 8)
    while True:
        got = _concat(_ivf_search(store, group, k, members, closeness, probes, only=in_sample))
        order_s = np.argsort(got[0])
        recall = _recall((got[1][order_s], got[2][order_s]), exact_idx, exact_dist, sample)
        if recall >= MIN_RECALL or probes >= len(lists):
            break
        probes = min(len(lists), 2 * probes)
    report.recall_sample += len(sample)
    if recall < MIN_RECALL:
        report.notes.append(
            f"the approximate search reached recall@{k} {recall:.3f} < {MIN_RECALL} on a {len(sample)}-row "
            f"sample of a {len(group):,}-entry scope: that scope was searched exactly"
        )
        return None
    report.recall_at_k = recall if report.recall_at_k is None else min(report.recall_at_k, recall)
    report.probes = f"{probes}/{len(lists)}" if report.probes is None else report.probes
    return _ivf_search(store, group, k, members, closeness, probes)


def _ivf_search(store, group, k, members, closeness, probes, only=None) -> Iterator[Block]:
    for c, mine in enumerate(members):
        if only is not None:
            mine = mine[only[mine]]
        if not len(mine):
            continue
        near = np.argpartition(-closeness[c], probes - 1)[:probes] if probes < len(members) else range(len(members))
        cands = np.sort(np.concatenate([members[n] for n in near]))
        crows = group[cands]
        for qs in range(0, len(mine), BLOCK):
            qrows = group[np.sort(mine[qs : qs + BLOCK])]
            q = store.rows(qrows)
            best_sim = np.full((len(qrows), k), -np.inf, dtype=np.float32)
            best_idx = np.full((len(qrows), k), -1, dtype=np.int64)
            for cs in range(0, len(crows), 8 * BLOCK):
                part = crows[cs : cs + 8 * BLOCK]
                sim = q @ store.rows(part).T
                _mask_self(sim, qrows, part)
                _merge(best_sim, best_idx, sim, part, k)
            yield _sorted(qrows, best_sim, best_idx)


def _mask_self(sim: np.ndarray, qrows: np.ndarray, crows: np.ndarray) -> None:
    """No row is its own neighbour: -inf where a query row meets itself among the (sorted) candidates."""
    at = np.minimum(np.searchsorted(crows, qrows), len(crows) - 1)
    hit = crows[at] == qrows
    sim[np.flatnonzero(hit), at[hit]] = -np.inf


def _kmeans(store: StoredVectors, group: np.ndarray, lists: int, rounds: int = 8) -> np.ndarray:
    """Unit centroids from a sample of the group (spherical k-means: a few Lloyd rounds)."""
    rng = np.random.default_rng(len(group))
    x = store.rows(np.sort(rng.choice(group, min(len(group), 40 * lists), replace=False)))
    centroids = x[rng.choice(len(x), lists, replace=False)].copy()
    for _ in range(rounds):
        nearest = np.argmax(x @ centroids.T, axis=1)
        sums = np.zeros_like(centroids)
        np.add.at(sums, nearest, x)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        empty = norms[:, 0] == 0
        centroids = np.where(empty[:, None], centroids, sums / np.where(norms == 0, 1, norms))
    return centroids.astype(np.float32)


def _assign(store: StoredVectors, group: np.ndarray, lists: np.ndarray) -> np.ndarray:
    out = np.empty(len(group), dtype=np.int64)
    for start in range(0, len(group), 8 * BLOCK):
        out[start : start + 8 * BLOCK] = np.argmax(store.rows(group[start : start + 8 * BLOCK]) @ lists.T, axis=1)
    return out


def _sorted(qrows: np.ndarray, best_sim: np.ndarray, best_idx: np.ndarray) -> Block:
    order = np.argsort(-best_sim, axis=1, kind="stable")
    best_sim = np.take_along_axis(best_sim, order, axis=1)
    best_idx = np.take_along_axis(best_idx, order, axis=1)
    best_idx[~np.isfinite(best_sim)] = -1
    return qrows, best_idx, (1.0 - best_sim).astype(np.float32)


def _recall(got, exact_idx, exact_dist, sample: np.ndarray) -> float:
    """Share of the exact k nearest that the approximate search found, counting ties at the k-th
    distance as found (many entries can sit at exactly the same distance)."""
    idx, dist = got
    found = total = 0
    for r in range(len(sample)):
        want = exact_idx[r][exact_idx[r] >= 0]
        total += len(want)
        if not len(want):
            continue
        kth = exact_dist[r][len(want) - 1]
        hits = set(want.tolist()) & set(idx[r].tolist())
        extra = int(((dist[r] <= kth + 1e-6) & (idx[r] >= 0) & ~np.isin(idx[r], want)).sum())
        found += min(len(want), len(hits) + extra)
    return found / total if total else 1.0


def _sample(group: np.ndarray) -> np.ndarray:
    if len(group) <= RECALL_SAMPLE:
        return group
    rng = np.random.default_rng(len(group))
    return np.sort(rng.choice(group, RECALL_SAMPLE, replace=False))


def _concat(blocks: Iterator[Block]) -> Block:
    parts = list(blocks)
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))


def nearest_blocks(store: StoredVectors, k: int, method: str, report: SearchReport) -> Iterator[Block]:
    """Every alive row's k nearest rows of its own scope, block by block (method: auto | exact | ivf)."""
    for group in store.groups():
        report.rows += len(group)
        if len(group) < 2:
            yield group, np.full((len(group), k), -1, dtype=np.int64), np.full((len(group), k), np.inf, np.float32)
            continue
        approximate = method == "ivf" or (method == "auto" and len(group) > EXACT_MAX)
        blocks = ivf_blocks(store, group, k, report) if approximate else None
        if blocks is None:
            report.scopes_exact += 1
            blocks = exact_blocks(store, group, k)
        else:
            report.scopes_ivf += 1
        yield from blocks
    report.method = "mixed" if report.scopes_exact and report.scopes_ivf else "ivf" if report.scopes_ivf else "exact"
