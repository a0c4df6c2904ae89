"""Benchmark: `cacheops audit` on a large LangChain RedisSemanticCache (not a test; prints a table).

The cache is written by the real langchain-redis RedisSemanticCache (its update(), the call an app's
invoke makes on a miss) with 384-dimension vectors, the size all-MiniLM-L6-v2 gives, from a fast
hashing embedding so filling 100k entries takes minutes, not hours of model time. The audit itself
needs no model: it compares the stored vectors (semantic/allpairs.py; --method knn: the index's own
KNN query per entry). The yardstick is a plain numpy all-pairs top-k over the same vectors held in
memory (the vectors' read not timed), at sizes where that fits.

Each audit runs in a fresh subprocess so its peak RSS is its own. Memory must stay flat as the cache
grows (streaming), so the run audits several sizes on the same server.

    python bench/audit.py --sizes 5000,20000,100000 --methods auto,knn

A 1M-entry fill takes a while: fill once into a server that outlives the run, then reuse it. Filling
resumes from the entries the cache already holds (its keys are the prompt's hash, so a re-fill
overwrites rather than duplicates); --no-fill audits the cache as it is, once:

    python bench/audit.py --url redis://127.0.0.1:6391/0 --name bench_audit_1m --sizes 1000000 --methods ''
    python bench/audit.py --url redis://127.0.0.1:6391/0 --name bench_audit_1m --no-fill
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


def fill(url: str, name: str, total: int, start: int = 0) -> float:
    from langchain_core.outputs import Generation
    from langchain_redis import RedisSemanticCache

    from cacheops.demo import hashing_embeddings

    cache = RedisSemanticCache(embeddings=hashing_embeddings(dims=384), redis_url=url, name=name)
    llm_string = "[('_type', 'bench-chat'), ('model_name', 'gpt-4o-mini'), ('stop', None)]"
    started = time.monotonic()
    for i in range(start, total):
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
import os
load_before = os.getloadavg()[0]
started = time.monotonic()
opts = AuditOptions(cache={name!r}, k={k}, bare=False, method={method!r})
report = run_audit(client, build_context(client, learn=False), opts)
seconds = time.monotonic() - started
(c,) = report.caches
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork + exec
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({{"entries": c.entries, "seconds": seconds, "pairs": c.colliding_pairs,
                   "search": c.search, "median_nn": c.nn.quantile(0.5),
                   "cpu_seconds": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]),
                   "load_average": [load_before, os.getloadavg()[0]],
                   "peak_rss_mb": hwm / 1024}}))
"""

YARDSTICK = """
import json, resource, sys, time
import numpy as np
import redis
sys.path.insert(0, {root!r})
client = redis.Redis.from_url({url!r})
raw = []
for key in client.scan_iter(match={name!r} + ":*", count=1000):
    raw.append(key)
pipe = client.pipeline(transaction=False)
for key in raw:
    pipe.hget(key, "prompt_vector")
x = np.frombuffer(b"".join(pipe.execute()), dtype=np.float32).reshape(len(raw), -1)
x = x / np.linalg.norm(x, axis=1, keepdims=True)
started = time.monotonic()
for a in range(0, len(x), 2048):
    sim = x[a : a + 2048] @ x.T
    sim[np.arange(len(sim)), np.arange(a, a + len(sim))] = -np.inf
    top = np.argpartition(-sim, {k}, axis=1)[:, : {k}]
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"seconds": time.monotonic() - started, "cpu_seconds": usage[0] + usage[1],
                   "peak_rss_mb": usage.ru_maxrss / 1024}}))
"""


def subprocess_json(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def cached_entries(url: str, name: str) -> int:
    """Entries the cache's index already holds (0 when it does not exist yet)."""
    import redis

    try:
        info = redis.Redis.from_url(url).ft(name).info()
    except redis.ResponseError:
        return 0
    return int(info["num_docs"])


def audit(url: str, name: str, k: int, method: str) -> dict:
    return subprocess_json(AUDIT.format(root=str(ROOT), url=url, name=name, k=k, method=method))


def yardstick(url: str, name: str, k: int) -> dict:
    """numpy all-pairs top-k over the same stored vectors, all in memory (timed without the read)."""
    return subprocess_json(YARDSTICK.format(root=str(ROOT), url=url, name=name, k=k))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="An existing Redis with search (default: start the embedded one)")
    parser.add_argument("--name", default="bench_audit", help="the semantic cache's name (its index and key prefix)")
    parser.add_argument("--no-fill", action="store_true", help="with --url: audit the cache as it is, write nothing")
    parser.add_argument("--sizes", default="5000,20000,100000", help="cumulative: one cache grows to each size")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--methods", default="auto", help="comma-separated: auto,exact,ivf,knn")
    parser.add_argument("--knn-max", type=int, default=5000, help="largest size audited with --method knn")
    parser.add_argument("--yardstick-max", type=int, default=20000, help="largest size of the numpy yardstick")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    if args.no_fill and not args.url:
        parser.error("--no-fill needs --url (an embedded server starts empty)")
    from contextlib import nullcontext

    from cacheops.server.embedded import EmbeddedRedis

    with nullcontext() if args.url else EmbeddedRedis() as server:
        url = args.url or server.url
        rows = []
        name = args.name
        filled = cached_entries(url, name)
        for size in [filled] if args.no_fill else sizes:
            fill_s = fill(url, name, size, start=filled) if size > filled else 0.0
            filled = max(filled, size)
            numpy_s = yardstick(url, name, args.k)["seconds"] if size <= args.yardstick_max else None
            for method in [m for m in args.methods.split(",") if m]:  # --methods '': fill only
                if method == "knn" and size > args.knn_max:
                    continue
                result = audit(url, name, args.k, method)
                result.update(size=size, method=method, fill_seconds=round(fill_s, 1), numpy_seconds=numpy_s)
                rows.append(result)
                print(json.dumps(result), flush=True)
        print(
            "\n| entries | method | search | recall@k (sample) | audit wall (process CPU) "
            "| numpy all-pairs in memory | peak RSS (audit process) | colliding pairs |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for r in rows:
            search = r["search"] or {}
            recall = search.get("recall_at_k")
            recall_text = "-" if recall is None else f"{recall:.4f} ({search.get('recall_sample')})"
            numpy_text = "-" if r["numpy_seconds"] is None else f"{r['numpy_seconds']:.1f} s"
            print(
                f"| {r['entries']:,} | {r['method']} | {search.get('method')} {search.get('probes') or ''} | "
                f"{recall_text} | {r['seconds']:.1f} s ({r.get('cpu_seconds', 0):.0f} s) | {numpy_text} "
                f"| {r['peak_rss_mb']:.0f} MB | {r['pairs']:,} |"
            )
    print(f"\nbaseline python RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
