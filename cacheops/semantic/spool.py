"""A semantic cache's stored vectors on disk, for the all-pairs search (allpairs.py, ivf.py).

The vectors go to an unnamed temporary file as the scan delivers them (gone when closed, or when the
process dies) and are read back a block at a time with pread into fresh arrays. Not a numpy
memmap: pages of a mapped file count in the process's resident memory while it stays mapped, so a
search that touches every row would grow the RSS with the cache.
Per row only a 4-byte answer hash and an alive flag stay in memory (5 bytes), and a scope hash when the
cache has more than one lookup scope; keys and their offsets are in files too, read back only for
the few pairs the audit shows.
"""

from __future__ import annotations

import ctypes
import os
import tempfile
from array import array
from typing import BinaryIO

import numpy as np


def pread_into(fd: int, out: np.ndarray, offset: int) -> None:
    """Fill the contiguous array `out` with the file's bytes from `offset` (short reads retried)."""
    view = out.data.cast("B")
    done = 0
    while done < len(view):
        got = os.preadv(fd, [view[done:]], offset + done)
        if got <= 0:
            raise OSError(f"spool file ended at byte {offset + done}")
        done += got


def pwrite_from(fd: int, data: np.ndarray, offset: int) -> None:
    view = np.ascontiguousarray(data).data.cast("B")
    done = 0
    while done < len(view):
        done += os.pwritev(fd, [view[done:]], offset + done)


def read_runs(fd: int, index: np.ndarray, width: int, dtype) -> np.ndarray:
    """Rows `index` (sorted ascending) of a file of fixed-width rows: one read per run of consecutive rows."""
    out = np.empty((len(index), width), dtype=dtype)
    if not len(index):
        return out
    row_bytes = width * out.itemsize
    breaks = np.flatnonzero(np.diff(index) != 1) + 1
    starts = [0, *breaks.tolist()]
    ends = [*breaks.tolist(), len(index)]
    for s, e in zip(starts, ends):
        pread_into(fd, out[s:e], int(index[s]) * row_bytes)
    return out


def _glibc():
    """The C library's handle where it is glibc (mallopt, malloc_trim), else None."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def return_freed_memory() -> None:
    """Large blocks straight from and back to the OS (glibc): its default raises the size above which
    it maps blocks each time a mapped block is freed, so after the first freed 16 MB similarity block
    every array below that size comes from the heap, whose holes are never given back, and the
    resident memory creeps up with the number of blocks, that is with the cache. Process-wide; a
    no-op off glibc."""
    global _RETURNING
    if _RETURNING:
        return
    _RETURNING = True
    libc = _glibc()
    if libc is not None:
        libc.mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD: 1 MiB, fixed (setting it stops the adjustment)


_RETURNING = False


def give_back_freed_memory() -> None:
    """Return the allocator's free pages to the OS (glibc malloc_trim; a no-op elsewhere). Called once
    the inverted file is built (ivf.py): its per-row arrays are freed, and pages left free in the
    middle of the heap would otherwise stay resident through the search. Measured at 1M entries:
    see docs/benchmarks.md (audit at scale)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def temporary() -> BinaryIO:
    # Unnamed: nothing is left behind, even if the process is killed. Closed by the owner's close().
    return tempfile.TemporaryFile(prefix="cacheops-audit-")  # noqa: SIM115


def _alive_rows(alive: np.ndarray, step: int = 1 << 16) -> np.ndarray:
    """np.flatnonzero(alive) as 4-byte row numbers, a step at a time: flatnonzero's own 8-byte result
    over every row was the peak of the audit's first search phase at 1M entries."""
    rows = np.empty(int(alive.sum()), dtype=np.int32 if len(alive) < 2**31 else np.int64)
    filled = 0
    for start in range(0, len(alive), step):
        found = np.flatnonzero(alive[start : start + step]) + start
        rows[filled : filled + len(found)] = found
        filled += len(found)
    return rows


