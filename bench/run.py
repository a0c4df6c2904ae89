"""Every benchmark at one size, and one table of ratios against their yardsticks (not a test).

    python bench/run.py --size 100000
    python bench/run.py --size 20000 --only scan,audit

Each benchmark starts its own embedded Redis, fills it and times cacheops against a yardstick in
the same run (interleaved where it repeats):
- scan, caches, caches --full, stats: wall time against `redis-cli --scan` (bench/scan.py);
- evict: `cacheops evict` of a tenth of the keyspace, with backup, against a redis-cli SCAN | UNLINK
  pipe (bench/evict.py);
- audit: the wrong-answer audit against a plain numpy all-pairs top-10 over the same vectors in
  memory (bench/audit.py; sizes above 20k have no numpy yardstick, their target is absolute:
  100k in <= 120 s);
- migrate-embeddings: its entries per second against the model's raw embedding rate (bench/migrate.py,
  at most 2,000 entries: the real model embeds on this CPU);
- tui: the TUI driven by Textual's pilot (bench/tui.py): time to the cache list and to the first
  entry rows of the biggest caches while the catalog pass runs, against `redis-cli --scan` of the
  same keyspace (targets are absolute: 1 s and 300 ms at 1M keys);
- startup and track (bench/startup.py, bench/track.py) print their own tables, shown after the main one.
Figures go to stdout as one Markdown table; each benchmark's own output is kept under --out.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
TARGETS = {"scan": None, "caches": 3.0, "caches --full": None, "stats": 3.0, "evict": 2.0}
SCAN_WALL_PER_SERVER_CPU = 1.3  # issue 13: scan --json's wall within 1.3x the server's CPU for the same reads


def run(name: str, argv: list[str], out_dir: Path, timeout: int) -> str | None:
    """A benchmark's stdout (also kept in out_dir/NAME.out), or None when it failed or timed out."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.monotonic()
    print(f"[{time.strftime('%H:%M:%S')}] {name}: {' '.join(argv)}", file=sys.stderr, flush=True)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"  {name}: timed out after {timeout} s", file=sys.stderr)
        return None
    (out_dir / f"{name}.out").write_text(done.stdout + "\n--- stderr ---\n" + done.stderr)
    print(f"  {name}: exit {done.returncode} after {time.monotonic() - started:.0f} s", file=sys.stderr)
    return done.stdout if done.returncode == 0 else None


