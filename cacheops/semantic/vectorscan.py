"""A semantic cache's stored vectors, streamed from every shard, and the neighbour searches that run
on them instead of the search index where one FT.SEARCH cannot see every entry.

On a Redis Cluster whose search module has no coordinator (redis-stack 7.4), an index lives on the
node owning its name's slot and covers only that node's documents: its KNN would answer from one
shard. cacheops' own neighbour work (evict --similar-to, the TUI's neighbours; the audit through
allpairs.py) reads the vectors through the scan engine instead, which merges every shard's stream
(server/cluster_scan.py), and compares them on the client. One pass per question, memory bounded by
a batch plus the hits kept. Distances are cosine distances (1 - cosine similarity), the unit of
the COSINE indexes every supported library creates and of their thresholds.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import redis

from ..inspect.catalog import EntryFilter, decode_record
from ..layouts import Context, Entry, semantic_layout
from ..server.keyspace import DEFAULT_ELIDE, ScanOptions, iter_batches


def searchable(layout_id: str) -> bool:
    """Whether entries of this layout take part in the neighbour search (its layout says so)."""
    layout = semantic_layout(layout_id)
    return layout is not None and layout.neighbours


@dataclass
class VectorSource:
    """Which vectors to stream: a cache's entries and its index's vector field."""

    cache: str
    field: str
    nbytes: int
    dtype: str  # float32, float16, float64 (the index's data type, lower case)


@dataclass
class VectorBatch:
    entries: list[Entry]  # decoded without their full values (full=False)
    vectors: np.ndarray  # float32, one unit row per entry


def iter_vector_batches(
    client: redis.Redis,
    ctx: Context,
    source: VectorSource,
    *,
    model: str | None = None,
    skipped: list[int] | None = None,
    count: int = 1000,
) -> Iterator[VectorBatch]:
    """Every entry of the cache with a vector of the index's width, batch by batch (SCAN MATCH on the
    cache's prefix, on every shard). `skipped`, when given, counts entries without such a vector."""

    def skip() -> None:
        if skipped is not None:
            skipped[0] += 1

    for _keys, entries, vectors in iter_stored_vectors(
        client, ctx, source.cache, source.field, source.nbytes, source.dtype, model=model, count=count, on_skip=skip
    ):
        yield VectorBatch(entries, unit_rows(vectors))


def iter_stored_vectors(
    client: redis.Redis,
    ctx: Context,
    cache: str,
    field: str,
    nbytes: int,
    dtype: str,
    *,
    model: str | None = None,
    count: int = 1000,
    on_skip: Callable[[], None] | None = None,
) -> Iterator[tuple[list[bytes], list[Entry], np.ndarray]]:
    """(keys, entries, float32 rows as stored) of the cache's entries whose `field` holds a vector of
    `nbytes`, batch by batch from the scan (every shard); on_skip() for an entry without one. The
    one streaming read of stored vectors that the audit's engines and the cluster searches share."""
    flt = EntryFilter(cache=cache, model=model)
    field_name = field.encode()
    opts = ScanOptions(
        match=flt.scan_match(None, ctx), count=count, elide=tuple(f for f in DEFAULT_ELIDE if f != field)
    )
    stored = np.dtype(dtype).newbyteorder("<")
    for batch in iter_batches(client, opts):
        keys, entries, raws = [], [], []
        for rec in batch:
            item = decode_record(rec, ctx, full=False)
            if not isinstance(item, Entry) or not searchable(item.layout) or not flt.accepts(item):
                continue
            raw = rec.value.get(field_name) if isinstance(rec.value, dict) else None
            if not isinstance(raw, bytes) or len(raw) != nbytes:
                if on_skip is not None:
                    on_skip()
                continue
            keys.append(rec.key)
            entries.append(item)
            raws.append(raw)
        if entries:
            yield (
                keys,
                entries,
                np.frombuffer(b"".join(raws), dtype=stored).reshape(len(entries), -1).astype(np.float32),
            )


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms == 0, 1, norms)).astype(np.float32, copy=False)


def query_row(source: VectorSource, vector: bytes) -> np.ndarray:
    """A query vector (the bytes the index would be sent) as one unit float32 row."""
    row = np.frombuffer(vector, dtype=np.dtype(source.dtype).newbyteorder("<")).astype(np.float32)
    return unit_rows(row.reshape(1, -1))[0]


def within(client: redis.Redis, ctx: Context, source: VectorSource, vector: bytes, threshold: float) -> list:
    """(key, distance) of every entry within `threshold` of `vector`, as a VECTOR_RANGE query of a
    complete index would answer; unordered."""
    q = query_row(source, vector)
    found = []
    for got in iter_vector_batches(client, ctx, source):
        dist = 1.0 - got.vectors @ q
        for i in np.flatnonzero(dist <= threshold).tolist():
            found.append((got.entries[i].key, float(dist[i])))
    return found


def nearest(client: redis.Redis, ctx: Context, source: VectorSource, vector: bytes, k: int, exclude: str) -> list:
    """(key, distance) of the k entries nearest to `vector` other than `exclude`, closest first."""
    q = query_row(source, vector)
    best: list[tuple[float, str]] = []  # a max-heap of the k closest, by negated distance
    for got in iter_vector_batches(client, ctx, source):
        dist = 1.0 - got.vectors @ q
        for i in np.argsort(dist, kind="stable")[: k + 1].tolist():
            key = got.entries[i].key
            if key == exclude:
                continue
            item = (-float(dist[i]), key)
            if len(best) < k:
                heapq.heappush(best, item)
            elif item > best[0]:
                heapq.heapreplace(best, item)
    return [(key, -neg) for neg, key in sorted(best, reverse=True)]
