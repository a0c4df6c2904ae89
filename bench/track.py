"""The hit tracker's cost on the app's hot path: p50 / p99 of a tracked vs an untracked lookup.

A langchain-redis RedisCache on the embedded server, filled with --entries entries; the same
lookups (hits and misses, in a fixed shuffled order) are timed through the bare cache and through
track(cache), interleaved in rounds so both see the same machine load. The flush thread runs as
in an app (every second), so its cost on the app thread is part of what is measured.

    python bench/track.py --entries 2000 --lookups 20000 --rounds 5

Targets (docs/benchmarks.md): overhead p50 <= 20 us, p99 <= 100 us.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from langchain_core.outputs import Generation
from langchain_redis import RedisCache

import cacheops_track
from cacheops.server.embedded import EmbeddedRedis

LLM_STRING = "[('_type', 'fake-chat'), ('model_name', 'gpt-4o-mini'), ('temperature', 0.0)]"


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def time_lookups(cache, prompts: list[str]) -> list[float]:
    out = []
    clock = time.perf_counter_ns
    for prompt in prompts:
        start = clock()
        cache.lookup(prompt, LLM_STRING)
        out.append((clock() - start) / 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=2000)
    parser.add_argument("--lookups", type=int, default=20000, help="per round and side")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--flush-interval", type=float, default=1.0, help="seconds (an app's default: 1)")
    args = parser.parse_args()
    with EmbeddedRedis() as server:
        bare = RedisCache(redis_url=server.url, prefix="bench")
        for i in range(args.entries):
            bare.update(f"prompt {i}", LLM_STRING, [Generation(text=f"answer {i}")])
        tracked = cacheops_track.track(
            RedisCache(redis_url=server.url, prefix="bench"), flush_interval=args.flush_interval
        )
        rng = random.Random(7)
        # three hits for each miss
        prompts = [f"prompt {rng.randrange(args.entries)}" if i % 4 else f"absent {i}" for i in range(args.lookups)]
        time_lookups(bare, prompts[:500])
        time_lookups(tracked, prompts[:500])  # warm both, start the flush thread
        rows = []
        for n in range(args.rounds):
            sides = [("bare", bare), ("tracked", tracked)]
            if n % 2:
                sides.reverse()
            times = {name: sorted(time_lookups(cache, prompts)) for name, cache in sides}
            b, t = times["bare"], times["tracked"]
            rows.append(
                (
                    percentile(b, 0.5),
                    percentile(t, 0.5),
                    percentile(b, 0.99),
                    percentile(t, 0.99),
                )
            )
            print(
                f"round {n + 1}: p50 bare {rows[-1][0]:.1f} us tracked {rows[-1][1]:.1f} us "
                f"(+{rows[-1][1] - rows[-1][0]:.1f}); p99 bare {rows[-1][2]:.1f} us tracked {rows[-1][3]:.1f} us "
                f"(+{rows[-1][3] - rows[-1][2]:.1f})"
            )
        tracked.recorder.flush()
        p50 = statistics.median(r[1] - r[0] for r in rows)
        p99 = statistics.median(r[3] - r[2] for r in rows)
        print(
            f"median over {args.rounds} rounds: overhead p50 {p50:+.1f} us (target <= 20), "
            f"p99 {p99:+.1f} us (target <= 100); dropped {tracked.recorder.dropped}, "
            f"failed flushes {tracked.recorder.failed_flushes}"
        )


if __name__ == "__main__":
    main()
