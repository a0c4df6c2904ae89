"""Client instructions per key of `cacheops scan --json`, counted by valgrind (cachegrind's Ir).

Wall and CPU times swing with the machine's load; the instruction count of the same work on the
same keyspace does not (within ~2%: the reader thread's hand-offs vary). Per key =
(Ir of `scan --json --limit HIGH` - Ir of `--limit LOW`) / (HIGH - LOW): start-up and the context
cancel out. Read-only against a filled server (bench/scan.py fills one).

    python bench/scan_instructions.py --url redis://127.0.0.1:6500/0
    python bench/scan_instructions.py --url ... --tree /path/to/other/checkout   # compare code
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def instructions(tree: Path, url: str, limit: int) -> int:
    code = (
        "import sys\nfrom cacheops.cli import main\n"
        f"sys.argv = ['cacheops', '--url', {url!r}, 'scan', '--json', '--limit', '{limit}']\nmain()"
    )
    proc = subprocess.run(
        [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
            sys.executable,
            "-c",
            code,
        ],
        env={**os.environ, "PYTHONPATH": str(tree)},
        cwd=tree,  # `python -c` puts the working directory first on sys.path: run in the tree measured
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    found = re.search(r"I\s+refs:\s+([\d,]+)", proc.stderr)
    if not found:
        sys.exit(f"valgrind gave no instruction count:\n{proc.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="a filled server (read only)")
    parser.add_argument("--tree", type=Path, default=HERE, help="the cacheops checkout to measure")
    parser.add_argument("--low", type=int, default=1000)
    parser.add_argument("--high", type=int, default=11000)
    args = parser.parse_args()
    low = instructions(args.tree, args.url, args.low)
    high = instructions(args.tree, args.url, args.high)
    print(f"{args.tree}: {(high - low) // (args.high - args.low):,} instructions per key (Ir, cachegrind)")


if __name__ == "__main__":
    main()
