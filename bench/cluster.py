"""Benchmark: `cacheops scan --json > /dev/null` on one node vs a 3-primary Redis Cluster holding the
same entries, on this machine, in one run.

The one node is filled by bench/scan.py's writer (the real langchain-redis layouts, checked byte for
byte against the libraries). The cluster gets exactly the same keys: each is copied with DUMP /
RESTORE (same bytes, same TTL), and the semantic cache's index is created by the library itself
(RedisSemanticCache given a RedisCluster client: it builds a one-node client from a URL). The one-node
scan is the yardstick: the figure is the ratio cluster / one node, and each run's peak RSS. The cluster scan reads up to
cluster_scan.PARALLEL (4) nodes at once, each with its own reader thread keeping batches in flight.

Usage:  python bench/cluster.py --entries 100000 [--runs 3] [--replicas 0]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def copy_keys(source_url: str, cluster_url: str, batch: int = 2000) -> int:
    """Every key of the one node into the cluster, byte for byte (DUMP / RESTORE with its PTTL)."""
    import redis
    from redis.cluster import RedisCluster

    source = redis.Redis.from_url(source_url)
    target = RedisCluster.from_url(cluster_url)
    copied = 0
    for_keys = []
    for key in source.scan_iter(count=1000):
        for_keys.append(key)
        if len(for_keys) >= batch:
            copied += _copy_batch(source, target, for_keys)
            for_keys = []
    copied += _copy_batch(source, target, for_keys)
    return copied


def _copy_batch(source, target, keys: list[bytes]) -> int:
    if not keys:
        return 0
    pipe = source.pipeline(transaction=False)
    for key in keys:
        pipe.dump(key)
        pipe.pttl(key)
    replies = pipe.execute()
    out = target.pipeline(transaction=False)
    for i, key in enumerate(keys):
        dump, pttl = replies[2 * i], replies[2 * i + 1]
        if dump is not None:
            out.restore(key, max(pttl, 0), dump, replace=True)
    out.execute()
    return len(keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--semantic-share", type=float, default=0.5)
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each (median reported)")
    parser.add_argument("--replicas", type=int, default=0, help="replicas per primary in the cluster")
    parser.add_argument("--json", dest="json_out", help="also write the results to this JSON file")
    args = parser.parse_args()

    import redis
    import scan as scan_bench
    from langchain_redis import RedisSemanticCache
    from redis.cluster import RedisCluster

    from cacheops.server.cluster_scan import PARALLEL
    from cacheops.server.embedded import EmbeddedRedis
    from cacheops.server.embedded_cluster import EmbeddedCluster

    with EmbeddedRedis() as node, EmbeddedCluster(primaries=3, replicas=args.replicas) as cluster:
        facts = scan_bench.machine()
        fill_info = scan_bench.fill(node.url, args.entries, args.semantic_share)
        started = time.monotonic()
        RedisSemanticCache(  # langchain-redis builds Redis.from_url from a URL: a cluster needs its client
            embeddings=scan_bench.as_langchain_embeddings(scan_bench.Embeddings384()),
            redis_client=RedisCluster.from_url(cluster.url),
        )
        copied = copy_keys(node.url, cluster.url)
        per_node = [redis.Redis(port=n.port).dbsize() for n in cluster.primary_nodes]
        print(f"keyspace: {fill_info}; copied {copied} keys to the cluster {per_node}", file=sys.stderr)
        copy_seconds = round(time.monotonic() - started, 1)

        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        variants = {
            "one node": [sys.executable, "-m", "cacheops", "--url", node.url, "scan", "--json"],
            "cluster, 3 primaries": [sys.executable, "-m", "cacheops", "--url", cluster.url, "scan", "--json"],
        }
        results: dict[str, list] = {name: [] for name in variants}
        for _ in range(args.runs):  # interleaved, so drift hits both alike
            for name, argv in variants.items():
                results[name].append(scan_bench.timed(argv, env))
        listed = {name: sum(scan_bench.count_lines(argv, env).values()) for name, argv in variants.items()}
        report = {
            "commands": {name: " ".join(argv) for name, argv in variants.items()},
            "entries": args.entries,
            "keyspace": fill_info,
            "cluster": {
                "primaries": 3,
                "replicas_per_primary": args.replicas,
                "keys_per_primary": per_node,
                "nodes_scanned_at_once": PARALLEL,
                "copy_seconds": copy_seconds,
            },
            "listed": listed,
            "machine": facts,
            "runs": {},
        }
        for name, runs in results.items():
            report["runs"][name] = scan_bench.median_row(runs)
        base = report["runs"]["one node"]["wall_median_s"]
        for row in report["runs"].values():
            row["ratio_to_one_node"] = round(row["wall_median_s"] / base, 2)
        print(json.dumps(report, indent=2))
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
