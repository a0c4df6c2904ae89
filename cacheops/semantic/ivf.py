"""The inverted file behind the audit's approximate neighbour search (allpairs.py), on disk.

- Lists: sqrt(n) spherical k-means centroids, trained on a fixed-size sample (TRAIN rows), then every
  row assigned to its nearest centroid in one streaming pass. A list longer than CAP x n/lists is cut
  into pieces of that size that keep its centroid: cached prompts that differ in one word sit at
  exactly the same distance from each other, k-means cannot split them, and one list holding
  thousands of them would cost its length squared.
- The rows are rewritten to a second temporary file in list order, with their row numbers, so a
  list is one contiguous read.
- Search: each piece's rows (a query block at a time) against the rows of the `probes` pieces whose
  centroids are nearest its own (itself first), in chunks, by float32 matrix products and a running
  top-k (topk.py), exactly like the exact search but over far fewer candidates.

Memory does not grow with the cache beyond 4-16 bytes per row while the file is written: the sample,
a query block, a candidate chunk and their similarities are fixed sizes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from .spool import StoredVectors, give_back_freed_memory, pread_into, pwrite_from, temporary
from .topk import Block, TopK

TRAIN = 16_384  # rows of the k-means sample (fixed, so memory is too)
ROUNDS = 8  # Lloyd rounds
CAP = 2.0  # a list holds at most CAP x n / lists rows; longer ones are cut into pieces
QUERY_BLOCK = 512  # query rows compared at a time
CHUNK = 2048  # candidate rows compared at a time (a chunk's similarities: 4 MB)
STREAM = 4096  # rows read at a time while rewriting
ASSIGN = 1024  # rows compared with every centroid at a time (training and assignment)


class InvertedFile:
    """A group's rows in list order on disk: pieces (contiguous ranges) and their centroids."""

    def __init__(self, store: StoredVectors, group: np.ndarray, keep: np.ndarray):
        """Build from the spool; `keep` (sorted rows of the group) are the rows whose place is remembered."""
        self.dims = store.dims
        n = len(group)
        lists = max(1, round(math.sqrt(n)))
        centroids, axes = _train(store, group, lists)
        assign, along = _assign(store, group, centroids, axes)
        counts = np.bincount(assign, minlength=lists)
        cap = max(1, math.ceil(CAP * n / lists))
        # each row's place in list order: its list, then (long lists) its position along the axis
        bounds = np.concatenate(([0], np.cumsum(counts)))
        order = _list_order(assign, bounds)
        for c in np.flatnonzero(counts > cap):
            seg = order[bounds[c] : bounds[c + 1]]
            order[bounds[c] : bounds[c + 1]] = seg[np.argsort(along[seg], kind="stable")]
        del assign, along
        place = np.empty(n, dtype=np.int32 if n < 2**31 else np.int64)
        place[order] = np.arange(n, dtype=place.dtype)
        del order
        pieces = -(-counts // cap)  # per list; empty lists get none
        within = np.arange(pieces.sum()) - np.repeat(np.cumsum(pieces) - pieces, pieces)
        sizes = np.minimum(cap, np.repeat(counts, pieces) - cap * within)
        self.starts = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
        self.kept = place[np.searchsorted(group, keep)]
        self._vectors = temporary()
        self._ids = temporary()
        sums = np.zeros((len(sizes), self.dims), dtype=np.float64)
        for start in range(0, n, STREAM):
            rows = group[start : start + STREAM]
            x = store.rows(rows)
            dest = place[start : start + STREAM]
            order = np.argsort(dest)
            dest, x, rows = dest[order], x[order], rows[order]
            piece = np.searchsorted(self.starts, dest, side="right") - 1
            firsts = np.flatnonzero(np.concatenate(([True], piece[1:] != piece[:-1])))
            sums[piece[firsts]] += np.add.reduceat(x, firsts, axis=0)
            breaks = [0, *(np.flatnonzero(np.diff(dest) != 1) + 1).tolist(), len(dest)]
            for a, b in zip(breaks[:-1], breaks[1:]):
                pwrite_from(self._vectors.fileno(), x[a:b], int(dest[a]) * self.dims * 4)
                pwrite_from(self._ids.fileno(), rows[a:b].astype(np.int64), int(dest[a]) * 8)
        # a piece is probed by its own rows' mean: the pieces of one cut list are neighbours in order
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        self.centroids = (sums / np.where(norms == 0, 1, norms)).astype(np.float32)
        give_back_freed_memory()  # the build's per-row arrays are gone: their pages need not stay

    @property
    def pieces(self) -> int:
        return len(self.starts) - 1

    def nearest(self, piece: int, probes: int) -> list[int]:
        """The piece itself, then the probes - 1 pieces with the nearest centroids."""
        if probes >= self.pieces:
            return [piece, *(p for p in range(self.pieces) if p != piece)]
        sims = self.centroids @ self.centroids[piece]
        sims[piece] = np.inf
        near = np.argpartition(-sims, probes - 1)[:probes]
        return [piece, *(int(p) for p in near if p != piece)][:probes]

    def read(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        x = np.empty((stop - start, self.dims), dtype=np.float32)
        ids = np.empty(stop - start, dtype=np.int64)
        pread_into(self._vectors.fileno(), x, start * self.dims * 4)
        pread_into(self._ids.fileno(), ids, start * 8)
        return x, ids

    def chunks(self, near: list[int]) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """(first place, vectors, ids) of the candidate pieces, CHUNK rows at a time; places are
        consecutive within a chunk only for the first piece's, which is all masking needs."""
        ranges = [(int(self.starts[p]), int(self.starts[p + 1])) for p in near]
        own_start, own_stop = ranges[0]
        for a in range(own_start, own_stop, CHUNK):
            yield (a, *self.read(a, min(own_stop, a + CHUNK)))
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        size = 0
        for a, b in ranges[1:]:
            s = a
            while s < b:
                # never more than CHUNK rows at once, whatever the pieces' lengths: at 1M entries
                # pieces are long, and chunks of up to twice CHUNK were the peak memory's growth with the cache
                stop = min(b, s + CHUNK - size)
                parts.append(self.read(s, stop))
                size += stop - s
                s = stop
                if size >= CHUNK:
                    yield (-1, np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
                    parts, size = [], 0
        if parts:
            yield (-1, np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))

    def search(self, k: int, probes: int, places: np.ndarray | None = None) -> Iterator[Block]:
        """Every row's k nearest among its piece's `probes` nearest pieces; with `places`, only those rows."""
        for piece in range(self.pieces):
            lo, hi = int(self.starts[piece]), int(self.starts[piece + 1])
            if places is None:
                blocks = [np.arange(s, min(hi, s + QUERY_BLOCK)) for s in range(lo, hi, QUERY_BLOCK)]
            else:
                mine = places[(places >= lo) & (places < hi)]
                blocks = [mine[s : s + QUERY_BLOCK] for s in range(0, len(mine), QUERY_BLOCK)]
            near = self.nearest(piece, probes) if blocks else []
            for qplaces in blocks:
                if not len(qplaces):
                    continue
                if places is None:
                    q, qids = self.read(int(qplaces[0]), int(qplaces[-1]) + 1)
                else:
                    pairs = [self.read(int(p), int(p) + 1) for p in qplaces]
                    q, qids = np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])
                top = TopK(len(qplaces), k)
                for first, c, cids in self.chunks(near):
                    sim = q @ c.T
                    if first >= 0:  # the query's own piece: not its own neighbour
                        at = qplaces - first
                        hit = (at >= 0) & (at < len(cids))
                        sim[np.flatnonzero(hit), at[hit]] = -np.inf
                    top.add(sim, cids)
                yield top.result(qids)

    def close(self) -> None:
        self._vectors.close()
        self._ids.close()


