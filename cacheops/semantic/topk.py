"""Running top-k of similarity blocks, and the exact block search built on it (allpairs.py, ivf.py).

A search compares a block of query rows with chunks of candidate rows (float32 matrix products) and
folds each chunk into the running k most similar per query. Selecting from a whole chunk
(argpartition) costs about half a matrix product, so it is done only while a query has no k
candidates yet; after that a chunk is first compared with each query's k-th best so far (one pass,
a tenth of the cost) and only the few entries above it are merged.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

# (rows, neighbours, distances): global row numbers of a block of queries, their k nearest other
# rows (-1 where there are fewer), and cosine distances, closest first.
Block = tuple[np.ndarray, np.ndarray, np.ndarray]

SPARSE = 32  # a query with at most this many entries above its k-th best is merged entry by entry
ROWS = 256  # rows per argpartition (bounds its int64 index arrays)
SEED = 64  # columns selected outright while some query has fewer than k candidates


class TopK:
    """The k most similar candidates seen so far for each of a block of query rows."""

    def __init__(self, rows: int, k: int):
        self.k = k
        self.sim = np.full((rows, k), -np.inf, dtype=np.float32)
        self.idx = np.full((rows, k), -1, dtype=np.int64)

    def add(self, sim: np.ndarray, ids: np.ndarray) -> None:
        """Fold in similarities of every query (rows) to candidates `ids` (columns)."""
        floor = self.sim.min(axis=1)
        if sim.shape[1] > SEED and np.isneginf(floor).any():
            # a first k from a few columns gives every query a floor; the rest is compared with it
            self.add(sim[:, :SEED], ids[:SEED])
            sim, ids = sim[:, SEED:], ids[SEED:]
            floor = self.sim.min(axis=1)
        above = sim > floor[:, None]
        counts = np.count_nonzero(above, axis=1)
        dense = np.flatnonzero(counts > SPARSE)
        sparse = np.flatnonzero((counts > 0) & (counts <= SPARSE))
        for start in range(0, len(dense), ROWS):
            self._select(dense[start : start + ROWS], sim, ids)
        if len(sparse):
            self._merge(sparse, counts[sparse], above, sim, ids)

    def _select(self, rows: np.ndarray, sim: np.ndarray, ids: np.ndarray) -> None:
        """These rows' k best of the chunk (one argpartition), then of those and the running k."""
        k = self.k
        block = sim[rows]
        if block.shape[1] > k:
            part = np.argpartition(block, block.shape[1] - k, axis=1)[:, -k:]
            block = np.take_along_axis(block, part, axis=1)
            cand = ids[part]
        else:
            cand = np.broadcast_to(ids, block.shape)
        self._keep(rows, block, cand)

    def _merge(self, rows: np.ndarray, counts: np.ndarray, above: np.ndarray, sim: np.ndarray, ids) -> None:
        """Rows with a few entries above their k-th best: those entries, padded to one width, merged."""
        r, c = np.nonzero(above[rows])
        first = np.concatenate(([0], np.cumsum(counts)[:-1]))
        pos = np.arange(len(r)) - first[r]
        width = int(counts.max())
        new_sim = np.full((len(rows), width), -np.inf, dtype=np.float32)
        new_idx = np.full((len(rows), width), -1, dtype=np.int64)
        new_sim[r, pos] = sim[rows[r], c]
        new_idx[r, pos] = ids[c]
        self._keep(rows, new_sim, new_idx)

    def _keep(self, rows: np.ndarray, new_sim: np.ndarray, new_idx: np.ndarray) -> None:
        k = self.k
        cand_sim = np.concatenate([self.sim[rows], new_sim], axis=1)
        cand_idx = np.concatenate([self.idx[rows], new_idx], axis=1)
        part = np.argpartition(cand_sim, cand_sim.shape[1] - k, axis=1)[:, -k:]
        self.sim[rows] = np.take_along_axis(cand_sim, part, axis=1)
        self.idx[rows] = np.take_along_axis(cand_idx, part, axis=1)

    def result(self, qrows: np.ndarray) -> Block:
        order = np.argsort(-self.sim, axis=1, kind="stable")
        sim = np.take_along_axis(self.sim, order, axis=1)
        idx = np.take_along_axis(self.idx, order, axis=1)
        idx[~np.isfinite(sim)] = -1
        return qrows, idx, (1.0 - sim).astype(np.float32)


def mask_self(sim: np.ndarray, qrows: np.ndarray, crows: np.ndarray) -> None:
    """No row is its own neighbour: -inf where a query row meets itself among the (sorted) candidates."""
    if not len(crows):
        return
    at = np.minimum(np.searchsorted(crows, qrows), len(crows) - 1)
    hit = crows[at] == qrows
    sim[np.flatnonzero(hit), at[hit]] = -np.inf


def exact_search(store, group: np.ndarray, k: int, block: int, queries: np.ndarray | None = None) -> Iterator[Block]:
    """Exact top-k of `queries` (default: every row of the group) among the group's rows (both sorted),
    `block` query rows against 4 x `block` candidate rows at a time."""
    queries = group if queries is None else queries
    for qs in range(0, len(queries), block):
        qrows = queries[qs : qs + block]
        q = store.rows(qrows)
        top = TopK(len(qrows), k)
        for cs in range(0, len(group), 4 * block):
            crows = group[cs : cs + 4 * block]
            sim = q @ store.rows(crows).T
            mask_self(sim, qrows, crows)
            top.add(sim, crows)
        yield top.result(qrows)
