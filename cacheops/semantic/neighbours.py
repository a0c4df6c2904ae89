"""The one neighbour search of semantic caches, shared by `evict --similar-to`, `audit` and the browser.

Two questions, both answered by the cache's own search index (RediSearch KNN / VECTOR_RANGE, built
with RedisVL's query classes), so distances are the ones the library's check() sees (cosine distance
for the COSINE indexes every supported library creates):

- similar_to_text: which entries would a lookup of this text hit within a threshold? The text is
  embedded with the cache's own model, exactly as the library embeds it (vectorizers.library_text).
- iter_nearest: for every entry of a cache, its k nearest other entries, from the stored vectors
  (no model needed). Streams in batches: memory is bounded by the batch, not by the cache.

Where one FT.SEARCH cannot see every entry (a Redis Cluster whose search module has no
coordinator: each index covers one shard), the same questions are answered from the stored vectors
of every shard, streamed and compared on the client (vectorscan.py); iter_nearest is then the
audit's all-pairs engine's job (allpairs.py), and refuses here.

Entries are attributed by the exact "<cache>:" key shape (classify), never by index membership:
an index named "llmcache" also covers "llmcache_v2:*" keys (prefix bleed, docs/layouts.md 10).
Which libraries' entries take part is each layout's say (SemanticLayout.neighbours).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import redis

from ..errors import CacheopsError, NotOnCluster
from ..inspect.catalog import EntryFilter, decode_record, iter_entries, no_such_cache
from ..layouts import DEFAULT_SEMANTIC, Context, Entry, SemanticLayout, semantic_layout
from ..server.indexes import IndexInfo, VectorField, parse_search, search_client
from ..server.keyspace import read_records
from ..server.topology import search_fans_out
from . import vectorscan
from .vectorizers import embed_buffer, load_vectorizer, spec_for_cache

searchable = vectorscan.searchable

SAMPLE = 20  # documents read to tell which library writes a cache
PAGE = 1000  # range-query page size


@dataclass
class Neighbour:
    entry: Entry
    distance: float


@dataclass
class NearestList:
    """One entry of a cache and its nearest other entries, closest first."""

    entry: Entry
    neighbours: list[Neighbour]


@dataclass
class SemanticCache:
    """A semantic cache as its index sees it, and how its library writes it."""

    name: str  # the key prefix (without the colon)
    index: IndexInfo
    layout: str = DEFAULT_SEMANTIC.id  # the id of the layout whose library writes the entries (from a sample)
    chat: bool = True  # LangChain: chat models (serialised messages) rather than a plain LLM

    @property
    def semantic(self) -> SemanticLayout:
        """The layout's semantic interface: what its library embeds, its threshold, its lookup scope."""
        return semantic_layout(self.layout) or DEFAULT_SEMANTIC

    @property
    def vector(self) -> VectorField:
        assert self.index.vector is not None  # semantic_caches keeps only indexes with a vector field
        return self.index.vector

    @property
    def vector_field(self) -> str:
        return self.vector.name

    @property
    def dtype(self) -> str:
        return self.vector.dtype.lower()

    @property
    def vectors(self) -> vectorscan.VectorSource:
        """Its stored vectors, for the streamed searches."""
        return vectorscan.VectorSource(self.name, self.vector_field, self.vector.nbytes, self.dtype)


@dataclass
class NearestStats:
    entries: int = 0
    skipped: int = 0  # entries without a searchable vector
    bleed: int = 0  # neighbours that belong to another cache under the same index prefix
    queries: int = 0
    notes: list[str] = field(default_factory=list)


def semantic_caches(client: redis.Redis, ctx: Context, cache: str | None = None) -> list[SemanticCache]:
    """Every semantic cache (an index with a vector field and a prompt field), or only `cache`."""
    out, known = [], []
    for idx in ctx.indexes:
        if idx.key_type != "HASH" or idx.vector is None or "prompt" not in idx.fields:
            continue
        for prefix in idx.prefixes:
            name = prefix.rstrip(":")
            known.append(name)
            if cache is None or name == cache:
                out.append(_identify(client, SemanticCache(name, idx)))
    if cache is not None and not out:
        raise no_such_cache(cache, known, kind="semantic cache")
    return out


def _identify(client: redis.Redis, sc: SemanticCache) -> SemanticCache:
    """Tell LangChain from direct RedisVL entries (and chat from LLM prompts) by a small sample."""
    keys = [
        key
        for key, _ in _search(
            search_client(client, sc.index), sc.index.name, ["*", "NOCONTENT", "LIMIT", 0, SAMPLE * 5], nocontent=True
        )
    ]
    mine = [k for k in keys if _key_text(k).startswith(sc.name + ":")][:SAMPLE]
    ctx = Context(indexes=[sc.index])
    sample: list = [decode_record(rec, ctx) for rec in read_records(client, mine, elide=(sc.vector_field,))]
    if not mine and not search_fans_out(client):
        # a cluster's one-shard index holds none of them: the scan finds some on the other shards
        sample = list(iter_entries(client, ctx, EntryFilter(cache=sc.name), limit=SAMPLE))
    layouts, chats = [], []
    for entry in sample:
        if isinstance(entry, Entry) and searchable(entry.layout):
            layouts.append(entry.layout)
            chats.append(entry.messages is not None)
    if layouts:
        sc.layout = max(set(layouts), key=layouts.count)
        sc.chat = chats.count(True) >= chats.count(False)
    return sc


