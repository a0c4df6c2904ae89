"""Everything cacheops prints goes through here: rich tables on a terminal, JSON for scripts."""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import re
import sys
import threading
from dataclasses import dataclass

import orjson
from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .units import human_bytes, human_duration

# Off a terminal (a forced --table piped to a file), don't fold tables at rich's 80-column default.
_WIDTH = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "160"))
console = Console(highlight=False, soft_wrap=False, width=_WIDTH)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)  # one message, one line

_JSON_OPTS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def _default(obj):
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "backslashreplace")
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return str(obj)


def json_line(obj) -> None:
    """One JSON document on one line (JSON lines streaming)."""
    sys.stdout.buffer.write(orjson.dumps(obj, default=_default, option=_JSON_OPTS) + b"\n")


def json_lines(objs) -> None:
    """Many JSON lines in one write (a scan batch): one syscall instead of one per entry."""
    sys.stdout.buffer.write(b"".join([_dumps_line(o) for o in objs]))


def _dumps_line(obj) -> bytes:
    # Plain orjson first (a third cheaper): it raises TypeError on exactly what the options and
    # _default exist for (non-str keys, bytes, numpy, other types), and then the full call decides.
    try:
        return orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:
        return orjson.dumps(obj, default=_default, option=_JSON_OPTS | orjson.OPT_APPEND_NEWLINE)


