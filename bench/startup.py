"""Benchmark: how fast `cacheops` starts, against `python -c pass` timed in the same run.

For each command it reports the median over --runs of
- import time: the sum of the top-level imports `python -X importtime` reports (site included, so
  the yardstick's own start-up is in the yardstick's row), and
- wall and CPU seconds of the whole process (bench/_measure.py launches it, stdout to /dev/null).

Commands:
  python -c pass                   the yardstick: the interpreter starting and stopping
  cacheops --help                  the group's help: lists every command without importing any
  cacheops caches --help           imports what `caches` needs to run (the library, redis-py, rich)
  cacheops --url URL caches        with --url: a real `caches` run against that server

Target (issue 14, item 12): `cacheops --help` and `caches` within 0.3 s of import time.

Usage:  python bench/startup.py [--runs 7] [--url redis://localhost:6379]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MEASURE = [sys.executable, "-S", str(ROOT / "bench" / "_measure.py")]
CACHEOPS = [sys.executable, "-m", "cacheops"]
# `import time: self | cumulative | name`; a top-level import's name has no indentation after '| '
TOP_LEVEL = re.compile(r"^import time:\s+\d+ \|\s+(\d+) \| (\S.*)$")
HEAVY = ("redisvl", "pydantic", "textual", "numpy", "yaml", "langchain_core", "torch")


def import_profile(argv: list[str], env: dict) -> tuple[float, set[str]]:
    """Seconds spent importing (top-level imports summed) and the heavy packages imported."""
    proc = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    total, heavy = 0, set()
    for line in proc.stderr.splitlines():
        m = TOP_LEVEL.match(line)
        if m:
            total += int(m.group(1))
        name = line.rsplit("|", 1)[-1].strip()
        if name.split(".")[0] in HEAVY:
            heavy.add(name.split(".")[0])
    return total / 1e6, heavy


def wall_cpu(argv: list[str], env: dict) -> tuple[float, float]:
    out = subprocess.run([*MEASURE, *argv], env=env, capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--url", help="also time a real `cacheops caches` against this server")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    commands = [
        ("python -c pass", [sys.executable, "-c", "pass"]),
        ("cacheops --help", [*CACHEOPS, "--help"]),
        ("cacheops caches --help", [*CACHEOPS, "caches", "--help"]),
    ]
    if args.url:
        commands.append(("cacheops --url URL caches --json", [*CACHEOPS, "--url", args.url, "caches", "--json"]))
    rows = []
    for label, argv in commands:
        imports, walls, cpus, heavy = [], [], [], set()
        for _ in range(args.runs):
            seconds, found = import_profile(argv, env)
            imports.append(seconds)
            heavy |= found
            wall, cpu = wall_cpu(argv, env)
            walls.append(wall)
            cpus.append(cpu)
        rows.append((label, statistics.median(imports), statistics.median(walls), statistics.median(cpus), heavy))
    base = rows[0]
    print(f"Python {sys.version.split()[0]}, {args.runs} runs each, medians; load average {os.getloadavg()[0]:.1f}")
    print("| command | import s | wall s | CPU s | wall - yardstick s | heavy packages imported |")
    print("|---|---|---|---|---|---|")
    for label, imp, wall, cpu, heavy in rows:
        print(
            f"| `{label}` | {imp:.3f} | {wall:.3f} | {cpu:.3f} | {wall - base[2]:+.3f} "
            f"| {', '.join(sorted(heavy)) or '-'} |"
        )


if __name__ == "__main__":
    main()