def similar_to_text(
    client: redis.Redis,
    ctx: Context,
    text: str,
    threshold: float,
    *,
    cache: str | None = None,
    system: str | None = None,
    embedding: str | None = None,
) -> list[Neighbour]:
    """Every entry of every semantic cache (or only `cache`) within `threshold` (cosine distance, the
    unit of RedisVL's check()) of `text` embedded the way that cache's library embeds it, closest first.

    embedding: a vectorizer SPEC overriding the config file's caches.<name>.embedding.
    On a Redis Cluster without a search coordinator the entries of every shard are compared
    (vectorscan.within), not the one shard the index covers."""
    from redisvl.query import VectorRangeQuery

    found: list[Neighbour] = []
    complete = search_fans_out(client)
    for sc in semantic_caches(client, ctx, cache):
        vectorizer = load_vectorizer(spec_for_cache(sc.name, embedding))
        vector = embed_buffer(vectorizer, sc.semantic.embedded_text(text, system, sc.chat), sc.dtype)
        check_dims(sc, len(vector))
        if not complete:
            found.extend(_decode_hits(client, ctx, sc, vectorscan.within(client, ctx, sc.vectors, vector, threshold)))
            continue
        searcher = search_client(client, sc.index)
        offset = 0
        while True:
            query = VectorRangeQuery(
                vector=vector,
                vector_field_name=sc.vector_field,
                return_fields=[],
                distance_threshold=threshold,
                num_results=PAGE,
                dtype=sc.dtype,
            )
            query.paging(offset, PAGE)
            hits = [(key, dist) for key, dist in _run(searcher, sc.index.name, query)]
            found.extend(_decode_hits(client, ctx, sc, hits))
            if len(hits) < PAGE:
                break
            offset += PAGE
    return sorted(found, key=lambda n: n.distance)


def check_dims(sc: SemanticCache, nbytes: int) -> None:
    if nbytes != sc.vector.nbytes:
        width = nbytes // max(1, sc.vector.nbytes // max(1, sc.vector.dims))
        raise CacheopsError(
            f"the embedding model gives {width}-dimension vectors but cache {sc.name!r} holds "
            f"{sc.vector.dims}-dimension ones: it is not this cache's model "
            f"(set caches.{sc.name}.embedding or pass --embedding)"
        )


def iter_nearest(
    client: redis.Redis,
    ctx: Context,
    cache: str,
    k: int = 10,
    batch: int = 200,
    stats: NearestStats | None = None,
    model: str | None = None,
) -> Iterator[NearestList]:
    """For every entry of `cache`: its k nearest other entries of the same cache by the stored vectors,
    using the index's own KNN. Streams batch by batch (SCAN -> HGET vectors -> pipelined KNN ->
    read neighbours), so memory is bounded by batch * k, never by the cache size.

    Not on a Redis Cluster without a search coordinator (the index would answer from one shard):
    the audit uses allpairs.py there, whose vectors come from every shard."""
    if not search_fans_out(client):
        raise NotOnCluster(
            "the index's own KNN covers one shard on a Redis Cluster without a search coordinator: "
            "use the all-pairs engine (audit --method exact), which reads every shard's vectors"
        )
    (sc,) = semantic_caches(client, ctx, cache)
    stats = stats if stats is not None else NearestStats()
    pending: list[Entry] = []
    for item in iter_entries(client, ctx, EntryFilter(cache=cache, model=model)):
        if isinstance(item, Entry) and searchable(item.layout):
            pending.append(item)
            if len(pending) >= batch:
                yield from _nearest_batch(client, ctx, sc, pending, k, stats)
                pending = []
    if pending:
        yield from _nearest_batch(client, ctx, sc, pending, k, stats)


def nearest_to(client: redis.Redis, ctx: Context, entry: Entry, k: int = 10) -> NearestList:
    """One entry's k nearest other entries of its cache, by its stored vector (no model needed).
    On a Redis Cluster without a search coordinator, among the entries of every shard (one streamed
    pass over the cache's vectors: vectorscan.nearest)."""
    if not searchable(entry.layout):
        raise CacheopsError(f"{entry.key!r} is a {entry.kind} entry: only semantic entries have neighbours")
    (sc,) = semantic_caches(client, ctx, entry.cache)
    if not search_fans_out(client):
        found = list(_streamed_nearest(client, ctx, sc, entry, k))
    else:
        found = list(_nearest_batch(client, ctx, sc, [entry], k, NearestStats()))
    if not found:
        raise CacheopsError(f"{entry.key!r} has no vector its index can search (see its unreachable reason)")
    return found[0]


