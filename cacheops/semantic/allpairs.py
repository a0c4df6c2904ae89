"""Every entry's nearest other entries of a semantic cache, from its stored vectors, without a query per entry.

The index's own KNN (neighbours.iter_nearest) asks the server one FLAT query per entry: quadratic,
about 0.9 ms per query at 5k entries and 9 ms at 50k. Here the vectors are read once through the scan
engine into a spool file (spool.py: on disk; in memory 5 bytes per entry, 9 while searched) and compared on the client:

- exact: blocks of rows against chunks of rows, float32 matrix products (BLAS), a running top-k per
  row (topk.py). Memory is bounded by the block size, not by the cache.
- ivf: beyond EXACT_MAX rows in one lookup scope, an inverted file (ivf.py): sqrt(n) k-means lists,
  rewritten to disk in list order; each list's rows are compared exactly, by the same products, with
  the rows of the `probes` lists whose centroids are nearest its own. Its recall@k is measured against
  exact on a sample before it is used, the probes doubled from 1 until recall reaches MIN_RECALL (all
  of it when the sample is the whole scope); if it never does, the scope is searched exactly.
  Chosen by measurement: on the benchmark's cache (many entries at exactly the same distance)
  hnswlib and faiss HNSW reached recall@10 0.85-0.88 at ef 64-256; faiss IVFFlat reached 1.0 but
  scans lists one query at a time (~1 GFLOP/s here); the inverted file searched a list at a time with
  BLAS needs no extra package.

Pairs only ever form within one lookup scope (the audit passes how to tell an entry's scope and
answer apart): rows are grouped by scope and each group is searched on its own.
Distances are cosine distances (1 - cosine similarity), the unit of the libraries' thresholds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import redis

from ..inspect.catalog import decode_record
from ..layouts import Context, Entry
from ..server.keyspace import read_records
from .ivf import InvertedFile
from .neighbours import NearestStats, SemanticCache
from .spool import StoredVectors
from .topk import Block, exact_search
from .vectorscan import iter_stored_vectors

METHODS = ("auto", "exact", "ivf", "knn")
BLOCK = 1024  # query rows per block of the exact search, against 4 x BLOCK candidate rows (16 MB of similarities)
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
    dtype = np.dtype(sc.dtype)
    store = StoredVectors(sc.vector.nbytes // dtype.itemsize)

    def skip() -> None:
        stats.skipped += 1

    for keys, entries, vectors in iter_stored_vectors(
        client, ctx, sc.name, sc.vector_field, sc.vector.nbytes, sc.dtype, model=model, count=count, on_skip=skip
    ):
        store.add(keys, [hash(scope_of(e)) for e in entries], [hash(answer_of(e)) for e in entries], vectors)
    store.finish()
    assert store.alive is not None  # set by finish()
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


# -- the searches: each yields topk.Block tuples ------------------------------------------------------


def exact_blocks(store: StoredVectors, group: np.ndarray, k: int, queries: np.ndarray | None = None) -> Iterator[Block]:
    """Exact top-k of `queries` (default: every row of the group) among the group's rows."""
    return exact_search(store, group, k, BLOCK, queries)


def ivf_blocks(store: StoredVectors, group: np.ndarray, k: int, report: SearchReport) -> Iterator[Block] | None:
    """The group's neighbours from an inverted file (ivf.py), once its recall on a sample reaches
    MIN_RECALL (every neighbour when the sample is the whole group), the probes doubled from 1 until
    it does; None when it never does (the caller searches exactly)."""
    sample = _sample(group)
    (_, exact_idx, exact_dist) = _concat(exact_blocks(store, group, k, queries=sample))
    index = InvertedFile(store, group, keep=sample)
    try:
        target = 1.0 if len(sample) == len(group) else MIN_RECALL
        places = np.sort(index.kept)
        probes = 1
        while True:
            rows, idx, dist = _concat(index.search(k, probes, places=places))
            order = np.argsort(rows)
            recall = _recall((idx[order], dist[order]), exact_idx, exact_dist, sample)
            if recall >= target or probes >= index.pieces:
                break
            probes = min(index.pieces, 2 * probes)
    except BaseException:
        index.close()
        raise
    report.recall_sample += len(sample)
    if recall < target:
        index.close()
        report.notes.append(
            f"the approximate search reached recall@{k} {recall:.3f} < {target} on a {len(sample)}-row "
            f"sample of a {len(group):,}-entry scope: that scope was searched exactly"
        )
        return None
    report.recall_at_k = recall if report.recall_at_k is None else min(report.recall_at_k, recall)
    report.probes = f"{probes}/{index.pieces}" if report.probes is None else report.probes

    def blocks() -> Iterator[Block]:
        try:
            yield from index.search(k, probes)
        finally:
            index.close()

    return blocks()


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
    if not parts:
        return np.empty(0, np.int64), np.empty((0, 0), np.int64), np.empty((0, 0), np.float32)
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))  # type: ignore[return-value]


def nearest_blocks(store: StoredVectors, k: int, method: str, report: SearchReport) -> Iterator[Block]:
    """Every alive row's k nearest rows of its own scope, block by block (method: auto | exact | ivf)."""
    from threadpoolctl import threadpool_limits

    # One BLAS thread: most products here are a few hundred rows, too small to share, and on a busy
    # machine OpenBLAS's second thread spins waiting for a core: measured at 100k on a loaded 2-core
    # machine, 16 s of CPU with two threads against 5.8 s with one, and twice the wall time.
    with threadpool_limits(1, user_api="blas"):
        yield from _nearest_blocks(store, k, method, report)


def _nearest_blocks(store: StoredVectors, k: int, method: str, report: SearchReport) -> Iterator[Block]:
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
