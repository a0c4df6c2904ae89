"""What the TUI asks of the library, in one place: the same calls the CLI makes, on one client.

Widgets never touch Redis; they call these methods from worker threads. The client comes from
connection.connect (CLIENT NO-TOUCH), and nothing here writes except evict.execute.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import redis

from ..inspect.catalog import Catalog, EntryFilter, UnknownKey, build_context, iter_entries
from ..inspect.finder import find_by_prompt, read_entry
from ..inspect.hits import CacheHits, attach_hits, hit_report, iter_entries_by_hits, tracked_caches
from ..inspect.quick_catalog import quick_catalog
from ..layouts import Context, Entry, Infrastructure, PromptQuery
from ..ops import evict
from ..ops.selection import Selection
from ..semantic.vectorizers import threshold_for_cache
from ..server.keyspace import ScanStats
from ..server.topology import key_count

FIRST_ROWS = 200  # entries a new listing pulls before the background pass may go on (one screenful+)
FIRST_RECORDS = 50  # the first hit records are read for this many entries (the table's first screen)
FOREGROUND_MAX = 1.0  # seconds the background pass waits for a listing's first rows, at most


@dataclass
class EntryNeighbours:
    """One entry's nearest neighbours (closest first) and the distance its cache serves within."""

    entry: Entry
    neighbours: list  # list[neighbours.Neighbour]
    threshold: float
    threshold_source: str

    @property
    def within(self) -> list:
        return [n for n in self.neighbours if n.distance <= self.threshold]


class Session:
    def __init__(self, client: redis.Redis, server: str, command: str = "cacheops"):
        self.client = client
        self.server = server  # redacted URL, for the backup header and the title
        # `cacheops` with the connection options the TUI was started with (password redacted), so
        # the undo hint after an evict runs verbatim against the same server
        self.command = command
        self._ctx: Context | None = None
        self._ctx_lock = threading.Lock()
        # While a new listing pulls its first rows, the catalog pass waits between its batches (up to
        # FOREGROUND_MAX): both would otherwise share the server, the client's core and the GIL, and
        # the rows are what the user waits for. 0: no listing is starting.
        self._foreground_until = 0.0

    @property
    def ctx(self) -> Context:
        with self._ctx_lock:
            if self._ctx is None:
                self._ctx = build_context(self.client)
            return self._ctx

    def dbsize(self) -> int:
        return key_count(self.client)

    def catalog(
        self, stats: ScanStats, on_progress: Callable[[dict[str, tuple[str, int]]], None] | None = None
    ) -> Catalog:
        """One catalog pass; the context is rebuilt so a refresh sees new indexes and prompts.
        The quick catalog: the cache list needs names, kinds and counts, which key shapes give
        without reading every value (values are read for a sample per cache). on_progress gets the
        running counts per cache after every scan batch (quick_catalog's), from this thread."""
        with self._ctx_lock:
            self._ctx = build_context(self.client)
            ctx = self._ctx

        def between_batches(counts: dict[str, tuple[str, int]]) -> None:
            if on_progress is not None:
                on_progress(counts)
            while time.monotonic() < self._foreground_until:
                time.sleep(0.005)

        return quick_catalog(self.client, ctx, stats=stats, on_progress=between_batches)

    def hold_background(self) -> None:
        """A listing is about to start (called as the user selects): the catalog pass waits from now,
        not only from when the listing's worker thread gets going."""
        self._foreground_until = time.monotonic() + FOREGROUND_MAX

    def _first_rows_first(self, items: Iterable) -> Iterator:
        """Pass `items` through; until the first FIRST_ROWS are out (or FOREGROUND_MAX has passed),
        the catalog pass holds back."""
        self._foreground_until = until = time.monotonic() + FOREGROUND_MAX
        try:
            for n, item in enumerate(items):
                # cleared as the last of them is handed over: the caller may pull no further for long
                if n == FIRST_ROWS - 1 and self._foreground_until == until:
                    self._foreground_until = 0.0
                yield item
        finally:
            if self._foreground_until == until:
                self._foreground_until = 0.0

    def entries(self, flt: EntryFilter) -> Iterator[Entry | Infrastructure | UnknownKey]:
        """A lazy stream of one cache's entries (SCAN MATCH on its keys' glob, batch by batch), decoded
        for a listing: the caller pulls what it shows, without waiting for any catalog pass."""
        entries = iter_entries(self.client, self.ctx, flt, full=False)
        return self._first_rows_first(attach_hits(self.client, entries, first=FIRST_RECORDS))

    def entries_by_hits(self, flt: EntryFilter) -> Iterator[Entry]:
        """The same entries, most hit first (the tracker's records), then those with no hit recorded."""
        entries = iter_entries_by_hits(self.client, self.ctx, flt)
        return self._first_rows_first(attach_hits(self.client, entries, first=FIRST_RECORDS))

    def tracked(self) -> dict[str, dict]:
        """Caches whose app records hits with cacheops_track (name -> kind, library, last event)."""
        return tracked_caches(self.client)

    def hit_rates(self, cache: str, since: float, bins: int) -> CacheHits | None:
        """A tracked cache's hit rate over the last `since` seconds in `bins` bins (None: not tracked).
        Rates only: the per-entry records are not walked."""
        report = hit_report(self.client, since=since, cache=cache, bins=bins, entries=False)
        return report.caches[0] if report.caches else None

    def read(self, key: str):
        """One entry in full, with its tracked record (hits; the prompt and model of exact entries)."""
        return next(attach_hits(self.client, [read_entry(self.client, self.ctx, key)]))

    def find(self, text: str, system: str | None = None) -> list[Entry]:
        return find_by_prompt(self.client, self.ctx, PromptQuery(text, system or None))

    def neighbourhood(self, entry: Entry, k: int = 10) -> EntryNeighbours:
        from ..semantic.neighbours import nearest_to

        near = nearest_to(self.client, self.ctx, entry, k)
        threshold, source = threshold_for_cache(entry.cache, entry.layout)
        return EntryNeighbours(entry, near.neighbours, threshold, source)

    def plan_keys(self, keys: list[str], cache: str, why: str, distances: dict[str, float] | None = None) -> evict.Plan:
        """The eviction plan (preview) for these exact keys of one cache; nothing is changed."""
        selection = Selection(keys=[k.encode("utf-8") for k in keys], key_source=why, cache=cache)
        the_plan = evict.plan(self.client, selection, self.ctx, sample_size=10)
        if distances:
            the_plan.distances.update(distances)
        return the_plan

    def missing(self, keys: list[str]) -> list[str]:
        """Which of these keys no longer exist (EXISTS reads no value and, with NO-TOUCH, bumps nothing)."""
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.exists(key)
        return [key for key, n in zip(keys, pipe.execute()) if not n]

    def execute(self, the_plan: evict.Plan) -> evict.EvictResult:
        """Back up, delete, log: the CLI's one destructive path."""
        try:
            return evict.execute(self.client, the_plan, server=self.server, ctx=self.ctx)
        finally:
            the_plan.close()
