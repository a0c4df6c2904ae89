"""Left pane: the caches of one catalog pass (name, kind, entries), listed as the pass finds them.

While the pass runs, each cache shows the keys of its shape counted so far ("12,000…"); its end
puts the catalog's figures in the same rows, so the highlighted cache (and its listing) stays put."""

from __future__ import annotations

from textual.message import Message
from textual.widgets import DataTable

from ...inspect.catalog import Catalog


class CacheList(DataTable):
    """One row per cache; highlighting a row asks the entry table to list that cache."""

    class Chosen(Message):
        def __init__(self, cache: str) -> None:
            super().__init__()
            self.cache = cache

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.border_title = "caches"

    def on_mount(self) -> None:
        self.add_column("cache", key="cache")
        self.add_column("kind", key="kind")
        self.add_column("entries", key="entries")

    def show_progress(self, counts: dict[str, tuple[str, int]], scanned: int) -> None:
        """The caches found so far by a running pass, with their keys counted so far."""
        for name, (kind, keys) in counts.items():
            if kind == "infrastructure":
                continue  # cacheops' own keys (operations log, hit records) hold no entries to browse
            self._put(name, kind, f"{keys:,}…")
        self.border_subtitle = f"scanning: {scanned:,} keys so far"

    def show(self, catalog: Catalog) -> None:
        """The pass's result: its figures in place; rows of caches it did not confirm go."""
        names = set()
        for summary in catalog.caches:
            if summary.entries == 0 and summary.kind == "infrastructure":
                continue  # cacheops' own operations log and tag hashes hold no entries to browse
            names.add(summary.name)
            self._put(summary.name, summary.kind, f"{summary.entries:,}")
        for key in [k for k in self.rows if k.value not in names]:
            self.remove_row(key)
        self.border_subtitle = f"{len(catalog.caches)} caches, {catalog.scanned_keys:,} keys in {catalog.seconds:.1f}s"

    def _put(self, name: str, kind: str, entries: str) -> None:
        if name in self.rows:
            if self.get_cell(name, "entries") != entries:
                self.update_cell(name, "entries", entries)
        else:
            self.add_row(name, kind, entries, key=name)

    @property
    def current(self) -> str | None:
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def add_entries(self, cache: str, delta: int) -> None:
        """Adjust a cache's count after an eviction, without another catalog pass."""
        if cache in self.rows:
            current = int(str(self.get_cell(cache, "entries")).replace(",", "").rstrip("…") or 0)
            self.update_cell(cache, "entries", f"{max(0, current + delta):,}")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.post_message(self.Chosen(str(event.row_key.value)))
