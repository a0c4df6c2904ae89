"""Modal: an eviction plan's preview (counts per cache, a sample) and the question. Nothing is
deleted unless the answer is yes; the caller then runs evict.execute (backup, delete, log)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Label

from ... import render
from ...ops.evict import Plan


class ConfirmEvictScreen(ModalScreen[bool]):
    BINDINGS = [Binding("escape,n", "cancel", "cancel"), Binding("y", "confirm", "delete")]

    def __init__(self, plan: Plan) -> None:
        super().__init__()
        self.plan = plan

    def compose(self) -> ComposeResult:
        p = self.plan
        with Vertical(id="dialog", classes="danger"):
            yield Label(
                f"Evict {p.total:,} entr{'y' if p.total == 1 else 'ies'} ({render.human_bytes(p.bytes)})?",
                classes="title",
            )
            per_cache = ", ".join(f"{cache}: {n:,}" for cache, n in p.per_cache.most_common())
            yield Label(f"per cache: {per_cache or '-'}   candidates looked at: {p.candidates:,}")
            table: DataTable = DataTable(id="sample", cursor_type="none", show_cursor=False)
            yield table
            yield Label(
                "A backup is written first (`cacheops restore FILE` puts it back); the eviction is "
                "recorded in the operations log.",
                classes="hint",
            )
            with Horizontal(classes="buttons"):
                yield Button("Delete (y)", variant="error", id="yes")
                yield Button("Cancel (n / escape)", variant="primary", id="no")

    def on_mount(self) -> None:
        table = self.query_one("#sample", DataTable)
        columns = ["key", "prompt", "model", "answer", "TTL"] + (["distance"] if self.plan.distances else [])
        table.add_columns(*columns)
        for e in self.plan.sample:
            prompt = e.prompt if e.prompt is not None else f"md5 {(e.prompt_hash or '')[:12]}…"
            row = [
                render.short_key(e.key, 32),
                render.preview(prompt, 36),
                e.model or "-",
                render.preview(e.answer, 30),
                render.human_duration(None if e.ttl_ms is None else e.ttl_ms / 1000),
            ]
            if self.plan.distances:
                d = self.plan.distances.get(e.key)
                row.append("-" if d is None else f"{d:.4f}")
            table.add_row(*row)
        self.query_one("#no", Button).focus()  # the safe answer is the default

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)
