"""Benchmark: `cacheops audit` on a large LangChain RedisSemanticCache (not a test; prints a table).

The cache is written by the real langchain-redis RedisSemanticCache (its update(), the call an app's
invoke makes on a miss) with 384-dimension vectors, the size all-MiniLM-L6-v2 gives, from a fast
hashing embedding so filling 50k entries takes minutes, not an hour of model time. The audit itself
needs no model: it runs the index's KNN for every entry from the stored vectors.

Each audit runs in a fresh subprocess so its peak RSS is its own. Memory must stay flat as the cache
grows (streaming), so the run audits several sizes on the same server.

    python bench/audit.py --sizes 10000,50000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOPICS = [
    "billing",
    "refunds",
    "passwords",
    "plans",
    "exports",
    "the API",
    "teams",
    "security",
    "domains",
    "invoices",
    "trials",
    "discounts",
    "support",
    "uptime",
    "languages",
    "the mobile app",
]
ASKS = [
    "How do I change {t} for account {n}?",
    "What is the price of plan {n}?",
    "Why does {t} fail on device {n}?",
    "Can you explain {t} in region {n}?",
    "Where can I find {t} setting number {n}?",
]


def fill(url: str, name: str, total: int) -> float:
    from langchain_core.outputs import Generation
    from langchain_redis import RedisSemanticCache

    from cacheops.demo import hashing_embeddings

    cache = RedisSemanticCache(embeddings=hashing_embeddings(dims=384), redis_url=url, name=name)
    llm_string = "[('_type', 'bench-chat'), ('model_name', 'gpt-4o-mini'), ('stop', None)]"
    started = time.monotonic()
    for i in range(total):
        prompt = ASKS[i % len(ASKS)].format(t=TOPICS[(i // 5) % len(TOPICS)], n=i)
        cache.update(prompt, llm_string, [Generation(text=f"Answer number {i} about {TOPICS[i % len(TOPICS)]}.")])
    return time.monotonic() - started


AUDIT = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
from cacheops.semantic.audit import AuditOptions, run_audit
from cacheops.inspect.catalog import build_context
from cacheops.server.connection import connect, resolve_spec
client = connect(resolve_spec({url!r}, None, None, None, None, None))
started = time.monotonic()
report = run_audit(client, build_context(client, learn=False), AuditOptions(cache={name!r}, k={k}, bare=False))
seconds = time.monotonic() - started
(c,) = report.caches
print(json.dumps({{"entries": c.entries, "seconds": seconds, "pairs": c.colliding_pairs,
                   "median_nn": c.nn.quantile(0.5), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def audit(url: str, name: str, k: int) -> dict:
    code = AUDIT.format(root=str(ROOT), url=url, name=name, k=k)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="An existing Redis with search (default: start the embedded one)")
    parser.add_argument("--sizes", default="10000,50000")
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    from contextlib import nullcontext

    from cacheops.server.embedded import EmbeddedRedis

    with nullcontext() if args.url else EmbeddedRedis() as server:
        url = args.url or server.url
        rows = []
        for size in sizes:
            name = f"bench_audit_{size}"
            fill_s = fill(url, name, size)
            result = audit(url, name, args.k)
            result.update(size=size, fill_seconds=round(fill_s, 1))
            rows.append(result)
            print(json.dumps(result), flush=True)
        print(
            "\n| entries | k | audit wall time | entries/s | peak RSS (audit process) | fill (langchain-redis update) |"
        )
        print("|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['entries']:,} | {args.k} | {r['seconds']:.1f} s | {r['entries'] / r['seconds']:,.0f} | "
                f"{r['peak_rss_mb']:.0f} MB | {r['fill_seconds']:.0f} s |"
            )
    print(f"\nbaseline python RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
