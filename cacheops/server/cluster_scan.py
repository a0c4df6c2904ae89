"""One stream of RawRecord batches from several servers: the shards of a Redis Cluster (or the
replica chosen to scan instead of a primary).

Each node is scanned with the single-server engine (keyspace.iter_node_batches: the server-side
batch script run on that node with 0 keys, or the plain pipeline path), each with its own cursor.
The streams are merged round-robin, a batch at a time, with up to PARALLEL nodes open at once: each
open node's script path keeps its next batches in flight in its own reader thread, so the nodes
work in parallel while memory stays a few batches per open node. Every key lives on exactly one
shard, so the merged stream lists every entry once, exactly as one server holding the same keys would.

On a cluster the topology may change under the scan, and the listing must stay exact:
- a failover: when a node's stream fails, the scan waits (up to twice cluster-node-timeout plus a
  margin) for a live primary of that shard's slots (its promoted replica), scans the shard again from
  the start there and skips the names it already listed. So each open shard remembers the names it
  listed, up to TRACK_LIMIT names in all; a shard past that cannot resume, and its failure stops the
  scan with the clear error it always gave.
- a slot migration: keys of a slot that moves between shards could be listed by both or by neither.
  The scan asks every primary where slots are (cluster_view: at the start, every POLL_SECONDS, when a
  shard finishes and when a node shows a key of a slot it did not serve), and each slot found moving is
  "touched": from then on its names are remembered (starting with those its shard already listed) and
  it is listed only where it was not yet, and at the end it is listed again from where its keys are now
  (cluster_sweep), skipping those names. A slot of a shard whose scan was already over when it moved
  needs neither: that shard listed all of its keys. Only touched slots' names are kept past their
  shard's end.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field

from redis import exceptions as rex
from redis.crc import key_slot

from ..errors import ConnectionFailed, TopologyChanged
from .cluster_sweep import slot_nodes, sweep_slot
from .cluster_view import ClusterView, Shards, moving_here, node_timeout_ms, poll
from .topology import NodeClient, node_client, primary_nodes

PARALLEL = 4  # nodes scanned at once
TRACK_LIMIT = 200_000  # names of listed entries remembered at once, all shards together
POLL_SECONDS = 1.0  # how often the primaries are asked for moving slots during a scan
FAILOVER_MARGIN_SECONDS = 5.0  # beyond twice cluster-node-timeout, to wait for a replica to take over
NOT_SERVED = ""  # RawRecord.type of a key a cluster node holds but does not serve (a slot being imported)


def status(text: str) -> None:
    """A line for the person watching (stderr; stdout is the listing)."""
    print(f"cacheops: {text}", file=sys.stderr, flush=True)


def merged_batches(
    nodes: list[NodeClient],
    opts,
    stats,
    scan_one: Callable,
    parallel: int = PARALLEL,
    cluster=None,
    read_keys: Callable | None = None,
) -> Iterator:
    """Batches of every node in `nodes`, interleaved. `stats` (a keyspace.ScanStats) gets the sums
    and, in extra["nodes"], each node's name, role, batches and keys. `cluster` (a RedisCluster) turns
    on following failovers and slot migrations; read_keys reads given keys on a node (keyspace.read_keys)."""
    if cluster is not None and read_keys is not None:
        try:
            scan = _ClusterScan(cluster, nodes, opts, stats, scan_one, read_keys)
        except rex.ResponseError:  # CLUSTER NODES refused by the ACL: the scan cannot follow changes
            scan = None
        if scan is not None:
            yield from scan.run(parallel)
            return
    yield from _merged(nodes, opts, stats, scan_one, parallel)


def _merged(nodes: list[NodeClient], opts, stats, scan_one: Callable, parallel: int) -> Iterator:
    """The merge without following topology changes: a lost node stops the scan."""
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
                raise _lost(node, exc, "") from None
            if batch and not isinstance(batch[0], bytes):  # records (a names-only scan's are bytes)
                batch = [r for r in batch if r.type != NOT_SERVED]  # keys being imported: listed by their source
            stats.batches += 1
            stats.keys += len(batch)
            active.append((node, node_stats, stream))
            yield batch
    finally:
        for _node, _stats, stream in active:
            stream.close()  # stops that node's reader thread
    _finish_stats(per_node)


def _lost(node: NodeClient, exc: Exception, why: str) -> ConnectionFailed:
    return ConnectionFailed(
        f"lost {node.role} {node.name} in the middle of the scan ({exc}){why}: the listing is incomplete; "
        "re-run once the cluster is ok again (a promoted replica is then scanned in its place)"
    )


def _finish_stats(per_node: list[dict]) -> None:
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


# -- a cluster scan that follows failovers and slot migrations ------------------------------------

PENDING, OPEN, DONE = "pending", "open", "done"
SEALED = None  # touched[slot] of a slot whose shard had listed all of it before it moved


@dataclass
class _Shard:
    index: int
    node: NodeClient
    slots: list[tuple[int, int]]  # the slots it served at the start
    stats: object
    entry: dict
    stream: Generator | None = None
    state: str = PENDING
    names: dict[int, set[bytes]] = field(default_factory=dict)  # slot -> names listed from it
    tracking: bool = True  # names holds every name listed from it
    resumed: int = 0  # failovers followed


class _ClusterScan:
    def __init__(self, cluster, nodes: list[NodeClient], opts, stats, scan_one: Callable, read_keys: Callable):
        self.cluster, self.opts, self.stats = cluster, opts, stats
        self.scan_one, self.read_keys = scan_one, read_keys
        self.primaries = {node.name: node.client for node in primary_nodes(cluster)}  # polled
        view = poll(list(self.primaries.items()))
        if not view.answered:
            raise ConnectionFailed("no cluster primary answers CLUSTER NODES: cannot scan the cluster")
        self.layout = Shards.at_start(view, [node.shard for node in nodes])
        per_node: list[dict] = []
        stats.extra["nodes"] = per_node
        self.shards = []
        for i, node in enumerate(nodes):
            node_stats = type(stats)()
            entry = {"node": node.name, "role": node.role, "stats": node_stats}
            per_node.append(entry)
            self.shards.append(_Shard(i, node, _ranges(self.layout.slot_shard, i), node_stats, entry))
        self.per_node = per_node
        self.tracked = 0  # names held in shards' and touched slots' sets
        self.touched: dict[int, set[bytes] | None] = {}
        self.last_poll = 0.0
        self._note_moves(view)

    # -- the merge ---------------------------------------------------------------------------------

    def run(self, parallel: int) -> Iterator:
        pending = deque(self.shards)
        active: deque = deque()
        try:
            while pending and len(active) < parallel:
                active.append(self._open(pending.popleft()))
            while active:
                shard = active.popleft()
                try:
                    assert shard.stream is not None
                    batch = next(shard.stream)
                except StopIteration:
                    self._done(shard)
                    if pending:
                        active.append(self._open(pending.popleft()))
                    continue
                except (rex.ConnectionError, rex.TimeoutError) as exc:
                    self._resume(shard, exc)
                    active.append(shard)
                    continue
                active.append(shard)
                if time.monotonic() - self.last_poll >= POLL_SECONDS:
                    self._poll()
                batch = self._keep(shard, batch)
                if batch:
                    self.stats.batches += 1
                    self.stats.keys += len(batch)
                    yield batch
            yield from self._sweep()
        finally:
            for shard in active:
                if shard.stream is not None:
                    shard.stream.close()  # stops that node's reader thread
        _finish_stats(self.per_node)

    def _open(self, shard: _Shard) -> _Shard:
        shard.state = OPEN
        shard.stream = self.scan_one(shard.node.client, self.opts, shard.stats, keep=self._readable(shard))
        return shard

    def _readable(self, shard: _Shard) -> Callable[[list[bytes]], list[bytes]]:
        """The keys the plain path may read on the shard's node: those of slots it served at the start and
        not moving. The node is asked which slots it is moving just before each batch is read: on Redis
        8.0-8.2 a CLIENT NO-TOUCH read of a moving slot's key outside a script crashes the server (a
        script's does not; only the plain path, for servers that refuse scripts, reads this way).
        Replicas hold no migration state, and are not asked."""
        slot_shard, touched = self.layout.slot_shard, self.touched

        def keep(keys: list[bytes]) -> list[bytes]:
            if shard.node.role == "primary":
                for slot in moving_here(shard.node.client):
                    self._touch(slot)
            return [k for k in keys if slot_shard[s := key_slot(k)] == shard.index and s not in touched]

        return keep

    def _keep(self, shard: _Shard, batch: list) -> list:
        """The records of a batch to list: each name once, each key from the shard that served its slot."""
        out = []
        slot_shard, touched = self.layout.slot_shard, self.touched
        for record in batch:
            slot = key_slot(record.key)
            if record.type == NOT_SERVED or slot_shard[slot] != shard.index:
                self._touch(slot)  # a key that came here by a migration: listed where it was, or by the sweep
                continue
            if slot in touched:
                names = touched[slot]
                if names is SEALED or record.key in names:
                    continue
                names.add(record.key)
                self.tracked += 1
                out.append(record)
                continue
            seen = shard.names.get(slot)
            if seen is not None and record.key in seen:
                continue  # listed before a failover (or SCAN returned it twice)
            if shard.tracking:
                if self.tracked >= TRACK_LIMIT:
                    self._stop_tracking(shard)
                else:
                    shard.names.setdefault(slot, set()).add(record.key)
                    self.tracked += 1
            out.append(record)
        return out

    def _stop_tracking(self, shard: _Shard) -> None:
        shard.tracking = False
        if not shard.resumed:  # after a failover the names are still needed to skip those listed before
            self.tracked -= sum(len(names) for names in shard.names.values())
            shard.names = {}

    def _done(self, shard: _Shard) -> None:
        """A shard's stream ended: slots that moved during its scan are touched now, with its names; the
        rest of its slots were listed whole, and its names are let go."""
        _merge_path(self.stats, shard.stats)
        self._poll()
        shard.state = DONE
        self.tracked -= sum(len(names) for names in shard.names.values())
        shard.names = {}
        shard.stream = None

    # -- slot migrations ---------------------------------------------------------------------------

    def _poll(self) -> ClusterView:
        view = poll(list(self.primaries.items()))
        self.last_poll = time.monotonic()
        self._note_moves(view)
        return view

    def _note_moves(self, view: ClusterView) -> None:
        for slot in sorted(self.layout.moved_slots(view)):
            self._touch(slot)

    def _touch(self, slot: int) -> None:
        if slot in self.touched:
            return
        index = self.layout.slot_shard[slot]
        shard = self.shards[index] if index >= 0 else None
        if shard is None or shard.state == PENDING:
            self.touched[slot] = set()  # nothing of it listed yet
        elif shard.state == DONE:
            self.touched[slot] = SEALED
        elif shard.tracking:
            self.touched[slot] = shard.names.pop(slot, set())
        else:
            raise TopologyChanged(
                f"slot {slot} of {shard.node.name} started moving to another node during the scan, and that "
                f"shard has more entries than cacheops remembers ({TRACK_LIMIT:,} names) to list each exactly "
                "once: stopped instead of listing entries twice or not at all; run it again once the "
                "migration is over"
            )

    def _sweep(self) -> Iterator:
        slots = sorted(slot for slot, names in self.touched.items() if names is not SEALED)
        if not slots:
            return
        view = self._poll()
        status(f"slots moved during the scan: listing the rest of {len(slots)} slot(s) from where they are now")
        for slot in slots:
            names = self.touched[slot]
            assert names is not None
            nodes = [(self._client(name), asking) for name, asking in slot_nodes(view, slot)]
            try:
                for batch in sweep_slot(slot, nodes, names, self.opts, self.read_keys):
                    self.stats.batches += 1
                    self.stats.keys += len(batch)
                    yield batch
            except (rex.ConnectionError, rex.TimeoutError) as exc:
                raise ConnectionFailed(
                    f"lost a node while listing migrated slot {slot} ({exc}): the listing is incomplete; run it again"
                ) from None
            self.tracked -= len(names)
            self.touched[slot] = SEALED  # its set is let go

    # -- failovers ---------------------------------------------------------------------------------

    def _resume(self, shard: _Shard, exc: Exception) -> None:
        """Wait for a live primary of the shard's slots, then scan the shard again from the start there."""
        lost = shard.node
        if shard.stream is not None:
            shard.stream.close()
        if not shard.tracking:
            raise _lost(
                lost,
                exc,
                f"; its shard has more entries than cacheops remembers ({TRACK_LIMIT:,} names) to resume elsewhere",
            )
        others = [(name, client) for name, client in self.primaries.items() if name != lost.name]
        wait = 2 * node_timeout_ms(others) / 1000 + FAILOVER_MARGIN_SECONDS
        status(
            f"lost {lost.role} {lost.name} in the middle of the scan; waiting up to {wait:.0f}s for a replica "
            "to take over its slots"
        )
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            view = self._poll()
            line = view.live_primary_for(shard.slots)
            if line is not None and self.layout.members.get(line.node_id) == shard.index:
                client = self._client(line.name)
                try:
                    client.ping()
                except (rex.ConnectionError, rex.TimeoutError):
                    client = None
                if client is not None:
                    listed = sum(len(names) for names in shard.names.values())
                    status(
                        f"{line.name} took over; scanning that shard again from the start "
                        f"({listed:,} entries already listed are skipped)"
                    )
                    self.primaries.pop(lost.name, None)
                    self.primaries[line.name] = client
                    shard.node = NodeClient(line.name, "primary", client, shard.node.shard)
                    shard.entry.update(node=line.name, role="primary", resumed_from=lost.name)
                    shard.resumed += 1
                    self._open(shard)
                    return
            time.sleep(0.25)
        raise _lost(lost, exc, f" and no replica took over its slots within {wait:.0f}s")

    def _client(self, name: str):
        if name in self.primaries:
            return self.primaries[name]
        host, _, port = name.rpartition(":")
        node = self.cluster.get_node(host=host, port=int(port))
        if node is None:
            self.cluster.nodes_manager.initialize(disconnect_startup_nodes_pools=False)
            node = self.cluster.get_node(host=host, port=int(port))
        if node is None:
            raise ConnectionFailed(
                f"cluster node {name} is not in the client's map of the cluster: run the command again"
            )
        return node_client(self.cluster, node)


def _ranges(slot_shard: list[int], index: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for slot, owner in enumerate(slot_shard):
        if owner != index:
            continue
        if out and out[-1][1] == slot - 1:
            out[-1] = (out[-1][0], slot)
        else:
            out.append((slot, slot))
    return out
