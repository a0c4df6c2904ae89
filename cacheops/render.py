"""Everything cacheops prints goes through here: rich tables on a terminal, JSON for scripts."""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
import re
import sys
import threading

import orjson
from rich.console import Console
from rich.markup import escape
from rich.table import Table

# Off a terminal (a forced --table piped to a file), don't fold tables at rich's 80-column default.
_WIDTH = None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", "160"))
console = Console(highlight=False, soft_wrap=False, width=_WIDTH)
err_console = Console(stderr=True, highlight=False)

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


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 60:
        return f"{seconds:.0f}s"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            whole = int(seconds // size)
            rest = seconds - whole * size
            sub = {"d": ("h", 3600), "h": ("m", 60), "m": ("s", 1)}[unit]
            part = int(rest // sub[1])
            return f"{whole}{unit}{part}{sub[0]}" if part else f"{whole}{unit}"
    return f"{seconds:.0f}s"


def timestamp(value: float | None) -> str:
    if not value:
        return "-"
    return dt.datetime.fromtimestamp(value).strftime("%Y-%m-%d %H:%M:%S")


def preview(text: str | None, width: int = 60) -> str:
    if text is None:
        return "-"
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


_HEX_RUN = re.compile(r"[0-9a-f]{24,}")


def short_key(key: str, width: int = 48) -> str:
    """A key for a table cell: long hex hashes cut to 8 characters (the full key is in --json / show)."""
    return preview(_HEX_RUN.sub(lambda m: m.group(0)[:8] + "…", key), width)


def table(*columns: str, title: str | None = None) -> Table:
    t = Table(title=title, header_style="bold", show_lines=False, expand=False)
    for col in columns:
        t.add_column(col, overflow="fold")
    return t


def out(renderable="") -> None:
    console.print(renderable)


def note(text: str) -> None:
    console.print(f"[dim]{escape(text)}[/dim]")


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


__all__ = ["escape"]


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