class StoredVectors:
    """The cache's entries as rows: unit float32 vectors in a temporary file, and per row in memory
    only a scope hash, an answer hash and whether the row counts (SCAN may return a key twice)."""

    def __init__(self, dims: int):
        return_freed_memory()
        self.dims = dims
        self._vectors = temporary()
        self._keys = temporary()
        self._key_ends = temporary()  # int64 per row: where its key ends in _keys
        self._key_hashes = temporary()  # int64 per row, until finish() drops duplicate keys
        self._scopes = temporary()  # int64 per row; in memory after finish() only if they differ
        self._keys_size = 0
        # 32-bit answer hashes: the audit compares them only between an entry and its k nearest, so
        # two different answers are taken for one with a chance of 2^-32 per pair (at 1M entries and
        # k = 10, fewer than one miscounted pair in 400 audits), for 4 bytes a row less than 64-bit ones
        self._answers = array("i")
        self.count = 0
        self.alive: np.ndarray | None = None
        self.scope: np.ndarray | None = None  # None: every row has the scope `only_scope`
        self.only_scope: int | None = None
        self.answer: np.ndarray | None = None

    def add(self, keys: list[bytes], scopes: list[int], answers: list[int], vectors: np.ndarray) -> None:
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = (vectors / np.where(norms == 0, 1, norms)).astype(np.float32, copy=False)
        self._vectors.write(vectors.tobytes())
        ends = self._keys_size + np.cumsum([len(k) for k in keys], dtype=np.int64)
        self._keys_size = int(ends[-1]) if len(ends) else self._keys_size
        self._key_ends.write(ends.tobytes())
        self._key_hashes.write(np.array([hash(k) for k in keys], dtype=np.int64).tobytes())
        self._keys.write(b"".join(keys))
        self._scopes.write(np.array(scopes, dtype=np.int64).tobytes())
        wide = np.array(answers, dtype=np.int64)
        self._answers.frombytes((wide ^ (wide >> 32)).astype(np.int32).tobytes())  # astype keeps the low 32 bits
        self.count += len(keys)

    def finish(self) -> int:
        """Freeze the rows; SCAN may return a key twice: later copies are dropped. Returns the duplicates."""
        for f in (self._vectors, self._keys, self._key_ends, self._key_hashes, self._scopes):
            f.flush()
        self.answer = np.frombuffer(self._answers, dtype=np.int32)
        self.alive = np.ones(self.count, dtype=bool)
        hashes = self._read_column(self._key_hashes)
        hashes.sort()  # in place: one copy of the column in memory, not numpy.unique's several
        repeated = np.unique(hashes[1:][hashes[1:] == hashes[:-1]])
        if len(repeated):
            hashes = self._read_column(self._key_hashes)
            seen = set()
            for row in np.flatnonzero(np.isin(hashes, repeated)).tolist():
                self.alive[row] = hashes[row] not in seen
                seen.add(hashes[row])
        del hashes
        self._key_hashes.close()
        scope = self._read_column(self._scopes)
        self._scopes.close()
        if self.count and (scope == scope[0]).all():
            self.only_scope = int(scope[0])
        else:
            self.scope = scope
        return int(self.count - self.alive.sum())

    def _read_column(self, f: BinaryIO) -> np.ndarray:
        out = np.empty(self.count, dtype=np.int64)
        pread_into(f.fileno(), out, 0)
        return out

    def scope_hashes(self, limit: int) -> list[int]:
        """The distinct lookup scopes of the alive rows (at most `limit` of them)."""
        if self.scope is None:
            return [] if self.only_scope is None else [self.only_scope]
        assert self.alive is not None
        return np.unique(self.scope[self.alive])[:limit].tolist()

    @property
    def fd(self) -> int:
        return self._vectors.fileno()

    def rows(self, index: np.ndarray) -> np.ndarray:
        """The vectors of these rows (sorted ascending), read from the file: only they enter memory."""
        return read_runs(self.fd, index, self.dims, np.float32)

    def key(self, row: int) -> bytes:
        ends = np.zeros(2, dtype=np.int64)
        if row:
            pread_into(self._key_ends.fileno(), ends, (row - 1) * 8)
        else:
            pread_into(self._key_ends.fileno(), ends[1:], 0)
        out = bytearray(int(ends[1] - ends[0]))
        if out:
            os.preadv(self._keys.fileno(), [out], int(ends[0]))
        return bytes(out)

    def groups(self) -> list[np.ndarray]:
        """Row numbers per lookup scope (alive rows only), each sorted ascending."""
        assert self.alive is not None  # after finish()
        rows = _alive_rows(self.alive)
        if not len(rows):
            return []
        if self.scope is None:
            return [rows]
        scopes = self.scope[rows]
        if (scopes == scopes[0]).all():
            return [rows]
        order = np.argsort(scopes, kind="stable")
        rows, scopes = rows[order], scopes[order]
        cuts = np.flatnonzero(scopes[1:] != scopes[:-1]) + 1
        return [np.sort(g) for g in np.split(rows, cuts)]

    def close(self) -> None:
        for f in (self._vectors, self._keys, self._key_ends, self._key_hashes, self._scopes):
            f.close()