def _streamed_nearest(client: redis.Redis, ctx: Context, sc: SemanticCache, entry: Entry, k: int):
    vector = client.hget(entry.key, sc.vector_field)
    if not isinstance(vector, bytes) or len(vector) != sc.vector.nbytes:
        return
    near = vectorscan.nearest(client, ctx, sc.vectors, vector, k, exclude=entry.key)  # closest first
    yield NearestList(entry, _decode_hits(client, ctx, sc, near))


def _nearest_batch(
    client: redis.Redis, ctx: Context, sc: SemanticCache, entries: list[Entry], k: int, stats: NearestStats
) -> Iterator[NearestList]:
    """KNN for a batch of entries: HGET their vectors -> pipelined KNN -> read the neighbours."""
    from redisvl.query import VectorQuery

    pipe = client.pipeline(transaction=False)
    for entry in entries:
        pipe.hget(entry.key, sc.vector_field)
    vectors = pipe.execute()
    pipe = search_client(client, sc.index).pipeline(transaction=False)
    asked = []
    for entry, vector in zip(entries, vectors):
        if not isinstance(vector, bytes) or len(vector) != sc.vector.nbytes:
            stats.skipped += 1
            continue
        query = VectorQuery(
            vector=vector, vector_field_name=sc.vector_field, return_fields=[], num_results=k + 1, dtype=sc.dtype
        )
        pipe.execute_command("FT.SEARCH", sc.index.name, *_args(query))
        asked.append(entry)
    replies = pipe.execute() if asked else []
    stats.queries += len(asked)
    known = {e.key: e for e in entries}
    lists: list[tuple[Entry, list[tuple[str, float]]]] = []
    wanted: set[str] = set()
    for entry, reply in zip(asked, replies):
        near = []
        for key, dist in _hits(reply):
            if key == entry.key:
                continue
            if not key.startswith(sc.name + ":"):
                stats.bleed += 1
                continue
            near.append((key, dist))
            if key not in known:
                wanted.add(key)
        lists.append((entry, near[:k]))
    wanted_keys = sorted(wanted)
    for key, item in zip(wanted_keys, _read(client, ctx, sc, wanted_keys)):
        if item is not None:
            known[key] = item
    for entry, near in lists:
        stats.entries += 1
        yield NearestList(
            entry, [Neighbour(known[key], dist) for key, dist in near if key in known and known[key].cache == sc.name]
        )


# -- plumbing -------------------------------------------------------------------------------------


def _args(query) -> list:
    """FT.SEARCH arguments of a RedisVL query object (query string, RETURN/SORTBY/LIMIT, PARAMS)."""
    params = query.params
    args = list(query.get_args())
    if params:
        args += ["PARAMS", 2 * len(params)]
        for name, value in params.items():
            args += [name, value]
    return args


def _search(client: redis.Redis, index: str, args: list, nocontent: bool = False):
    try:
        return parse_search(client.execute_command("FT.SEARCH", index, *args), nocontent=nocontent)
    except redis.ResponseError as exc:
        raise CacheopsError(f"search on index {index!r} failed: {exc}") from None


def _run(client: redis.Redis, index: str, query) -> list[tuple[str, float]]:
    try:
        return _hits(client.execute_command("FT.SEARCH", index, *_args(query)))
    except redis.ResponseError as exc:
        raise CacheopsError(f"vector search on index {index!r} failed: {exc}") from None


def _hits(reply) -> list[tuple[str, float]]:
    out = []
    for key, fields in parse_search(reply):
        score = fields.get(b"vector_distance", fields.get("vector_distance"))
        try:
            out.append((_key_text(key), float(score)))  # type: ignore[arg-type]  # None: skipped below
        except (TypeError, ValueError):
            continue
    return out


def _key_text(key) -> str:
    return key.decode("utf-8", "backslashreplace") if isinstance(key, bytes) else str(key)


def _read(client: redis.Redis, ctx: Context, sc: SemanticCache, keys: list[str]) -> list[Entry | None]:
    out: list[Entry | None] = []
    for start in range(0, len(keys), 500):
        chunk = [k.encode() for k in keys[start : start + 500]]
        for rec in read_records(client, chunk, elide=(sc.vector_field,)):
            item = decode_record(rec, ctx)
            out.append(item if isinstance(item, Entry) else None)
    return out


def _decode_hits(client, ctx, sc: SemanticCache, hits: list[tuple[str, float]]) -> list[Neighbour]:
    mine = [(key, dist) for key, dist in hits if key.startswith(sc.name + ":")]
    entries = _read(client, ctx, sc, [key for key, _ in mine])
    return [
        Neighbour(entry, dist)
        for (key, dist), entry in zip(mine, entries)
        if entry is not None and entry.cache == sc.name
    ]
