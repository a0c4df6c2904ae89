"""Benchmark: `cacheops tui` at scale, driven by Textual's pilot (issue 13, target 3).

Targets: the cache list within 1 s of the app starting, and the first entry rows within 300 ms of
selecting a cache, at 1M keys, while the catalog pass still runs; scrolling and filtering stay
responsive meanwhile. Measured here, in one run against one server:

- cache list: app start (run_test entered) -> the first row of the cache list;
- first rows: a cache highlighted in the list -> its first entry rows shown, for each of the
  biggest caches (by the running count), while the background pass runs and again after it;
- filter: a filter submitted -> its first rows (a word in 1 of 12 entries), during the pass;
- responsiveness during the pass: the event loop's worst lag (a 20 ms sleep timed in the app's own
  loop) and the time a key press in the entry table takes to be handled;
- the whole catalog pass (in the background), and `redis-cli --scan` of the same keyspace as the
  yardstick timed in the same run (the ratios are against it);
- peak RSS of the TUI process (run under bench/_measure.py, so the fill's memory is not counted).

The keyspace is bench/scan.py's (its fill code: half langchain-redis RedisCache, half
RedisSemanticCache, 384 dims).

Usage:  python bench/tui.py --entries 100000
        python bench/tui.py --url redis://127.0.0.1:6399/0 --no-fill
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

SIZE = (160, 45)
FILTER = "billing"  # in the question and the answer of one entry in twelve (bench/scan.py's TOPICS)


# -- the driven app (child process) -----------------------------------------------------------------


async def _until(check, timeout: float, step: float = 0.002) -> float | None:
    """Poll `check()` in the app's loop; the monotonic time it first held (None: timed out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return time.monotonic()
        await asyncio.sleep(step)
    return None