def _train(store: StoredVectors, group: np.ndarray, lists: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit centroids from a sample of the group (spherical k-means: a few Lloyd rounds; a list that
    empties keeps its previous centroid), and each list's main axis (the direction its sampled rows
    spread most along, by power iteration), along which a long list is cut."""
    rng = np.random.default_rng(len(group))
    x = store.rows(np.sort(rng.choice(group, min(len(group), max(TRAIN, lists)), replace=False)))
    centroids = x[rng.choice(len(x), lists, replace=False)].copy()
    nearest = np.zeros(len(x), dtype=np.int64)
    for _ in range(ROUNDS + 1):
        sums = np.zeros_like(centroids)
        for start in range(0, len(x), ASSIGN):
            part = x[start : start + ASSIGN]
            nearest[start : start + ASSIGN] = np.argmax(part @ centroids.T, axis=1)
            near = nearest[start : start + ASSIGN]
            order = np.argsort(near, kind="stable")
            firsts = np.flatnonzero(np.concatenate(([True], near[order][1:] != near[order][:-1])))
            sums[near[order][firsts]] += np.add.reduceat(part[order], firsts, axis=0)
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        centroids = np.where(norms > 0, sums / np.where(norms == 0, 1, norms), centroids).astype(np.float32)
    axes = rng.normal(size=centroids.shape).astype(np.float32)
    order = np.argsort(nearest, kind="stable")
    bounds = np.searchsorted(nearest[order], np.arange(lists + 1))
    for c in np.flatnonzero(np.diff(bounds) >= 2):
        spread = x[order[bounds[c] : bounds[c + 1]]] - centroids[c]
        v = axes[c]
        for _ in range(4):
            v = spread.T @ (spread @ v)
            v /= np.linalg.norm(v) or 1.0
        axes[c] = v
    return centroids, axes


def _list_order(assign: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """The rows sorted by list, stable (numpy's argsort(kind="stable") of `assign`), as 4-byte row
    numbers: a counting sort a STREAM of rows at a time, so no 8-byte index over every row is made
    (at 1M rows that alone was 8 MB on top of the build's other per-row arrays)."""
    n = len(assign)
    order = np.empty(n, dtype=np.int32 if n < 2**31 else np.int64)
    next_free = bounds[:-1].astype(np.int64)  # per list: where its next row goes
    for start in range(0, n, STREAM):
        part = assign[start : start + STREAM]
        local = np.argsort(part, kind="stable")
        lists = part[local]
        firsts = np.flatnonzero(np.concatenate(([True], lists[1:] != lists[:-1])))
        runs = np.diff(np.append(firsts, len(lists)))
        rank = np.arange(len(lists)) - np.repeat(firsts, runs)  # position within its list's run
        order[next_free[lists] + rank] = start + local
        next_free[lists[firsts]] += runs
    return order


def _assign(store: StoredVectors, group: np.ndarray, centroids: np.ndarray, axes: np.ndarray):
    """Each row's nearest centroid, and its position along that list's main axis."""
    assign = np.empty(len(group), dtype=np.int32)
    along = np.empty(len(group), dtype=np.float32)
    for start in range(0, len(group), ASSIGN):
        rows = group[start : start + ASSIGN]
        x = store.rows(rows)
        near = np.argmax(x @ centroids.T, axis=1)
        assign[start : start + len(rows)] = near
        along[start : start + len(rows)] = np.einsum("ij,ij->i", x, axes[near])
    return assign, along
