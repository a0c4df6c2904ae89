"""The hit tracker's cost on the app's hot path: p50 / p99 of a tracked vs an untracked lookup.

A langchain-redis RedisCache on the embedded server, filled with --entries entries; the same
lookups (three hits for each miss, in a fixed shuffled order) are timed through the bare cache
(the yardstick) and through track(cache), in alternating blocks so both see the same machine
load. The flush thread runs as in an app (every second by default), so its cost on the app's
thread is part of what is measured: after a tracked block the bench keeps timing lookups on the
tracked side (through the bare cache, so they add no events) until the flush thread has written
every event of the block, so each flush overlaps timed lookups as it would in a running app.

    python bench/track.py --entries 2000 --lookups 20000 --rounds 5
    python bench/track.py --flush-interval 1000     # flush paused: the hot path alone

Prints each round, then one Markdown table (overhead = tracked - bare, ratio = tracked / bare,
medians over the rounds). Targets (docs/benchmarks.md): overhead p50 <= 20 us, p99 <= 100 us.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time

from langchain_core.outputs import Generation
from langchain_redis import RedisCache

import cacheops_track
from cacheops.server.embedded import EmbeddedRedis

LLM_STRING = "[('_type', 'fake-chat'), ('model_name', 'gpt-4o-mini'), ('temperature', 0.0)]"
TARGET_P50_US, TARGET_P99_US = 20, 100
PAUSED = 60.0  # a flush interval this long or longer: the flush is paused, drained between blocks


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def time_lookups(cache, prompts: list[str], out: list[float]) -> None:
    clock = time.perf_counter_ns
    for prompt in prompts:
        start = clock()
        cache.lookup(prompt, LLM_STRING)
        out.append((clock() - start) / 1000)


def tracked_block(tracked, bare, prompts: list[str], paused: bool) -> tuple[list[float], int]:
    """Timings of the block's tracked lookups, then of lookups through the bare cache until the
    flush thread has written the block's events; how many of those tail lookups there were."""
    recorder = tracked.recorder
    target = recorder.flushed_events + recorder.dropped + len(recorder.queue) + len(prompts)
    out: list[float] = []
    time_lookups(tracked, prompts, out)
    if paused:
        recorder.flush()  # untimed: the figures are the hot path's alone
        return out, 0
    tail = 0
    deadline = time.monotonic() + 10 * recorder.flush_interval + 30
    while recorder.flushed_events + recorder.dropped < target and time.monotonic() < deadline:
        time_lookups(bare, prompts[tail % len(prompts) : tail % len(prompts) + 1], out)
        tail += 1
    return out, tail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=2000)
    parser.add_argument("--lookups", type=int, default=20000, help="per round and side")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--flush-interval", type=float, default=1.0, help="seconds (an app's default: 1)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON here")
    args = parser.parse_args()
    paused = args.flush_interval >= PAUSED
    load_start = os.getloadavg()[0]
    with EmbeddedRedis() as server:
        bare = RedisCache(redis_url=server.url, prefix="bench")
        for i in range(args.entries):
            bare.update(f"prompt {i}", LLM_STRING, [Generation(text=f"answer {i}")])
        tracked = cacheops_track.track(
            RedisCache(redis_url=server.url, prefix="bench"), flush_interval=args.flush_interval
        )
        recorder = tracked.recorder
        rng = random.Random(7)
        prompts = [f"prompt {rng.randrange(args.entries)}" if i % 4 else f"absent {i}" for i in range(args.lookups)]
        time_lookups(bare, prompts[:500], [])
        time_lookups(tracked, prompts[:500], [])  # warm both, start the flush thread
        recorder.flush()
        cpu_before, flushed_before = recorder.flush_cpu_seconds, recorder.flushed_events
        rows = []
        for n in range(args.rounds):
            times: dict[str, list[float]] = {}
            tail = 0
            for side in ("bare", "tracked") if n % 2 == 0 else ("tracked", "bare"):
                if side == "bare":
                    times[side] = []
                    time_lookups(bare, prompts, times[side])
                else:
                    times[side], tail = tracked_block(tracked, bare, prompts, paused)
            b, t = sorted(times["bare"]), sorted(times["tracked"])
            row = {
                "bare_p50": percentile(b, 0.5),
                "tracked_p50": percentile(t, 0.5),
                "bare_p99": percentile(b, 0.99),
                "tracked_p99": percentile(t, 0.99),
                "tail_lookups": tail,
            }
            rows.append(row)
            print(
                f"round {n + 1}: p50 bare {row['bare_p50']:.1f} us, tracked {row['tracked_p50']:.1f} us "
                f"({row['tracked_p50'] - row['bare_p50']:+.1f}); p99 bare {row['bare_p99']:.1f} us, tracked "
                f"{row['tracked_p99']:.1f} us ({row['tracked_p99'] - row['bare_p99']:+.1f}); "
                f"{tail} tail lookups while the last flush ran",
                flush=True,
            )
        recorder.flush()
        events = recorder.flushed_events - flushed_before
        flush_cpu_us = 1e6 * (recorder.flush_cpu_seconds - cpu_before) / max(1, events)
        dropped, failed = recorder.dropped, recorder.failed_flushes

    def median(f) -> float:
        return statistics.median(f(r) for r in rows)

    doc = {
        "entries": args.entries,
        "lookups_per_side_and_round": args.lookups,
        "rounds": args.rounds,
        "flush_interval_s": None if paused else args.flush_interval,
        "bare_p50_us": median(lambda r: r["bare_p50"]),
        "tracked_p50_us": median(lambda r: r["tracked_p50"]),
        "overhead_p50_us": median(lambda r: r["tracked_p50"] - r["bare_p50"]),
        "ratio_p50": median(lambda r: r["tracked_p50"] / r["bare_p50"]),
        "bare_p99_us": median(lambda r: r["bare_p99"]),
        "tracked_p99_us": median(lambda r: r["tracked_p99"]),
        "overhead_p99_us": median(lambda r: r["tracked_p99"] - r["bare_p99"]),
        "ratio_p99": median(lambda r: r["tracked_p99"] / r["bare_p99"]),
        "flush_cpu_us_per_event": flush_cpu_us,
        "dropped": dropped,
        "failed_flushes": failed,
        "load_average": [round(load_start, 1), round(os.getloadavg()[0], 1)],
        "cores": os.cpu_count(),
    }
    met = doc["overhead_p50_us"] <= TARGET_P50_US and doc["overhead_p99_us"] <= TARGET_P99_US
    print(
        f"\noverhead p50 {doc['overhead_p50_us']:+.1f} us (target <= {TARGET_P50_US}), "
        f"p99 {doc['overhead_p99_us']:+.1f} us (target <= {TARGET_P99_US}): {'met' if met else 'NOT met'}; "
        f"tracked / bare p50 {doc['ratio_p50']:.3f}, p99 {doc['ratio_p99']:.3f}; flush CPU "
        f"{flush_cpu_us:.1f} us per event; dropped {dropped}, failed flushes {failed}; load average "
        f"{load_start:.1f} -> {doc['load_average'][1]:.1f} on {os.cpu_count()} cores\n"
    )
    flush = "paused" if paused else f"every {args.flush_interval:g} s"
    print(
        "| flush | bare p50 | tracked p50 | overhead p50 | ratio p50 "
        "| bare p99 | tracked p99 | overhead p99 | ratio p99 "
        "| flush CPU / event | load |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {flush} | {doc['bare_p50_us']:.1f} us | {doc['tracked_p50_us']:.1f} us | "
        f"{doc['overhead_p50_us']:+.1f} us | {doc['ratio_p50']:.3f} | {doc['bare_p99_us']:.0f} us | "
        f"{doc['tracked_p99_us']:.0f} us | {doc['overhead_p99_us']:+.0f} us | {doc['ratio_p99']:.3f} | "
        f"{flush_cpu_us:.1f} us | {load_start:.1f} -> {doc['load_average'][1]:.1f} |"
    )
    if args.json:
        with open(args.json, "w") as out:
            json.dump(doc, out, indent=2)


if __name__ == "__main__":
    main()
