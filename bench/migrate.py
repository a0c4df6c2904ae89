"""Benchmark: `cacheops migrate-embeddings` against the raw throughput of the same embedding model.

Not a test: run it by hand, and record the figures in docs/benchmarks.md.

    PYTHONPATH=$PWD /work/venv/bin/python bench/migrate.py                  # 2,000 entries
    PYTHONPATH=$PWD /work/venv/bin/python bench/migrate.py --total 5000 --batch 64

Data: a fresh embedded Redis; `total` langchain-redis RedisSemanticCache entries written by the real
library (a chat model's invoke through set_llm_cache), embedded with the demo's 64-dim hashing
embedding, TTL 1 day, distinct FAQ-like prompts.

Contenders, on the same texts:
  raw       the model alone: HFTextVectorizer(all-MiniLM-L6-v2).embed_many over every stored prompt
            field (LangChain's serialised message lists), in batches of --batch, timed after loading
            (the first run includes the warm-up, as the migration's first batch does; the faster of
            two runs is reported, the machine being shared).
  cacheops  `cacheops migrate-embeddings --cache bench --to hf:...MiniLM... --yes --json`, the CLI in its
            own process (peak RSS measured by bench/_measure.py): plan (preview scans), index creation,
            SCAN + pipelined reads in a reader thread, embedding, MULTI/EXEC writes, operations log event.
The migration's own rate (its `seconds`, model load excluded) over the raw rate shows how much of
the Redis I/O is hidden behind the embedding.

    PYTHONPATH=$PWD /work/venv/bin/python bench/migrate.py --flat 2000,20000

--flat: memory does not grow with the cache. The library's plan + execute runs in its own process
(bench/_measure.py) with a cheap hashing vectorizer instead of the model (so torch's few hundred MB do
not hide the migration's own memory), once per size; peak RSS and rate per size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
MINILM = "hf:sentence-transformers/all-MiniLM-L6-v2"
TOPICS = [
    "billing",
    "passwords",
    "the API",
    "exports",
    "team seats",
    "invoices",
    "SSO",
    "webhooks",
    "the mobile app",
    "refunds",
    "data retention",
    "two-factor sign-in",
    "custom domains",
    "rate limits",
    "audit logs",
]
ASKS = [
    "How do I change {t} for workspace {n}?",
    "Why does {t} fail for user {n} after the upgrade?",
    "Can you explain how {t} works on plan {n}?",
    "What is the limit on {t} for team {n}, and can it be raised?",
]


def prompts(total: int) -> list[tuple[str, str]]:
    out = []
    for i in range(total):
        ask = ASKS[i % len(ASKS)].format(t=TOPICS[(i // len(ASKS)) % len(TOPICS)], n=i)
        out.append((ask, f"Answer {i}: open Settings and follow the steps for this case. " + "Details follow. " * 4))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--total", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--flat", metavar="N,N,...", help="memory check with a cheap vectorizer at these sizes")
    args = parser.parse_args()
    if args.flat:
        return flat([int(n) for n in args.flat.split(",")], args.batch)

    import redis
    import writers

    from cacheops.demo import hashing_embeddings
    from cacheops.server.embedded import EmbeddedRedis

    with EmbeddedRedis() as server:
        client = redis.Redis.from_url(server.url)
        t0 = time.perf_counter()
        # 256 dims and a tiny threshold: no two distinct prompts hit each other while the cache is filled
        writers.langchain_semantic(
            server.url,
            prompts(args.total),
            name="bench",
            ttl=86400,
            embeddings=hashing_embeddings(256),
            distance_threshold=1e-9,
        )
        print(
            f"wrote {args.total:,} entries through langchain-redis in {time.perf_counter() - t0:.1f}s", file=sys.stderr
        )
        texts = [client.hget(k, "prompt").decode() for k in client.scan_iter(match="bench:*", count=1000)]

        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "result.json"
            cmd = (
                f"exec {sys.executable} -m cacheops --url {server.url} migrate-embeddings --cache bench "
                f"--to {MINILM} --batch {args.batch} --yes --json > {out}"
            )
            env = {**os.environ, "PYTHONPATH": str(ROOT), "CACHEOPS_STATE_DIR": tmp}
            measured = subprocess.run(
                [sys.executable, str(ROOT / "bench" / "_measure.py"), "sh", "-c", cmd],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            ).stdout.split()
            wall, rss_kib, code = float(measured[0]), int(measured[1]), int(measured[2])
            if code != 0:
                sys.exit(f"migrate-embeddings exited {code}")
            result = json.loads(out.read_text())["result"]

        from cacheops.semantic.vectorizers import load_vectorizer

        vectorizer = load_vectorizer(MINILM)
        raw_runs = []
        for _ in range(2):  # the machine is shared: two runs, the faster one counts
            t0 = time.perf_counter()
            for i in range(0, len(texts), args.batch):
                vectorizer.embed_many(texts[i : i + args.batch], batch_size=args.batch)
            raw_runs.append(time.perf_counter() - t0)
        raw_seconds = min(raw_runs)

    raw_rate = len(texts) / raw_seconds
    mig_rate = result["migrated"] / result["seconds"]
    report = {
        "entries": len(texts),
        "batch": args.batch,
        "migrated": result["migrated"],
        "raw_embed_per_s": round(raw_rate, 1),
        "raw_runs_s": [round(r, 2) for r in raw_runs],
        "migrate_per_s": round(mig_rate, 1),
        "migrate_vs_raw": round(mig_rate / raw_rate, 3),
        "migrate_seconds": round(result["seconds"], 2),
        "of_which_embedding_s": round(result["embed_seconds"], 2),
        "cli_wall_s": round(wall, 2),
        "cli_peak_rss_mb": round(rss_kib / 1024, 1),
        "load_average": os.getloadavg()[0],
    }
    print(json.dumps(report, indent=2))


FLAT_RUN = """
import sys, time
from redisvl.utils.vectorize import CustomVectorizer
from cacheops import migrate
from cacheops.server.connection import connect, resolve_spec
from cacheops.demo import hashing_embeddings
emb = hashing_embeddings(384)
vec = CustomVectorizer(embed=emb.embed_query, embed_many=emb.embed_documents)
client = connect(resolve_spec(sys.argv[1]))
plan = migrate.plan(client, "bench", "hf:hashing-384", vectorizer=vec)
result = migrate.execute(client, plan, vectorizer=vec, batch=int(sys.argv[2]))
open(sys.argv[3], "w").write(f"{result.migrated} {result.seconds}")
"""


def flat(sizes: list[int], batch: int) -> None:
    import writers

    from cacheops.demo import hashing_embeddings
    from cacheops.server.embedded import EmbeddedRedis

    rows = []
    for total in sizes:
        with EmbeddedRedis() as server, tempfile.TemporaryDirectory() as tmp:
            writers.langchain_semantic(
                server.url,
                prompts(total),
                name="bench",
                ttl=86400,
                embeddings=hashing_embeddings(256),
                distance_threshold=1e-9,
            )
            out = Path(tmp) / "out"
            env = {**os.environ, "PYTHONPATH": str(ROOT), "CACHEOPS_STATE_DIR": tmp}
            measured = subprocess.run(
                [
                    sys.executable,
                    str(ROOT / "bench" / "_measure.py"),
                    sys.executable,
                    "-c",
                    FLAT_RUN,
                    server.url,
                    str(batch),
                    str(out),
                ],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            ).stdout.split()
            migrated, seconds = out.read_text().split()
            rows.append(
                {
                    "entries": int(migrated),
                    "seconds": round(float(seconds), 2),
                    "per_s": round(int(migrated) / float(seconds), 1),
                    "peak_rss_mb": round(int(measured[1]) / 1024, 1),
                }
            )
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