def last_json(text: str) -> dict:
    """The last JSON document printed (the benchmarks end with one, indented or not)."""
    start = text.rfind("\n{")
    return json.loads(text[start + 1 if start >= 0 else text.find("{") :].split("\n\n")[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20_000, help="keys (scan, evict) / semantic entries (audit)")
    parser.add_argument("--only", default="scan,tui,evict,audit,migrate,startup,track")
    parser.add_argument("--runs", type=int, default=2, help="interleaved runs where a benchmark repeats")
    parser.add_argument("--out", default="bench-results", help="folder for each benchmark's own output")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per benchmark")
    parser.add_argument(
        "--scan-url", help="scan/caches/stats against this already filled server (no fill): a 1M fill takes minutes"
    )
    args = parser.parse_args()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    only = args.only.split(",")
    py = sys.executable
    rows: list[tuple[str, str, str, str, str, str]] = []  # what, size, measured, yardstick, ratio, target

    if "scan" in only:
        report_path = out_dir / "scan.json"
        commands = "scan,caches,caches-full,stats"
        argv = [py, str(HERE / "scan.py"), "--entries", str(args.size), "--runs", str(args.runs)]
        argv += ["--commands", commands, "--no-names", "--json", str(report_path)]
        if args.scan_url:  # a server filled once (bench/scan.py --url URL at this size) and reused
            argv += ["--url", args.scan_url, "--no-fill"]
        if run("scan", argv, out_dir, args.timeout) is not None:
            report = json.loads(report_path.read_text())
            base = report["runs"]["redis-cli"]
            for name, row in report["runs"].items():
                if name == "redis-cli":
                    continue
                what = "scan --json" if name == "cacheops" else name.removeprefix("cacheops ")
                target = TARGETS.get("scan" if name == "cacheops" else what)
                rows.append(
                    (
                        what,
                        f"{args.size:,} keys",
                        f"{row['wall_median_s']:.2f} s (RSS {row['peak_rss_mib']} MiB)",
                        f"redis-cli --scan {base['wall_median_s']:.2f} s",
                        f"{row['ratio_to_redis_cli']:.2f}x",
                        "-" if target is None else f"<= {target:g}x",
                    )
                )
                if name == "cacheops" and row["server_cpu_s"]:
                    # The scan's own yardstick: the server's CPU for the same reads (INFO used_cpu delta).
                    server = row["server_cpu_s"]
                    rows.append(
                        (
                            "scan --json: wall / server CPU",
                            f"{args.size:,} keys",
                            f"{row['wall_median_s']:.2f} s wall, client CPU {row['client_cpu_s']:.2f} s",
                            f"server CPU {server:.2f} s",
                            f"{row['wall_median_s'] / server:.2f}x "
                            f"(client/server CPU {row['client_cpu_s'] / server:.2f})",
                            f"<= {SCAN_WALL_PER_SERVER_CPU:g}x, client/server < 1",
                        )
                    )
        else:
            rows.append(("scan/caches/stats", f"{args.size:,}", "failed", "-", "-", "-"))

    if "tui" in only:
        report_path = out_dir / "tui.json"
        argv = [py, str(HERE / "tui.py"), "--entries", str(args.size), "--json", str(report_path)]
        if run("tui", argv, out_dir, args.timeout) is not None:
            report = json.loads(report_path.read_text())
            base = report["redis_cli_scan_s"]
            yardstick = f"redis-cli --scan {base:.2f} s"
            rss = report["tui_process"]["peak_rss_mib"]
            rows.append(
                (
                    "tui: cache list",
                    f"{args.size:,} keys",
                    f"{report['cache_list_s']:.2f} s (RSS {rss} MiB)",
                    yardstick,
                    f"{report['cache_list_s'] / base:.2f}x",
                    "<= 1 s at 1M",
                )
            )
            for sel in report["selections"]:
                if sel["first_rows_s"] is None:
                    continue
                when = "during the pass" if sel["during_pass"] else "after the pass"
                rows.append(
                    (
                        f"tui: first rows of {sel['cache']}, {when}",
                        f"{args.size:,} keys",
                        f"{1000 * sel['first_rows_s']:.0f} ms",
                        yardstick,
                        f"{sel['first_rows_s'] / base:.2f}x",
                        "<= 300 ms at 1M",
                    )
                )
            if report["catalog_pass_s"] is not None:
                rows.append(
                    (
                        "tui: whole catalog pass (background)",
                        f"{args.size:,} keys",
                        f"{report['catalog_pass_s']:.2f} s",
                        yardstick,
                        f"{report['catalog_pass_s'] / base:.2f}x",
                        "-",
                    )
                )
        else:
            rows.append(("tui", f"{args.size:,}", "failed", "-", "-", "-"))

    if "evict" in only:
        argv = [py, str(HERE / "evict.py"), "--total", str(args.size), "--matched", str(max(1, args.size // 10))]
        argv += ["--rounds", str(max(1, args.runs))]
        text = run("evict", argv, out_dir, args.timeout)
        if text is not None:
            doc = last_json(text)
            rows.append(
                (
                    "evict (with backup)",
                    f"{doc['matched']:,} of {doc['total_keys']:,}",
                    f"RSS {doc['cacheops_peak_rss_mb']} MB",
                    "redis-cli SCAN \\| UNLINK pipe",  # escaped: a Markdown table cell
                    f"{doc['median_ratio']:.2f}x",
                    "<= 2x",
                )
            )
        else:
            rows.append(("evict", f"{args.size:,}", "failed", "-", "-", "-"))

    if "audit" in only:
        argv = [py, str(HERE / "audit.py"), "--sizes", str(args.size), "--methods", "auto"]
        text = run("audit", argv, out_dir, args.timeout)
        if text is not None:
            for line in text.splitlines():
                if not line.startswith("{"):
                    continue
                r = json.loads(line)
                search = r["search"] or {}
                recall = search.get("recall_at_k")
                measured = f"{r['seconds']:.1f} s, {search.get('method')}"
                if recall is not None:
                    measured += f", recall@10 {recall:.3f}"
                measured += f" (RSS {r['peak_rss_mb']:.0f} MB)"
                numpy_s = r.get("numpy_seconds")
                rows.append(
                    (
                        "audit",
                        f"{r['entries']:,} semantic",
                        measured,
                        "-" if numpy_s is None else f"numpy all-pairs {numpy_s:.1f} s",
                        "-" if numpy_s is None else f"{r['seconds'] / numpy_s:.2f}x",
                        "100k <= 120 s, 1M <= 30 min",
                    )
                )
        else:
            rows.append(("audit", f"{args.size:,}", "failed", "-", "-", "-"))

    if "migrate" in only:
        total = min(2000, max(100, args.size // 50))
        text = run("migrate", [py, str(HERE / "migrate.py"), "--total", str(total)], out_dir, args.timeout)
        if text is not None:
            doc = last_json(text)
            rows.append(
                (
                    "migrate-embeddings",
                    f"{doc['entries']:,} entries",
                    f"{doc['migrate_per_s']:.0f} entries/s (RSS {doc['cli_peak_rss_mb']} MB)",
                    f"raw embedding {doc['raw_embed_per_s']:.0f}/s",
                    f"{doc['migrate_vs_raw']:.2f}",
                    ">= 0.8",
                )
            )
        else:
            rows.append(("migrate-embeddings", str(total), "failed", "-", "-", "-"))

    # Benchmarks whose yardstick is built in and that print their own table: shown as they print it.
    tables = {}
    for name, argv in (("startup", [py, str(HERE / "startup.py")]), ("track", [py, str(HERE / "track.py")])):
        if name in only:
            text = run(name, argv, out_dir, args.timeout)
            lines = (text or "").splitlines()
            # a table if it prints one, else its last line (a summary)
            table = [line for line in lines if line.startswith("|")]
            tables[name] = table or [line for line in lines if line.strip()][-1:] or ["failed"]

    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("\n| benchmark | size | cacheops | yardstick | ratio | target |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    for name, lines in tables.items():
        print(f"\n{name} (bench/{name}.py, its own table):\n")
        print("\n".join(lines))


if __name__ == "__main__":
    main()