def json_doc(obj) -> None:
    sys.stdout.buffer.write(orjson.dumps(obj, default=_default, option=_JSON_OPTS | orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.flush()


def flush() -> None:
    sys.stdout.flush()


def raw(text: str) -> None:
    """Text as it is (a format of its own, e.g. Prometheus exposition): no markup, no wrapping."""
    sys.stdout.write(text)
    sys.stdout.flush()


def info(text: str) -> None:
    """A status line for a person watching: stderr, so stdout carries only the output."""
    err_console.print(f"[dim]{escape(text)}[/dim]")


def timestamp(value: float | None) -> str:
    if not value:
        return "-"
    return dt.datetime.fromtimestamp(value).strftime("%Y-%m-%d %H:%M:%S")


def plural(n: int, one: str, many: str | None = None) -> str:
    """'1 entry', '2 entries', '1,234 keys': a count with its noun."""
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def preview(text: str | None, width: int = 60) -> str:
    if text is None:
        return "-"
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


_HEX_RUN = re.compile(r"[0-9a-f]{24,}")


def short_key(key: str, width: int | None = 48) -> str:
    """A key for a table cell: long hex hashes cut to 8 characters (the full key is in --json / show);
    width None leaves the rest to the table (a "key" Column cuts it in the middle)."""
    shorter = _HEX_RUN.sub(lambda m: m.group(0)[:8] + "…", key)
    return shorter if width is None else preview(shorter, width)


def middle_ellipsis(text: str, width: int) -> str:
    """`text` cut to `width` cells by dropping its middle: a key keeps its prefix and its end."""
    if cell_len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    head = width // 2
    tail = width - 1 - head
    return text[:head] + "…" + (text[-tail:] if tail else "")


@dataclass
class Column:
    """A table column and how it gives way when the terminal is narrow (the way `gh` does it).

    kind: "text" one line, cut at the end with … ; "key" one line, cut in the middle (keys keep their
    prefix and end); "fixed" never cut (counts, sizes, durations, dates); "wrap" several lines broken
    between words, a word longer than the column cut with … ; "full" several lines, a word longer
    than the column folded (for `show`, where every character counts).
    drop: columns with a drop rank go first when even their minimum widths do not fit, lowest rank
    first; None: never dropped. min: the narrowest this column is cut to (the header always fits).
    """

    name: str
    kind: str = "wrap"
    drop: int | None = None
    min: int = 10
    justify: str = "left"


_BORDERS = 3  # per column: one border + one cell of padding each side; plus one closing border


class FitTable:
    """A table fitted to the terminal at print time: columns are dropped (lowest drop rank first)
    until their minimum widths fit, then cut, never split mid-word. Cells may hold rich markup,
    except in "key" columns, which are taken literally."""

    def __init__(self, *columns: str | Column, title: str | None = None):
        self.columns = [c if isinstance(c, Column) else Column(c) for c in columns]
        self.title = title
        self.rows: list[list] = []

    def add_row(self, *cells: str) -> None:
        row = []
        for col, cell in zip(self.columns, cells):
            cell = str(cell) if col.kind in ("wrap", "full") else str(cell).replace("\n", " ")
            row.append(Text(cell) if col.kind == "key" else Text.from_markup(cell))
        self.rows.append(row)

    def widths(self, available: int) -> tuple[list[int], list[int]]:
        """(indexes of the columns kept, their widths) for a table `available` cells wide."""
        natural, minimum = [], []
        for i, col in enumerate(self.columns):
            header = cell_len(col.name)
            longest = max([_longest_line(row[i]) for row in self.rows] + [header])
            natural.append(longest)
            minimum.append(longest if col.kind == "fixed" else min(longest, max(header, col.min)))
        kept = list(range(len(self.columns)))
        droppable = sorted((c.drop, i) for i, c in enumerate(self.columns) if c.drop is not None)
        while sum(minimum[i] for i in kept) + _BORDERS * len(kept) + 1 > available and droppable:
            kept.remove(droppable.pop(0)[1])
        budget = available - _BORDERS * len(kept) - 1
        widths = {i: natural[i] for i in kept}
        excess = sum(widths.values()) - budget
        while excess > 0:
            flexible = [i for i in kept if widths[i] > minimum[i]]
            if not flexible:
                break
            # cut the widest flexible column by one cell at a time: long columns give way first
            widest = max(flexible, key=lambda i: (widths[i] - minimum[i], widths[i]))
            widths[widest] -= 1
            excess -= 1
        return kept, [widths[i] for i in kept]

    def __rich_console__(self, console, options):
        kept, widths = self.widths(options.max_width)
        table = Table(title=self.title, header_style="bold", show_lines=False, expand=False)
        for i, width in zip(kept, widths):
            col = self.columns[i]
            wraps = col.kind in ("wrap", "full")
            table.add_column(
                col.name,
                width=width,
                no_wrap=not wraps,
                overflow="fold" if col.kind == "full" else "ellipsis",
                justify=col.justify,
            )
        for row in self.rows:
            cells = []
            for i, width in zip(kept, widths):
                text = row[i]
                if self.columns[i].kind == "key" and text.cell_len > width:
                    text = Text(middle_ellipsis(text.plain, width))
                elif self.columns[i].kind == "text" and text.cell_len > width:
                    text = text.copy()
                    text.truncate(width, overflow="ellipsis")
                cells.append(text)
            table.add_row(*cells)
        yield table


def _longest_line(text: Text) -> int:
    return max((cell_len(line) for line in text.plain.split("\n")), default=0)


def table(*columns: str | Column, title: str | None = None) -> FitTable:
    return FitTable(*columns, title=title)


def out(renderable="") -> None:
    console.print(renderable)


def out_unfolded(text: str) -> None:
    """A line that holds a command to run (an undo hint, a next step): never folded at the terminal's
    width, since a line break inside it would not run when pasted into a shell."""
    console.print(text, soft_wrap=True)


def rule(title: str) -> None:
    """A separator line with a title (between the entries `show --prompt` prints)."""
    from rich.rule import Rule

    console.print(Rule(escape(title), align="left"))


def note(text: str) -> None:
    """Status for the person watching (counts, hints, what was skipped): stderr, so that stdout
    carries only the output and `cacheops ... --json | jq` always works."""
    err_console.print(f"[dim]{escape(text)}[/dim]")


def warn(text: str) -> None:
    err_console.print(f"[yellow]warning:[/yellow] {escape(text)}")


def error(text: str) -> None:
    err_console.print(f"[red]error:[/red] {escape(text)}", soft_wrap=True)


def bar(count: int, total: int, width: int = 30) -> str:
    if total <= 0:
        return ""
    return "█" * max(1 if count else 0, round(width * count / total))


@contextlib.contextmanager
def progress(total: int, description: str, threshold: int = 1000):
    """A progress bar on stderr for long operations (shown on a terminal when total >= threshold).
    Yields advance(n)."""
    if total < threshold or not err_console.is_terminal:
        yield lambda n: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as bar_:
        task = bar_.add_task(description, total=total)
        yield lambda n: bar_.advance(task, n)


@contextlib.contextmanager
def status(text: str):
    """A spinner on stderr while something of unknown length runs (on a terminal only)."""
    if not err_console.is_terminal:
        yield
        return
    with err_console.status(escape(text)):
        yield


__all__ = ["escape", "human_bytes", "human_duration"]


@contextlib.contextmanager
def scan_progress(stats, what: str = "scanning"):
    """A live 'N keys scanned' line on stderr while a full scan runs (only on a terminal)."""
    if not err_console.is_terminal:
        yield
        return
    stop = threading.Event()
    with err_console.status(f"{what}…") as status:

        def refresh():
            while not stop.wait(0.2):
                status.update(f"{what}: {stats.keys:,} keys")

        thread = threading.Thread(target=refresh, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


def workflow_command(line: str) -> None:
    """A CI runner's workflow command (GitHub Actions `::error ...`), verbatim on stderr: the runner
    reads both streams, and stdout stays the command's output (JSON)."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
