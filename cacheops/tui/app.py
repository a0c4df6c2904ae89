"""`cacheops tui`: caches on the left, their entries in the middle, one entry decoded on the right.

The app is a thin layer: every question goes to the library through Session (the same calls the
CLI makes), always from a worker thread so the screen stays responsive. Deleting goes one way only:
evict.plan -> ConfirmEvictScreen (the preview) -> evict.execute (backup, delete, operations log).

Nothing waits for the whole keyspace: the catalog pass lists caches as it finds them (quick_catalog's
on_progress), and a highlighted cache's entries stream at once from their own SCAN MATCH while the
pass goes on in the background.
"""

from __future__ import annotations

import os
import shlex
import threading
from functools import partial

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Footer, Header, Input, Label, ProgressBar

from ..errors import NotFound
from ..inspect.catalog import Catalog, EntryFilter
from ..layouts import Entry
from ..server.connection import as_cacheops_error, internal_error
from ..server.keyspace import ScanStats
from .screens.confirm_evict import ConfirmEvictScreen
from .screens.find_prompt import FindPromptScreen
from .screens.neighbours import NeighboursScreen
from .session import EntryNeighbours, Session
from .widgets.cache_list import CacheList
from .widgets.entry_detail import EntryDetail
from .widgets.entry_table import EntryTable
from .widgets.hit_rate import HitRate

HIT_RATE_REFRESH = 30.0  # seconds between re-reads of the highlighted cache's hit rate
DETAIL_DELAY = 0.08  # seconds the entry cursor rests before the entry is read in full


class CachesFound(Message):
    """The running catalog pass found a cache it had not seen (posted from its thread)."""


def parse_filter(text: str, cache: str | None) -> EntryFilter:
    """'model:gpt-4o refund' -> EntryFilter(cache, model='gpt-4o', text='refund')."""
    model, words = None, []
    for word in text.split():
        if word.startswith("model:") and len(word) > len("model:"):
            model = word[len("model:") :]
        else:
            words.append(word)
    return EntryFilter(cache=cache, model=model, text=" ".join(words) or None)


class CacheopsApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "cacheops"
    BINDINGS = [
        Binding("q", "quit", "quit"),
        Binding("r", "refresh", "refresh"),
        Binding("slash", "focus_filter", "filter"),
        Binding("f", "find", "find by prompt"),
        Binding("n", "neighbours", "neighbours"),
        Binding("d", "evict", "evict"),
        Binding("s", "sort_hits", "sort by hits"),
        Binding("w", "hit_window", "hit-rate window"),
        Binding("m", "more", "more rows", show=False),
        Binding("tab", "focus_next", "next pane", show=False),
    ]

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self.sub_title = session.server
        self._scan_stats: ScanStats | None = None
        self._scan_total = 0
        self._progress: dict[str, tuple[str, int]] = {}  # the running pass's counts (written by its thread)
        self._caches_seen: set[str] = set()
        self._progress_timer: Timer | None = None
        self._read_timer: Timer | None = None
        self._progress_lock = threading.Lock()
        self.catalog_done = threading.Event()  # set when the latest catalog pass has ended
        self.tracked: dict[str, dict] = {}  # caches whose app records hits (cacheops_track)
        self.sort_by_hits = False
        self._listing: tuple | None = None  # (cache, filter, sort) the entry table streams now
        self.last_result = None  # the last EvictResult (tests and the status line read it)

    # -- layout -------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield CacheList(id="caches")
                yield HitRate(id="hit-rate")
                yield Label("", id="scan-status")
                yield ProgressBar(id="scan-progress", show_eta=False)
            with Vertical(id="centre"):
                yield Input(placeholder="filter: text in prompt/answer/key, model:NAME  (enter to apply)", id="filter")
                yield EntryTable(id="entries")
            yield EntryDetail(id="detail")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(CacheList).focus()
        self.query_one(HitRate).show(None, None)
        self.set_interval(HIT_RATE_REFRESH, self._refresh_hit_rate)
        self.action_refresh()

    def get_system_commands(self, screen):
        yield from super().get_system_commands(screen)
        yield SystemCommand("Refresh", "Scan the keyspace again (one catalog pass)", self.action_refresh)
        yield SystemCommand("Find by prompt", "Every cached copy of a user's text", self.action_find)
        yield SystemCommand("Neighbours", "Nearest entries of the selected semantic entry", self.action_neighbours)
        yield SystemCommand("Evict entry", "Preview, confirm, back up and delete the selected entry", self.action_evict)
        yield SystemCommand("Filter entries", "Focus the filter (text, model:NAME)", self.action_focus_filter)
        yield SystemCommand("Load more rows", "Pull the next batch of entries", self.action_more)
        yield SystemCommand(
            "Sort by hits",
            "Most hit entries first, from the tracker's records (again: scan order)",
            self.action_sort_hits,
        )
        yield SystemCommand("Hit-rate window", "Show the hit rate over 1h, 24h or 7d", self.action_hit_window)

    # -- errors -------------------------------------------------------------------------------
    def report(self, exc: BaseException) -> None:
        """A failure as one notification, never a traceback (CACHEOPS_DEBUG=1 re-raises)."""
        error = as_cacheops_error(exc)
        if error is not None:
            self.notify(error.message, title="cacheops", severity="error", timeout=8)
            return
        if os.environ.get("CACHEOPS_DEBUG"):
            raise exc
        self.notify(internal_error(exc), title="cacheops", severity="error", timeout=8)

    def _from_thread_report(self, exc: BaseException) -> None:
        self.call_from_thread(self.report, exc)

    # -- catalog ------------------------------------------------------------------------------
    def action_refresh(self) -> None:
        if self._progress_timer is not None:
            self._progress_timer.stop()  # a pass still running is superseded: its results are dropped
        self._scan_stats = ScanStats()
        self.catalog_done.clear()
        self._listing = None  # the listing restarts too, when the first caches are found
        with self._progress_lock:
            self._progress, self._caches_seen = {}, set()
        self.query_one("#scan-status", Label).update("scanning…")
        bar = self.query_one("#scan-progress", ProgressBar)
        bar.display = True
        bar.update(total=None, progress=0)
        self._progress_timer = self.set_interval(0.2, self._show_scan_progress)
        self._catalog(self._scan_stats)

    def _show_scan_progress(self) -> None:
        if self._scan_stats is not None:
            self.query_one("#scan-progress", ProgressBar).update(
                total=self._scan_total or None, progress=self._scan_stats.keys
            )
            self.query_one("#scan-status", Label).update(f"scanning… {self._scan_stats.keys:,} keys")
            self._show_caches_found()

    def _show_caches_found(self) -> None:
        with self._progress_lock:
            counts = dict(self._progress)
        if not counts or self._scan_stats is None or self.catalog_done.is_set():
            return  # nothing yet, or the pass's own figures are already shown
        caches = self.query_one(CacheList)
        caches.show_progress(counts, self._scan_stats.keys)
        if self._listing is None and caches.current is not None:
            self.list_cache(caches.current)

    def on_caches_found(self, _message: CachesFound) -> None:
        self._show_caches_found()

    def _catalog_progress(self, stats: ScanStats, counts: dict[str, tuple[str, int]]) -> None:
        """From the catalog thread, after every scan batch: keep the counts for the 0.2 s timer, and
        say at once when a cache appears (the first one is what the user waits for)."""
        if stats is not self._scan_stats:
            return  # a superseded pass
        with self._progress_lock:
            self._progress = counts
            new = counts.keys() - self._caches_seen
            self._caches_seen.update(new)
        if new:
            self.post_message(CachesFound())

    @work(thread=True, exclusive=True, group="catalog", exit_on_error=False)
    def _catalog(self, stats: ScanStats) -> None:
        try:
            # set here, not through call_from_thread: that would wait for the screen's first render;
            # the first listing (after the first batch below) reads it
            self.tracked = self.session.tracked()
            self._scan_total = self.session.dbsize()
            catalog = self.session.catalog(stats, partial(self._catalog_progress, stats))
        except Exception as exc:
            self.call_from_thread(self._catalog_done, stats, None)
            self._from_thread_report(exc)
            return
        self.call_from_thread(self._catalog_done, stats, catalog)

    def _catalog_done(self, stats: ScanStats, catalog: Catalog | None) -> None:
        if stats is not self._scan_stats:
            return  # a superseded pass
        self.catalog_done.set()
        if self._progress_timer is not None:
            self._progress_timer.stop()
        self.query_one("#scan-progress", ProgressBar).display = False
        status = self.query_one("#scan-status", Label)
        if catalog is None:
            status.update("scan failed")
            return
        caches = self.query_one(CacheList)
        caches.show(catalog)
        status.update(f"{catalog.scanned_keys:,} keys scanned, {catalog.unknown_keys:,} unknown")
        if not catalog.caches:
            self.query_one(EntryDetail).show(
                None, "No LLM caches found on this server. Fill one with `cacheops demo --into URL`, then press r."
            )
        elif caches.current is not None:
            self.list_cache(caches.current)  # a no-op when it is already listed

    # -- entries ------------------------------------------------------------------------------
    def list_cache(self, cache: str, again: bool = False) -> None:
        """Stream the cache's entries (unless exactly this listing is already shown and not `again`)."""
        text = self.query_one("#filter", Input).value
        listing = (cache, text.strip(), self.sort_by_hits)
        if listing == self._listing and not again:
            return
        if self._listing is None or self._listing[0] != cache:
            self._hit_rate(cache)
        self._listing = listing
        self.session.hold_background()
        flt = parse_filter(text, cache)
        tracked = cache in self.tracked
        by_hits = self.sort_by_hits and tracked
        label = cache + (f" [{text.strip()}]" if text.strip() else "") + (", most hit first" if by_hits else "")
        opener = partial(self.session.entries_by_hits if by_hits else self.session.entries, flt)
        self.query_one(EntryDetail).show(None)
        self.query_one(EntryTable).stream(label, opener, hit_columns=tracked)

    def on_data_table_row_highlighted(self, event) -> None:
        if event.data_table.id == "caches":
            self.list_cache(event.row_key.value)

    def on_cache_list_chosen(self, event: CacheList.Chosen) -> None:
        self.list_cache(event.cache)
        self.query_one(EntryTable).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            cache = self.query_one(CacheList).current
            if cache is not None:
                self.list_cache(cache, again=True)
            self.query_one(EntryTable).focus()

    # -- hits ---------------------------------------------------------------------------------
    def action_sort_hits(self) -> None:
        """Most hit entries first (the tracker's records); pressed again: back to scan order."""
        cache = self.query_one(CacheList).current
        if not self.sort_by_hits and cache is not None and cache not in self.tracked:
            self.notify(
                f"{cache} is not tracked: no hit counts to sort by (the app records them with cacheops_track)",
                severity="warning",
            )
            return
        self.sort_by_hits = not self.sort_by_hits
        self.notify("most hit entries first" if self.sort_by_hits else "scan order")
        if cache is not None:
            self.list_cache(cache)

    def action_hit_window(self) -> None:
        panel = self.query_one(HitRate)
        panel.next_window()
        self._refresh_hit_rate()

    def _refresh_hit_rate(self) -> None:
        cache = self.query_one(CacheList).current
        if cache is not None:
            self._hit_rate(cache)

    @work(thread=True, exclusive=True, group="hit-rate", exit_on_error=False)
    def _hit_rate(self, cache: str) -> None:
        panel = self.query_one(HitRate)
        try:
            tracked = self.session.tracked()
            hits = self.session.hit_rates(cache, panel.since, panel.bins) if cache in tracked else None
        except Exception as exc:
            self._from_thread_report(exc)
            return
        self.call_from_thread(self._hit_rate_known, cache, tracked, hits)

    def _hit_rate_known(self, cache: str, tracked: dict[str, dict], hits) -> None:
        self.tracked = tracked
        if cache == self.query_one(CacheList).current:
            self.query_one(HitRate).show(cache, hits)

    def on_entry_table_highlighted(self, event: EntryTable.Highlighted) -> None:
        """Read the entry once the cursor rests: scrolling past rows reads none of them, and a new
        listing paints its first rows before the detail pane is rendered."""
        if self._read_timer is not None:
            self._read_timer.stop()
        self._read_timer = self.set_timer(DETAIL_DELAY, partial(self._read, event.key))

    def on_entry_table_failed(self, event: EntryTable.Failed) -> None:
        self.report(event.error)

    @work(thread=True, exclusive=True, group="detail", exit_on_error=False)
    def _read(self, key: str) -> None:
        try:
            item = self.session.read(key)
        except NotFound:
            self.call_from_thread(
                self.query_one(EntryDetail).show, None, f"{key} no longer exists (expired or deleted)."
            )
            return
        except Exception as exc:
            self._from_thread_report(exc)
            return
        self.call_from_thread(self.query_one(EntryDetail).show, item)

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_more(self) -> None:
        self.query_one(EntryTable).load_more()

    # -- find by prompt -----------------------------------------------------------------------
    def action_find(self) -> None:
        self.push_screen(FindPromptScreen(), self._find_answered)

    def _find_answered(self, answer) -> None:
        if answer:
            self._find(*answer)

    @work(thread=True, exclusive=True, group="find", exit_on_error=False)
    def _find(self, text: str, system: str | None) -> None:
        try:
            found = self.session.find(text, system)
        except Exception as exc:
            self._from_thread_report(exc)
            return
        self.call_from_thread(self._found, text, found)

    def _found(self, text: str, found: list[Entry]) -> None:
        if not found:
            self.notify(f"no cached entry for {text!r} (check the exact text and system message)", severity="warning")
            return
        table = self.query_one(EntryTable)
        self._listing = None
        table.show_entries(f"prompt {text!r}", found)
        table.focus()
        self.notify(f"{len(found)} cached cop{'y' if len(found) == 1 else 'ies'} of {text!r}")

    # -- neighbours ---------------------------------------------------------------------------
    def _selected_entry(self) -> Entry | None:
        item = self.query_one(EntryDetail).item
        if isinstance(item, Entry):
            return item
        self.notify("select an entry first", severity="warning")
        return None

    def action_neighbours(self) -> None:
        entry = self._selected_entry()
        if entry is not None:
            self._neighbours(entry)

    @work(thread=True, exclusive=True, group="neighbours", exit_on_error=False)
    def _neighbours(self, entry: Entry) -> None:
        try:
            hood = self.session.neighbourhood(entry)
        except Exception as exc:
            self._from_thread_report(exc)
            return
        self.call_from_thread(self.push_screen, NeighboursScreen(hood), partial(self._neighbours_done, hood))

    def _neighbours_done(self, hood: EntryNeighbours, answer) -> None:
        if not answer:
            return
        what, key = answer
        if what == "show":
            self._read(key)
        elif what == "evict":
            keys = [hood.entry.key] + [n.entry.key for n in hood.within]
            distances = {hood.entry.key: 0.0, **{n.entry.key: n.distance for n in hood.within}}
            self._plan(
                keys, hood.entry.cache, f"tui: neighbourhood of {hood.entry.key} within {hood.threshold:g}", distances
            )

    # -- evict --------------------------------------------------------------------------------
    def action_evict(self) -> None:
        entry = self._selected_entry()
        if entry is not None:
            self._plan([entry.key], entry.cache, "tui: selected entry")

    @work(thread=True, exclusive=True, group="evict", exit_on_error=False)
    def _plan(self, keys: list[str], cache: str, why: str, distances: dict | None = None) -> None:
        try:
            the_plan = self.session.plan_keys(keys, cache, why, distances)
        except Exception as exc:
            self._from_thread_report(exc)
            return
        if the_plan.total == 0:
            the_plan.close()
            self.call_from_thread(
                self.notify, "nothing to evict: the entry is gone or no longer a cache entry", severity="warning"
            )
            return
        self.call_from_thread(self.push_screen, ConfirmEvictScreen(the_plan), partial(self._confirmed, the_plan, keys))

    def _confirmed(self, the_plan, keys: list[str], yes: bool) -> None:
        if not yes:
            the_plan.close()
            self.notify("cancelled: nothing was deleted")
            return
        self._execute(the_plan, keys)

    @work(thread=True, exclusive=True, group="evict", exit_on_error=False)
    def _execute(self, the_plan, keys: list[str]) -> None:
        try:
            result = self.session.execute(the_plan)
            gone = self.session.missing(keys)
        except Exception as exc:
            self._from_thread_report(exc)
            return
        self.call_from_thread(self._evicted, result, gone)

    def _evicted(self, result, gone: list[str]) -> None:
        self.last_result = result
        self.query_one(EntryTable).remove_keys(gone)
        cache_list = self.query_one(CacheList)
        for cache, n in result.per_cache.items():
            cache_list.add_entries(cache, -n)
        self.query_one(EntryDetail).show(
            None,
            f"Evicted {result.deleted:,} entr{'y' if result.deleted == 1 else 'ies'}."
            f"\n\nbackup: {result.backup}\n"
            f"undo with: {self.session.command} restore {shlex.quote(result.backup or '')}",
        )
        self.notify(
            f"deleted {result.deleted:,} of {result.plan.total:,}; backup: {result.backup}", title="evicted", timeout=12
        )
