"""Modal: a semantic entry's nearest neighbours by its stored vector, with distances, and the
threshold its cache serves within. Choose one to inspect it, or evict the neighbourhood."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label

from ... import render
from ..session import EntryNeighbours


class NeighboursScreen(ModalScreen[tuple[str, str] | None]):
    """Dismissed with ("show", key), ("evict", "") or None."""

    BINDINGS = [
        Binding("escape", "close", "close"),
        Binding("e", "evict", "evict neighbourhood"),
        Binding("enter", "show", "show", show=False),
    ]

    def __init__(self, hood: EntryNeighbours) -> None:
        super().__init__()
        self.hood = hood

    def compose(self) -> ComposeResult:
        h = self.hood
        with Vertical(id="dialog", classes="wide"):
            yield Label(f"Nearest to: {render.preview(h.entry.prompt, 90)}", classes="title")
            yield Label(
                f"cache {h.entry.cache}: lookups are served within distance {h.threshold:g} "
                f"({h.threshold_source}); {len(h.within)} neighbour(s) inside it"
            )
            yield DataTable(id="neighbours", cursor_type="row", zebra_stripes=True)
            yield Label(
                "enter: show   e: evict this entry + the neighbours within the threshold   escape: close",
                classes="hint",
            )

    def on_mount(self) -> None:
        table = self.query_one("#neighbours", DataTable)
        table.add_columns("distance", "", "prompt", "answer", "model")
        for n in self.hood.neighbours:
            inside = "within" if n.distance <= self.hood.threshold else ""
            table.add_row(
                f"{n.distance:.4f}",
                inside,
                render.preview(n.entry.prompt, 50),
                render.preview(n.entry.answer, 40),
                n.entry.model or "-",
                key=n.entry.key,
            )
        table.focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.dismiss(("show", str(event.row_key.value)))

    def action_show(self) -> None:
        table = self.query_one("#neighbours", DataTable)
        if table.row_count:
            self.dismiss(("show", str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)))

    def action_evict(self) -> None:
        self.dismiss(("evict", ""))

    def action_close(self) -> None:
        self.dismiss(None)