class LagMonitor:
    """The app's event loop lag: how late a 20 ms sleep wakes up (what a key press waits behind)."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self.task: asyncio.Task | None = None

    async def run(self) -> None:
        while True:
            t = time.monotonic()
            await asyncio.sleep(0.02)
            self.lags.append(time.monotonic() - t - 0.02)

    def summary(self) -> dict:
        lags = sorted(self.lags) or [0.0]
        return {
            "samples": len(self.lags),
            "p50_ms": round(1000 * lags[len(lags) // 2], 1),
            "p99_ms": round(1000 * lags[min(len(lags) - 1, int(len(lags) * 0.99))], 1),
            "max_ms": round(1000 * lags[-1], 1),
        }


async def drive(url: str, caches_wanted: int) -> dict:
    from textual import events
    from textual.widgets import Input

    from cacheops import connect_url
    from cacheops.tui import CacheopsApp
    from cacheops.tui.session import Session
    from cacheops.tui.widgets.cache_list import CacheList
    from cacheops.tui.widgets.entry_table import EntryTable

    class TimedSession(Session):
        """Records when the catalog pass starts scanning and when its first batch is counted."""

        marks: dict[str, float] = {}

        def catalog(self, stats, on_progress=None):
            self.marks["catalog_called"] = time.monotonic()

            def first(counts):
                self.marks.setdefault("first_batch", time.monotonic())
                if on_progress is not None:
                    on_progress(counts)

            return super().catalog(stats, first)

    out: dict = {"selections": []}
    session = TimedSession(connect_url(url), "bench")
    app = CacheopsApp(session)
    started = time.monotonic()
    async with app.run_test(size=SIZE) as pilot:
        caches = app.query_one(CacheList)
        table = app.query_one(EntryTable)
        lag = LagMonitor()
        lag_task = asyncio.create_task(lag.run())
        pass_done = asyncio.create_task(_until(app.catalog_done.is_set, 3600, 0.01))  # when, not after what
        listed = await _until(lambda: caches.row_count > 0, 60)
        assert listed is not None, "no cache listed within 60 s"
        out["cache_list_s"] = round(listed - started, 3)
        out["cache_list_parts_s"] = {  # app start -> pass called (mount, tracked, dbsize) -> first batch
            name: round(at - started, 3) for name, at in session.marks.items()
        }
        out["caches_at_first_list"] = [k.value for k in caches.rows]
        out["pass_done_at_first_list"] = app.catalog_done.is_set()

        async def select(name: str) -> dict:
            during = not app.catalog_done.is_set()
            t, cpu = time.monotonic(), time.process_time()
            if caches.current == name:
                app.list_cache(name, again=True)
            else:
                caches.move_cursor(row=caches.get_row_index(name))
            shown = await _until(lambda: table.first_rows_at is not None and table.label == name, 60, 0.001)
            row = {"cache": name, "during_pass": during and not app.catalog_done.is_set(), "rows": table.row_count}
            row["first_rows_s"] = None if shown is None else round(table.first_rows_at - t, 3)
            row["process_cpu_s"] = round(time.process_time() - cpu, 3)  # every thread's, the pass's too
            return row

        def biggest() -> list[str]:
            def count(key) -> int:
                return int(str(caches.get_cell(key, "entries")).replace(",", "").rstrip("…") or 0)

            return [k.value for k in sorted(caches.rows, key=count, reverse=True)][:caches_wanted]

        # the first rows of the cache the app lists by itself, then each of the biggest, during the pass
        auto = await _until(lambda: table.first_rows_at is not None, 60, 0.001)
        out["auto_first_rows_after_list_s"] = None if auto is None else round(table.first_rows_at - listed, 3)
        await asyncio.sleep(0.5)  # let the pass find every big cache's shape
        names = biggest()
        for name in names:
            out["selections"].append(await select(name))
        # scrolling during the pass: a key press sent as the terminal driver sends it, until the
        # cursor has moved (pilot.press would also wait for the process to go idle, which it does
        # not while the pass runs)
        table.focus()
        await pilot.pause()
        presses = []
        for _ in range(20):
            row = table.cursor_row
            t = time.monotonic()
            app._driver.send_message(events.Key("down", None))
            moved = await _until(lambda row=row: table.cursor_row != row, 10, 0.001)
            presses.append((moved or time.monotonic()) - t)
            await asyncio.sleep(0.05)
        out["key_press_during_pass_ms"] = {
            "median": round(1000 * sorted(presses)[len(presses) // 2], 1),
            "max": round(1000 * max(presses), 1),
            "during_pass": not app.catalog_done.is_set(),
        }
        # filtering during the pass
        box = app.query_one("#filter", Input)
        box.value = FILTER
        during = not app.catalog_done.is_set()
        t = time.monotonic()
        await box.action_submit()
        shown = await _until(lambda: table.first_rows_at is not None and f"[{FILTER}]" in table.label, 60)
        if shown is None:
            print("filter: no rows;", table.label, table.border_subtitle, file=sys.stderr)
        out["filter_first_rows_s"] = None if shown is None else round(table.first_rows_at - t, 3)
        out["filter_during_pass"] = during and not app.catalog_done.is_set()
        out["lag_during_pass"] = lag.summary()
        lag.lags.clear()
        box.value = ""
        await box.action_submit()
        # the whole background pass, then the same selections on an idle app
        done = await pass_done
        out["catalog_pass_s"] = None if done is None else round(done - started, 3)
        out["lag_after_pass"] = lag.summary()
        for name in names:
            out["selections"].append(await select(name))
        out["caches"] = {k.value: str(caches.get_cell(k, "entries")) for k in caches.rows}
        lag_task.cancel()
    return out


def child(url: str, out_path: str, caches_wanted: int) -> None:
    result = asyncio.run(drive(url, caches_wanted))
    Path(out_path).write_text(json.dumps(result))


# -- the benchmark (parent process) -----------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--semantic-share", type=float, default=0.5, help="fraction of semantic entries")
    parser.add_argument("--url", help="use this (empty or already filled) server instead of an embedded one")
    parser.add_argument("--no-fill", action="store_true", help="with --url: time only, do not write")
    parser.add_argument("--caches", type=int, default=2, help="how many of the biggest caches to select")
    parser.add_argument("--json", dest="json_out", help="also write the results to this JSON file")
    parser.add_argument("--drive", nargs=2, metavar=("URL", "OUT"), help=argparse.SUPPRESS)  # the child
    args = parser.parse_args()
    if args.drive:
        child(args.drive[0], args.drive[1], args.caches)
        return

    import redis
    import scan

    with scan.server_url(args.url) as url:
        client = redis.Redis.from_url(url)
        facts = {"server": client.info("server")["redis_version"], **scan.machine()}
        fill_info = {} if args.no_fill else scan.fill(url, args.entries, args.semantic_share)
        fill_info.setdefault("dbsize", client.dbsize())
        print(f"keyspace: {fill_info}", file=sys.stderr)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        kwargs = client.connection_pool.connection_kwargs
        cli = scan.ensure_redis_cli()
        cli_argv = [cli, "-h", str(kwargs["host"]), "-p", str(kwargs["port"]), "--scan"]
        if scan.cli_supports_count(cli):
            cli_argv += ["--count", "1000"]
        cli_wall, _rss, _cpu = scan.timed(cli_argv, env)
        with tempfile.TemporaryDirectory() as tmp:
            result_path = str(Path(tmp) / "tui.json")
            argv = [sys.executable, __file__, "--drive", url, result_path, "--caches", str(args.caches)]
            load_before = os.getloadavg()[0]
            wall, rss_kib, cpu = scan.timed(argv, env)
            result = json.loads(Path(result_path).read_text())
        report = {
            "keyspace": fill_info,
            "machine": facts,
            "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "redis_cli_scan_s": round(cli_wall, 3),
            "tui_process": {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "peak_rss_mib": round(rss_kib / 1024, 1)},
            **result,
        }
        report["ratios_to_redis_cli"] = {
            "cache_list": round(result["cache_list_s"] / cli_wall, 2),
            "catalog_pass": None if result["catalog_pass_s"] is None else round(result["catalog_pass_s"] / cli_wall, 2),
        }
        print(json.dumps(report, indent=2))
        keys = fill_info["dbsize"]
        print(f"\n| what | {keys:,} keys | target |")
        print("|---|---|---|")
        print(f"| redis-cli --scan (yardstick) | {cli_wall:.2f} s | |")
        print(f"| cache list shown | {result['cache_list_s']:.2f} s | <= 1 s |")
        for sel in result["selections"]:
            when = "during the pass" if sel["during_pass"] else "after the pass"
            first = "-" if sel["first_rows_s"] is None else f"{1000 * sel['first_rows_s']:.0f} ms"
            print(
                f"| first rows of {sel['cache']}, {when} (process CPU) "
                f"| {first} ({sel['process_cpu_s'] * 1000:.0f} ms) | <= 300 ms |"
            )
        if result.get("filter_first_rows_s") is not None:
            when = "during the pass" if result["filter_during_pass"] else "after the pass"
            print(f"| filter '{FILTER}': first rows, {when} | {1000 * result['filter_first_rows_s']:.0f} ms | |")
        lag = result["lag_during_pass"]
        print(
            f"| event loop lag during the pass (p50 / p99 / max) "
            f"| {lag['p50_ms']} / {lag['p99_ms']} / {lag['max_ms']} ms | |"
        )
        press = result["key_press_during_pass_ms"]
        print(f"| key press in the entry table (median / max) | {press['median']} / {press['max']} ms | |")
        if result["catalog_pass_s"] is not None:
            ratio = report["ratios_to_redis_cli"]["catalog_pass"]
            print(f"| whole catalog pass (background) | {result['catalog_pass_s']:.2f} s ({ratio}x redis-cli) | |")
        print(f"| TUI peak RSS | {rss_kib / 1024:.1f} MiB | |")
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
