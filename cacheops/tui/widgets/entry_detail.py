"""Right pane: one entry decoded in full (finder.read_entry): messages, answer, model, parameters,
TTL, size, tags, vector, unreachable reason, notes."""

from __future__ import annotations

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from ... import render
from ...inspect.catalog import NOT_ENTRIES, UnknownKey
from ...layouts import UNREACHABLE_REASONS, Entry, Infrastructure


def fields_of(e: Entry) -> list[tuple[str, str]]:
    ttl = render.human_duration(None if e.ttl_ms is None else e.ttl_ms / 1000)
    if e.ttl_ms is not None:
        ttl += f" (expires {render.timestamp(e.expires_at)})"
    rows = [
        ("key", e.key),
        ("cache", f"{e.cache} ({e.library}, {e.kind})"),
        ("index", e.index or "-"),
        ("model", e.model or "-"),
        ("TTL", ttl),
        ("size", render.human_bytes(e.bytes)),
        ("prompt hash", e.prompt_hash or "-"),
        ("inserted", render.timestamp(e.inserted_at)),
        ("updated", render.timestamp(e.updated_at)),
    ]
    if e.hits:
        rows.append(("hits (tracked)", f"{e.hits['hits']:,}, last {render.timestamp(e.hits['last_hit'])}"))
        if e.hits.get("system"):
            rows.append(("system (tracked)", e.hits["system"]))
    if e.model_params:
        rows.append(("model params", ", ".join(f"{k}={v!r}" for k, v in e.model_params.items())))
    elif e.llm_string:
        rows.append(("llm_string", e.llm_string))
    if e.usage:
        rows.append(("usage", ", ".join(f"{k}={v}" for k, v in e.usage.items() if not isinstance(v, dict))))
    if e.tags:
        rows.append(("tags", ", ".join(f"{k}={v}" for k, v in e.tags.items())))
    if e.vector:
        fit = "" if e.vector.matches_index is not False else " (does NOT match the index)"
        rows.append(
            ("vector", f"{e.vector.field}: {e.vector.dims} dims {e.vector.dtype or ''}, {e.vector.nbytes} bytes{fit}")
        )
    if e.unreachable:
        rows.append(("unreachable", f"{e.unreachable}: {UNREACHABLE_REASONS.get(e.unreachable, '')}"))
    if e.value_format:
        rows.append(("value format", e.value_format))
    if e.companions:
        rows.append(("companions", ", ".join(e.companions)))
    return rows


def renderable_of(item: Entry | Infrastructure | UnknownKey):
    if isinstance(item, NOT_ENTRIES):
        return Text(
            f"{item.key}: a {item.type} key that is not a known cache entry "
            f"({render.human_bytes(item.bytes)}); cacheops does not decode or touch it."
        )
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column(overflow="fold")
    for name, value in fields_of(item):
        table.add_row(name, Text(str(value)))
    parts: list[Table | Panel | Text] = [table]
    if item.messages:
        for m in item.messages:
            parts.append(Panel(Text(m.content), title=m.role, title_align="left"))
    else:
        parts.append(Panel(Text(item.prompt or "(prompt text not stored)"), title="prompt", title_align="left"))
    parts.append(Panel(Text(item.answer or "-"), title="answer", title_align="left", border_style="green"))
    for note in item.notes:
        parts.append(Text(f"note: {note}", style="dim italic"))
    if item.truncated:
        parts.append(Text("value truncated at the read limit", style="yellow"))
    return Group(*parts)


class EntryDetail(VerticalScroll):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = "entry"
        self.item: Entry | Infrastructure | UnknownKey | None = None

    def compose(self):
        yield Static("Select an entry to see it decoded in full.", id="detail-body")

    def show(self, item: Entry | Infrastructure | UnknownKey | None, note: str | None = None) -> None:
        self.item = item
        body = self.query_one("#detail-body", Static)
        if item is None:
            body.update(note or "Select an entry to see it decoded in full.")
            self.border_title = "entry"
            return
        body.update(renderable_of(item))
        self.border_title = f"entry: {render.short_key(item.key, 60)}"
        self.scroll_home(animate=False)
