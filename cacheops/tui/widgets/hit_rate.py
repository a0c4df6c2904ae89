"""Left pane, under the cache list: the highlighted cache's hit rate over a window, as a sparkline.

The figures are the app's own: cacheops_track records every lookup into minute and hour buckets
(docs/hits.md); a cache whose app does not track says so instead of showing a guess.
"""

from __future__ import annotations

from textual.containers import Vertical
from textual.widgets import Label, Sparkline

from ...inspect.hits import CacheHits

# (seconds, label, bins): bins sized so each holds whole buckets (2-minute, 1-hour, 6-hour bins)
WINDOWS = ((3600, "1h", 30), (86400, "24h", 24), (7 * 86400, "7d", 28))
SOURCE = "source: tracked (cacheops_track in the app)"


def anchored(series: list[float | None]) -> list[float]:
    """Sparkline data for rates on a fixed 0..100% scale, one column per bin.

    Textual's Sparkline scales between the data's own min and max, which would draw 50% and 51% as
    the lowest and highest bars. So each bin is a pair (anchor, rate), drawn by its last value, and
    the first two anchors are 0 and 1: with the widget exactly `bins` cells wide, every column is one
    pair, and the scale is 0..1. Bins without lookups are drawn as 0 (the label says how many)."""
    rates = [r or 0.0 for r in series]
    if len(rates) < 2:
        return rates
    anchors = [0.0, 1.0] + rates[2:]
    return [value for pair in zip(anchors, rates) for value in pair]


def last(values) -> float:
    return values[-1]


class HitRate(Vertical):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = "hit rate"
        self.window = 1  # index in WINDOWS: 24h
        self.cache: str | None = None
        self.hits: CacheHits | None = None

    def compose(self):
        yield Label("", id="hit-summary")
        yield Sparkline([], summary_function=last, id="hit-spark")
        yield Label("", id="hit-source")

    @property
    def since(self) -> float:
        return WINDOWS[self.window][0]

    @property
    def bins(self) -> int:
        return WINDOWS[self.window][2]

    def next_window(self) -> None:
        self.window = (self.window + 1) % len(WINDOWS)

    def show(self, cache: str | None, hits: CacheHits | None) -> None:
        self.cache, self.hits = cache, hits
        spark = self.query_one("#hit-spark", Sparkline)
        summary = self.query_one("#hit-summary", Label)
        source = self.query_one("#hit-source", Label)
        label = WINDOWS[self.window][1]
        self.border_title = f"hit rate: {cache}, last {label}" if cache else "hit rate"
        if cache is None:
            spark.display = False
            summary.update("")
            source.update("")
            return
        if hits is None:
            spark.display = False
            summary.update("not tracked: the app records hits with cacheops_track (docs/hits.md)")
            source.update("")
            return
        window, now = hits.window, hits.now
        lookups = window.hits + window.misses
        rate = "-" if window.hit_rate is None else f"{window.hit_rate:.0%}"
        current = "-" if now.hit_rate is None else f"{now.hit_rate:.0%}"
        idle = sum(1 for r in hits.series if r is None)
        summary.update(
            f"{rate} of {lookups:,} lookups (now: {current})\n"
            f"0..100%, one bar per {_bin_text(self.since / self.bins)}" + (f", {idle} without lookups" if idle else "")
        )
        spark.styles.width = len(hits.series)
        spark.data = anchored(hits.series)
        spark.display = True
        source.update(SOURCE)


def _bin_text(seconds: float) -> str:
    return f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds / 60:g} min"
