"""Benchmark: `cacheops suspects --json > /dev/null` against `cacheops scan --json > /dev/null`.

The keyspace is the scan benchmark's (bench/scan.py fills it: langchain-redis RedisCache and
RedisSemanticCache entries written by the real serialisers, OpenAI-shaped response_metadata with
finish_reason, a TTL mix). Both commands stream every entry through the same scan engine; suspects
decodes the stored generations in full (for finish/stop reasons) and runs every rule on each entry
instead of printing it. The two are timed interleaved on the same server in one run; the ratio of
their median wall times is the figure (target: suspects <= 1.2x scan --json).

Usage:  python bench/suspects.py --entries 20000 [--runs 3] [--url redis://HOST:PORT/0 --no-fill]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import scan as scan_bench  # noqa: E402  (bench/scan.py: the keyspace and the timing launcher)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each command (median reported)")
    parser.add_argument("--url", help="use this (empty or already filled) server instead of an embedded one")
    parser.add_argument("--no-fill", action="store_true", help="with --url: time only, do not write")
    args = parser.parse_args()

    with scan_bench.server_url(args.url) as url:
        import redis

        client = redis.Redis.from_url(url)
        fill_info = {} if args.no_fill else scan_bench.fill(url, args.entries, 0.5)
        fill_info.setdefault("dbsize", client.dbsize())
        print(f"keyspace: {fill_info}", file=sys.stderr)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        base = [sys.executable, "-m", "cacheops", "--url", url]
        variants = {"scan --json": base + ["scan", "--json"], "suspects --json": base + ["suspects", "--json"]}
        results: dict[str, list] = {name: [] for name in variants}
        for _ in range(args.runs):  # interleaved, so drift on a shared machine hits both alike
            for name, argv in variants.items():
                before = scan_bench.server_cpu(client)
                wall, rss, cpu = scan_bench.timed(argv, env)
                results[name].append((wall, rss, cpu, scan_bench.server_cpu(client) - before))
        import subprocess

        found = json.loads(subprocess.run(variants["suspects --json"], stdout=subprocess.PIPE, env=env).stdout)
        report = {
            "commands": {name: " ".join(argv) for name, argv in variants.items()},
            "entries": args.entries,
            "keyspace": fill_info,
            "suspects": {"entries_judged": found["entries"], "suspects": found["suspects"]},
            "machine": scan_bench.machine(),
            "runs": {},
        }
        for name, runs in results.items():
            report["runs"][name] = scan_bench.median_row(runs)
        scan_row, suspects_row = report["runs"]["scan --json"], report["runs"]["suspects --json"]
        report["ratio_wall"] = round(suspects_row["wall_median_s"] / scan_row["wall_median_s"], 2)
        report["ratio_client_cpu"] = round(suspects_row["client_cpu_s"] / scan_row["client_cpu_s"], 2)
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
