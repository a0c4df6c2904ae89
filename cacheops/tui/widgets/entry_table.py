"""Middle pane: a cache's entries, streamed in batches from the library's lazy iterator.

Only what is shown is held (a few columns per row, up to MAX_ROWS rows); more is pulled when the
cursor nears the end or on request, in a worker thread so the screen stays responsive. A filter that
matches rarely still shows what it found every SLICE seconds, and a new source never waits for the
old one's batch: the worker drops an old source at its next item.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from textual import work
from textual.markup import escape
from textual.message import Message
from textual.widgets import DataTable

from ... import render
from ...layouts import Entry

BATCH = 200  # rows pulled per step
MAX_ROWS = 10_000  # rows shown at most: past this, narrow with the filter
PREFETCH = 20  # pull the next batch when the cursor is this close to the last row
SLICE = 0.25  # seconds: rows found so far are shown at least this often while a batch is pulled
FIRST_SCREEN = 50  # a new source's first rows are shown as soon as a screenful is in, before the
# rest of its first batch (the table measures each new cell's width: fewer rows, sooner on screen)
HIT_COLUMNS = ("hits", "last hit")  # only for caches whose app records hits (cacheops_track)


def last_hit_text(hits: dict | None, now: float) -> str:
    if not hits:
        return "-"  # no record: written before tracking began, or not tracked
    if not hits.get("last_hit"):
        return "never"
    return render.human_duration(max(0.0, now - hits["last_hit"])) + " ago"


def row_of(entry: Entry, hit_columns: bool = False, now: float | None = None) -> tuple:
    """The cells of columns_for(hit_columns): hits next to the prompt, where a sort by them shows."""
    prompt = entry.prompt if entry.prompt is not None else f"md5 {(entry.prompt_hash or '')[:12]}… (not stored)"
    row: tuple = (render.preview(prompt, 30),)
    if hit_columns:
        hits = entry.hits
        row += (f"{hits['hits']:,}" if hits else "-", last_hit_text(hits, time.time() if now is None else now))
    return row + (
        render.preview(entry.answer, 22),
        entry.model or "-",
        render.human_duration(None if entry.ttl_ms is None else entry.ttl_ms / 1000),
        render.human_bytes(entry.bytes),
        entry.cache,
    )


def columns_for(hit_columns: bool) -> tuple[str, ...]:
    return ("prompt",) + (HIT_COLUMNS if hit_columns else ()) + ("answer", "model", "TTL", "size", "cache")


class EntryTable(DataTable):
    class Highlighted(Message):
        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    class Failed(Message):
        def __init__(self, error: BaseException) -> None:
            super().__init__()
            self.error = error

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.border_title = "entries"
        self._stream: Iterator | None = None
        self._opener: Callable[[], Iterator] | None = None
        self._lock = threading.Lock()  # one thread advances the stream at a time
        self._generation = 0  # bumped on every new source: late batches of an old one are dropped
        self._exhausted = True
        self._loading = False
        self._label = ""
        self.hit_columns = False
        self.first_rows_at: float | None = None  # monotonic time the current source's first rows landed

    def on_mount(self) -> None:
        self._columns(False, force=True)

    def _columns(self, hit_columns: bool, force: bool = False) -> None:
        """The hits and last-hit columns come and go with the cache's tracking."""
        if hit_columns == self.hit_columns and not force:
            self.clear()
            return
        self.hit_columns = hit_columns
        self.clear(columns=True)
        for name in columns_for(hit_columns):
            self.add_column(name, key=name)

    # -- sources ------------------------------------------------------------------------------
    def stream(self, label: str, opener: Callable[[], Iterator], hit_columns: bool = False) -> None:
        """List what `opener()` yields (called in a worker thread), batch by batch."""
        self._generation += 1
        self._opener = opener
        self._exhausted = False
        self._label = label
        self.first_rows_at = None
        self._columns(hit_columns)
        self._loading = True
        self._caption()
        self._pull(self._generation, restart=True)

    def show_entries(self, label: str, entries: list[Entry]) -> None:
        """A fixed list (find by prompt, neighbours): no stream behind it."""
        self._generation += 1
        self._opener = None
        self._exhausted = True
        self._label = label
        self._columns(any(e.hits for e in entries))
        self._add(entries)
        self._caption()

    def remove_keys(self, keys) -> None:
        for key in keys:
            if key in self.rows:
                self.remove_row(key)
        self._caption()

    @property
    def label(self) -> str:
        """What is listed: the cache, its filter, its order (the caption, unescaped)."""
        return self._label

    @property
    def current_key(self) -> str | None:
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def load_more(self) -> None:
        if not self._exhausted and not self._loading and self.row_count < MAX_ROWS:
            self._loading = True
            self._caption()
            self._pull(self._generation)

    # -- loading ------------------------------------------------------------------------------
    @work(thread=True, group="entries", exit_on_error=False)
    def _pull(self, generation: int, restart: bool = False) -> None:
        try:
            with self._lock:
                if generation != self._generation:
                    return
                if restart:
                    self._close_stream()
                    self._stream = self._opener() if self._opener is not None else iter(())
                batch: list[Entry] = []
                done = False
                wanted = BATCH
                shown_by = time.monotonic() + SLICE
                first_screen = FIRST_SCREEN if restart else 0
                stream = self._stream or iter(())
                while wanted:
                    if generation != self._generation:
                        return  # a newer source replaced this one: stop pulling at once
                    try:
                        item = next(stream)
                    except StopIteration:
                        done = True
                        break
                    if isinstance(item, Entry):
                        batch.append(item)
                        wanted -= 1
                    # a first screenful, or what a rare filter found so far: shown now, the pull goes on
                    if (first_screen and len(batch) >= first_screen) or (batch and time.monotonic() > shown_by):
                        self.app.call_from_thread(self._deliver, generation, batch, False, True)
                        batch, shown_by, first_screen = [], time.monotonic() + SLICE, 0
            self.app.call_from_thread(self._deliver, generation, batch, done)
        except Exception as exc:  # shown by the app as a notification
            self.app.call_from_thread(self._fail, generation, exc)

    def _close_stream(self) -> None:
        """Close the old source off the new one's path: closing waits for its scan's batch in
        flight (read-ahead), which the new listing need not wait for."""
        old, self._stream = self._stream, None
        if old is not None and hasattr(old, "close"):
            threading.Thread(target=old.close, name="cacheops-close-listing", daemon=True).start()

    def _deliver(self, generation: int, batch: list[Entry], done: bool, partial: bool = False) -> None:
        if generation != self._generation:
            return
        self._loading = partial
        first = self.row_count == 0
        self._add(batch)
        self._exhausted = done or self.row_count >= MAX_ROWS
        self._caption()
        if first and self.row_count:
            self.first_rows_at = time.monotonic()
            self.move_cursor(row=0)
            self._announce()

    def _fail(self, generation: int, exc: BaseException) -> None:
        if generation == self._generation:
            self._loading = False
            self._exhausted = True
            self._caption()
            self.post_message(self.Failed(exc))

    def _add(self, entries: list[Entry]) -> None:
        now = time.time()
        for entry in entries:
            if entry.key not in self.rows:  # SCAN may return a key twice
                self.add_row(*row_of(entry, self.hit_columns, now), key=entry.key)

    def _caption(self) -> None:
        n = self.row_count
        if self._exhausted:
            more = "" if n < MAX_ROWS else f" (first {MAX_ROWS:,}: narrow with the filter)"
            if n == 0:
                more = " (no entries match)"
        else:
            more = "+ (loading…)" if self._loading else "+ (more: scroll down or press m)"
        self.border_title = f"entries: {escape(self._label)}" if self._label else "entries"  # '[text]' is no markup
        self.border_subtitle = f"{n:,}{more}"

    # -- events -------------------------------------------------------------------------------
    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._announce()
        if event.cursor_row >= self.row_count - PREFETCH:
            self.load_more()

    def _announce(self) -> None:
        key = self.current_key
        if key is not None:
            self.post_message(self.Highlighted(key))
