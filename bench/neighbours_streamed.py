"""Benchmark: the neighbour searches cacheops runs on a Redis Cluster without a search coordinator
(every shard's stored vectors streamed and compared on the client: semantic/vectorscan.py) against
the index's own queries they replace on one server, timed in one run on the same entries.

One embedded node holds N RedisVL-shaped entries (384-dim float32 random vectors, the index created
by RedisVL SemanticCache itself). Timed, each the median of --runs:
  range   evict --similar-to's search: every entry within a threshold of a query vector
          (index: VECTOR_RANGE pages; streamed: vectorscan.within)
  nearest the TUI's neighbours of one entry: its 10 nearest (index: one KNN query; streamed:
          vectorscan.nearest)
The index queries are the yardstick: the figures are ratios streamed / index. On a cluster the
streamed pass reads the shards through the merged scan (bench/cluster.py: as fast as one node here).

Usage:  PYTHONPATH=$PWD python bench/neighbours_streamed.py --entries 50000 [--runs 3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DIMS = 384


def fill(url: str, n: int) -> None:
    import numpy as np
    import redis
    from redisvl.extensions.cache.llm import SemanticCache
    from redisvl.utils.vectorize import CustomVectorizer

    rng = np.random.default_rng(7)
    SemanticCache(name="llmcache", redis_url=url, vectorizer=CustomVectorizer(embed=lambda t: [0.0] * DIMS))
    client = redis.Redis.from_url(url)
    pipe = client.pipeline(transaction=False)
    now = time.time()
    for i in range(n):
        prompt = f"benchmark question {i}"
        key = "llmcache:" + hashlib.sha256(prompt.encode()).hexdigest()
        vector = rng.standard_normal(DIMS).astype("<f4")
        pipe.hset(
            key,
            mapping={
                "entry_id": hashlib.sha256(prompt.encode()).hexdigest(),
                "prompt": prompt,
                "response": f"answer {i}",
                "prompt_vector": vector.tobytes(),
                "inserted_at": now,
                "updated_at": now,
            },
        )
        if i % 2000 == 1999:
            pipe.execute()
    pipe.execute()  # hashes written after FT.CREATE are indexed as they are written


def median_time(fn, runs: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from redisvl.query import VectorQuery, VectorRangeQuery

    from cacheops import connect_url
    from cacheops.inspect.catalog import build_context
    from cacheops.semantic import neighbours, vectorscan
    from cacheops.server.embedded import EmbeddedRedis

    print(f"load average at start: {os.getloadavg()}", file=sys.stderr)
    with EmbeddedRedis() as server:
        fill(server.url, args.entries)
        client = connect_url(server.url)
        ctx = build_context(client)
        (sc,) = neighbours.semantic_caches(client, ctx, "llmcache")
        key = next(client.scan_iter(match="llmcache:*", count=1000)).decode()
        vector = client.hget(key, "prompt_vector")
        threshold = 0.95  # random 384-dim vectors sit near distance 1: a few percent fall within

        def index_range():
            found, offset = [], 0
            while True:
                query = VectorRangeQuery(
                    vector=vector,
                    vector_field_name="prompt_vector",
                    return_fields=[],
                    distance_threshold=threshold,
                    num_results=neighbours.PAGE,
                )
                query.paging(offset, neighbours.PAGE)
                hits = neighbours._run(client, sc.index.name, query)
                found += hits
                if len(hits) < neighbours.PAGE:
                    return found
                offset += neighbours.PAGE

        def index_nearest():
            query = VectorQuery(vector=vector, vector_field_name="prompt_vector", return_fields=[], num_results=11)
            return neighbours._run(client, sc.index.name, query)

        rows = []
        for name, index_fn, streamed_fn in (
            ("range", index_range, lambda: vectorscan.within(client, ctx, sc.vectors, vector, threshold)),
            ("nearest", index_nearest, lambda: vectorscan.nearest(client, ctx, sc.vectors, vector, 10, exclude=key)),
        ):
            t_index, by_index = median_time(index_fn, args.runs)
            t_streamed, streamed = median_time(streamed_fn, args.runs)
            assert {k for k, _ in streamed} <= {k for k, _ in by_index}, name  # the same hits (knn: self too)
            assert name != "range" or len(streamed) == len(by_index), name
            rows.append((name, len(by_index), t_index, t_streamed))
        cpu = time.process_time()
    print(f"entries {args.entries:,}, {DIMS} dims float32, median of {args.runs}; client CPU {cpu:.1f} s")
    for name, hits, t_index, t_streamed in rows:
        print(
            f"{name:8} hits {hits:6,}  index {t_index * 1000:9.1f} ms  streamed {t_streamed * 1000:9.1f} ms  "
            f"ratio {t_streamed / t_index:7.1f}"
        )
    print(f"load average at end: {os.getloadavg()}", file=sys.stderr)


if __name__ == "__main__":
    main()
