"""Benchmark: `cacheops evict` (with its backup) against a redis-cli SCAN | xargs UNLINK pipe.

Not a test: run it by hand, and record the figures in docs/benchmarks.md.

    PYTHONPATH=$PWD /work/venv/bin/python bench/evict.py                 # 1M keys, 100k matched
    PYTHONPATH=$PWD /work/venv/bin/python bench/evict.py --total 200000 --matched 20000

Data: a fresh embedded Redis holds `total` cache entries whose values were written by the real
libraries: a pool of langchain-redis RedisCache entries (chat model invoke through set_llm_cache) and
RedisVL SemanticCache entries (store, with its index), each cloned (DUMP/RESTORE, byte-identical
values) under fresh keys of the library's own shape. `matched` exact entries live in cache
"victim"; the rest in "app" (exact) and "llmcache" (semantic, indexed).

Both contenders delete the same 100k keys in the same run:
  pipe     redis-cli --scan --pattern 'victim:*' | xargs redis-cli unlink
  cacheops cacheops evict --cache victim --yes --backup FILE   (the CLI, in its own process: preview,
           layout check of every key, backup of every value, re-check + WATCH/UNLINK, log)
The preview alone (--dry-run) is timed too, to show how the time splits. Then --rounds rounds (default
3) of cacheops and the pipe, one after the other, the victim keys re-created before each; each round's
ratio is printed and the median reported (the machine's speed drifts between rounds, not within one).
redis-cli comes from redis-tools; the script installs it with apt-get when missing (root) or tells you how.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

POOL = 200  # distinct entries written by the libraries, cloned to fill the keyspace


def ensure_redis_cli() -> str:
    path = shutil.which("redis-cli")
    if path:
        return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", "redis-tools"], check=True)
        path = shutil.which("redis-cli")
        if path:
            return path
    sys.exit("redis-cli is needed for the comparison: apt-get install -y redis-tools")


def library_templates(url: str, client) -> tuple[list[bytes], list[bytes]]:
    """DUMPs of entries written by the real libraries: langchain-redis exact, RedisVL semantic."""
    import writers

    writers.langchain_exact(
        url,
        [(f"template question {i}?", f"Template answer number {i}, " + "lorem ipsum " * 8) for i in range(POOL)],
        model="gpt-4o",
        prefix="tpl",
    )
    writers.redisvl_semantic(
        url,
        [
            {
                "prompt": f"semantic template {i}",
                "response": f"answer {i} " + "dolor " * 10,
                "metadata": {"model": "gpt-4o"},
            }
            for i in range(POOL)
        ],
        name="llmcache",
    )
    exact = [client.dump(k) for k in client.scan_iter(match="tpl:*", count=1000)]
    semantic = [client.dump(k) for k in client.scan_iter(match="llmcache:*", count=1000)]
    for k in list(client.scan_iter(match="tpl:*", count=1000)) + list(client.scan_iter(match="llmcache:*", count=1000)):
        client.unlink(k)
    return exact, semantic


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def load(client, prefix: str, templates: list[bytes], n: int, shape: str, start: int = 0) -> None:
    pipe = client.pipeline(transaction=False)
    for i in range(start, start + n):
        if shape == "exact":
            key = f"{prefix}:{md5(f'{prefix} prompt {i}')}:{md5('llm')}"
        else:
            key = f"{prefix}:{hashlib.sha256(f'{prefix} prompt {i}'.encode()).hexdigest()}"
        pipe.restore(key, 0, templates[i % len(templates)], replace=True)
        if len(pipe) >= 5000:
            pipe.execute()
    pipe.execute()


def count(client, pattern: str) -> int:
    return sum(1 for _ in client.scan_iter(match=pattern, count=5000))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--total", type=int, default=1_000_000)
    parser.add_argument("--matched", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3, help="evict/pipe rounds; the median is reported")
    args = parser.parse_args()
    redis_cli = ensure_redis_cli()

    import redis

    from cacheops.server.embedded import EmbeddedRedis

    with EmbeddedRedis() as server, tempfile.TemporaryDirectory() as tmp:
        url = server.url
        client = redis.Redis.from_url(url)
        client.config_set("maxmemory-policy", "noeviction")
        exact, semantic = library_templates(url, client)
        rest = args.total - args.matched
        t = time.monotonic()
        load(client, "victim", exact, args.matched, "exact")
        load(client, "app", exact, rest * 2 // 3, "exact")
        load(client, "llmcache", semantic, rest - rest * 2 // 3, "semantic")
        print(
            f"loaded {client.dbsize():,} keys in {time.monotonic() - t:.1f}s "
            f"(used_memory {client.info('memory')['used_memory_human']})",
            flush=True,
        )

        # cacheops: the real CLI in its own process. First the preview alone (--dry-run), to show how
        # the time splits; then rounds of the eviction itself (with its backup) and the pipe, one
        # after the other on the same data: the machine's speed drifts, so each round compares the
        # two under the same conditions and the median round is reported.
        env = {**os.environ, "CACHEOPS_STATE_DIR": tmp}
        t = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "cacheops", "--url", url, "evict", "--cache", "victim", "--dry-run", "--json"],
            capture_output=True,
            env=env,
            check=True,
        )
        dry_run_s = time.monotonic() - t
        rounds = []
        for n in range(args.rounds):
            if n:
                load(client, "victim", exact, args.matched, "exact")
            backup = Path(tmp) / f"backup-{n}.jsonl"
            t = time.monotonic()
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "cacheops",
                    "--url",
                    url,
                    "evict",
                    "--cache",
                    "victim",
                    "--yes",
                    "--json",
                    "--backup",
                    str(backup),
                ],
                capture_output=True,
                env=env,
            )
            cacheops_s = time.monotonic() - t
            if proc.returncode != 0:
                sys.exit(f"cacheops evict failed ({proc.returncode}): {proc.stderr.decode()[-500:]}")
            result = json.loads(proc.stdout)["result"]
            assert result["deleted"] == args.matched, result
            assert count(client, "victim:*") == 0
            backup_mb = backup.stat().st_size / 1e6
            backup.unlink()

            # the pipe, on the same data
            load(client, "victim", exact, args.matched, "exact")
            assert client.dbsize() >= args.total
            t = time.monotonic()
            subprocess.run(
                f"{redis_cli} -u {url} --scan --pattern 'victim:*' | xargs {redis_cli} -u {url} unlink > /dev/null",
                shell=True,
                check=True,
            )
            pipe_s = time.monotonic() - t
            assert count(client, "victim:*") == 0
            rounds.append(
                {
                    "cacheops_seconds": round(cacheops_s, 2),
                    "pipe_seconds": round(pipe_s, 2),
                    "ratio": round(cacheops_s / pipe_s, 2),
                }
            )
            print(json.dumps(rounds[-1]), flush=True)
        peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        remaining = client.dbsize()

    median = sorted(rounds, key=lambda r: r["ratio"])[len(rounds) // 2]
    print(
        json.dumps(
            {
                "total_keys": args.total,
                "matched": args.matched,
                "rounds": rounds,
                "median_ratio": median["ratio"],
                "cacheops_dry_run_seconds": round(dry_run_s, 2),
                "target_ratio": 2.0,
                "cacheops_peak_rss_mb": round(peak_rss_mb, 1),
                "backup_mb": round(backup_mb, 1),
                "keys_left": remaining,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
