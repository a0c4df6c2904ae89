"""Left pane: the caches of one catalog pass (name, kind, entries)."""

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

    def show(self, catalog: Catalog) -> None:
        current = self.current
        self.clear()
        for summary in catalog.caches:
            if summary.entries == 0 and summary.kind == "infrastructure":
                continue  # cacheops' own operations log and tag hashes hold no entries to browse
            self.add_row(summary.name, summary.kind, f"{summary.entries:,}", key=summary.name)
        self.border_subtitle = f"{len(catalog.caches)} caches, {catalog.scanned_keys:,} keys in {catalog.seconds:.1f}s"
        if current is not None and current in self.rows:
            self.move_cursor(row=self.get_row_index(current))

    @property
    def current(self) -> str | None:
        if not self.row_count:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def add_entries(self, cache: str, delta: int) -> None:
        """Adjust a cache's count after an eviction, without another catalog pass."""
        if cache in self.rows:
            current = int(str(self.get_cell(cache, "entries")).replace(",", "") or 0)
            self.update_cell(cache, "entries", f"{max(0, current + delta):,}")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.post_message(self.Chosen(str(event.row_key.value)))
