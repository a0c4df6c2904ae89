"""One stream of RawRecord batches from several servers: the shards of a Redis Cluster (or the
replica chosen to scan instead of a primary).

Each node is scanned with the single-server engine (keyspace.iter_node_batches: the server-side
batch script run on that node with 0 keys, or the plain pipeline path), each with its own cursor.
The streams are merged round-robin, a batch at a time, with up to PARALLEL nodes open at once: each
open node's script path keeps its next batches in flight in its own reader thread, so the nodes
work in parallel while memory stays a few batches per open node. Every key lives on exactly one
shard, so the merged stream lists every entry once (SCAN's own "at least once" aside), exactly as
one server holding the same keys would.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator

from redis import exceptions as rex

from ..errors import ConnectionFailed
from .topology import NodeClient

PARALLEL = 4  # nodes scanned at once


def merged_batches(nodes: list[NodeClient], opts, stats, scan_one: Callable, parallel: int = PARALLEL) -> Iterator:
    """Batches of every node in `nodes`, interleaved. `stats` (a keyspace.ScanStats) gets the sums
    and, in extra["nodes"], each node's name, role, batches and keys."""
    pending = deque(nodes)
    active: deque = deque()
    per_node: list[dict] = []
    stats.extra["nodes"] = per_node

    def open_next() -> None:
        node = pending.popleft()
        node_stats = type(stats)()
        active.append((node, node_stats, scan_one(node.client, opts, node_stats)))
        per_node.append({"node": node.name, "role": node.role, "stats": node_stats})

    try:
        while pending and len(active) < parallel:
            open_next()
        while active:
            node, node_stats, stream = active.popleft()
            try:
                batch = next(stream)
            except StopIteration:
                _merge_path(stats, node_stats)
                if pending:
                    open_next()
                continue
            except (rex.ConnectionError, rex.TimeoutError) as exc:
                raise ConnectionFailed(
                    f"lost {node.role} {node.name} in the middle of the scan ({exc}): the listing is incomplete; "
                    "re-run once the cluster is ok again (a promoted replica is then scanned in its place)"
                ) from None
            stats.batches += 1
            stats.keys += len(batch)
            active.append((node, node_stats, stream))
            yield batch
    finally:
        for _node, _stats, stream in active:
            stream.close()  # stops that node's reader thread
    for entry in per_node:
        node_stats = entry.pop("stats")
        entry.update(path=node_stats.path, batches=node_stats.batches, keys=node_stats.keys)


def _merge_path(stats, node_stats) -> None:
    if not stats.path:
        stats.path = node_stats.path
    elif node_stats.path and node_stats.path != stats.path:
        stats.path = "mixed: " + ", ".join(sorted({stats.path.removeprefix("mixed: "), node_stats.path}))
    if node_stats.fallback_reason and not stats.fallback_reason:
        stats.fallback_reason = node_stats.fallback_reason
