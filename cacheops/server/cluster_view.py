"""What a Redis Cluster looks like right now, as the scan needs to know it while it runs: which shard
serves each slot, which slots are being migrated, and whether a failed primary's slots have a live
new primary. Read with CLUSTER NODES from the primaries (each node reports its own MIGRATING and
IMPORTING slots only on its own line, so every primary is asked).

Shards are named by their primary's node id at the start of the scan; a replica promoted in a
failover stays in its shard (its node id was the shard's replica), so a failover is not taken for a
slot migration.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import redis
from redis import exceptions as rex

from ..errors import TopologyChanged
from .serverinfo import node_info
from .topology import SLOTS, is_cluster, primary_nodes

DEFAULT_NODE_TIMEOUT_MS = 15000  # Redis' default cluster-node-timeout


@dataclass
class NodeLine:
    """One line of CLUSTER NODES."""

    node_id: str
    name: str  # host:port
    flags: str
    master_id: str  # '-' for a primary
    slots: list[tuple[int, int]]

    @property
    def is_primary(self) -> bool:
        return "master" in self.flags.split(",")

    @property
    def failing(self) -> bool:
        return any(flag in ("fail", "fail?", "handshake", "noaddr") for flag in self.flags.split(","))


@dataclass
class ClusterView:
    """One poll: every node line each primary reported, and the migrations each reported of itself."""

    lines: list[NodeLine] = field(default_factory=list)
    migrating: dict[int, str] = field(default_factory=dict)  # slot -> the name of the node moving it out
    importing: dict[int, str] = field(default_factory=dict)  # slot -> the name of the node taking it in
    answered: list[str] = field(default_factory=list)  # names of the nodes that answered

    def claims(self) -> dict[int, set[str]]:
        """slot -> node ids that some answering node sees as its primary (usually one)."""
        out: dict[int, set[str]] = {}
        for line in self.lines:
            if line.is_primary:
                for first, last in line.slots:
                    for slot in range(first, last + 1):
                        out.setdefault(slot, set()).add(line.node_id)
        return out

    def live_primary_for(self, slots: list[tuple[int, int]]) -> NodeLine | None:
        """The primary that serves all of `slots` and is not flagged failing, as the answering nodes see it."""
        wanted: set[int] = set()
        for first, last in slots:
            wanted.update(range(first, last + 1))
        for line in self.lines:
            if not line.is_primary or line.failing:
                continue
            served: set[int] = set()
            for first, last in line.slots:
                served.update(range(first, last + 1))
            if wanted <= served:
                return line
        return None


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _slot_ranges(raw) -> list[tuple[int, int]]:
    out = []
    for item in raw or []:
        parts = [int(_text(p)) for p in item] if isinstance(item, (list, tuple)) else [int(_text(item))]
        out.append((parts[0], parts[-1]))
    return out


def poll(nodes: list[tuple[str, redis.Redis]]) -> ClusterView:
    """CLUSTER NODES of every (name, client) that answers; the others are skipped (a dead primary)."""
    view = ClusterView()
    seen: set[str] = set()
    for name, client in nodes:
        try:
            reply = client.execute_command("CLUSTER", "NODES")
        except (rex.ConnectionError, rex.TimeoutError):
            continue
        view.answered.append(name)
        for line, migrations in _parse_nodes(reply):
            mine = "myself" in line.flags.split(",")
            if line.node_id in seen and not mine:
                continue
            seen.add(line.node_id)
            view.lines.append(line)
            for slot, state in migrations if mine else ():
                (view.migrating if state == "migrating" else view.importing)[slot] = line.name
    return view


def moving_here(client: redis.Redis) -> set[int]:
    """The slots this node is migrating or importing right now (its own line of CLUSTER NODES)."""
    out: set[int] = set()
    for line, migrations in _parse_nodes(client.execute_command("CLUSTER", "NODES")):
        if "myself" in line.flags.split(","):
            out.update(slot for slot, _state in migrations)
    return out


# Redis 8.0-8.2 crash on a command from a CLIENT NO-TOUCH connection on a key of a slot the node is
# migrating or importing (a NULL dereference in lookupKey; redis/redis#14415 fixed it on another
# path). Reads inside a script do not crash; plain single-key reads do.
NO_TOUCH_CRASH_VERSIONS = {(8, 0), (8, 1), (8, 2)}


def refuse_moving_keys(client, keys: list[bytes]) -> None:
    """Before plain reads of `keys` on a cluster whose servers crash on a NO-TOUCH read of a moving
    slot's key: stop (TopologyChanged) if any key is in a slot some primary is migrating or
    importing. Costs one CLUSTER NODES per primary, asked only on those versions."""
    if not keys or not is_cluster(client) or not _crashes_on_moving_keys(client):
        return
    moving: set[int] = set()
    for node in primary_nodes(client):
        moving |= moving_here(node.client)
    if not moving:
        return
    hit = sorted({client.keyslot(key) for key in keys} & moving)
    if hit:
        raise TopologyChanged(
            f"hash slot {hit[0]} is being migrated (resharding): on Redis 8.0-8.2 a read of its keys "
            "from a CLIENT NO-TOUCH connection crashes the node, so cacheops does not read them; "
            "run it again once the migration is over"
        )


def _crashes_on_moving_keys(client) -> bool:
    known = getattr(client, "cacheops_no_touch_crash", None)
    if known is None:
        known = node_info(primary_nodes(client)[0].client).version_tuple[:2] in NO_TOUCH_CRASH_VERSIONS
        client.cacheops_no_touch_crash = known
    return known


def _parse_nodes(reply) -> list[tuple[NodeLine, list[tuple[int, str]]]]:
    """CLUSTER NODES as (line, [(slot, "migrating" | "importing")]): the text reply, or redis-py's
    parsed dict where the client's callbacks parse it."""
    out = []
    if isinstance(reply, dict):
        for address, info in reply.items():
            migrations = [(int(_text(m["slot"])), _text(m["state"])) for m in info.get("migrations") or []]
            line = NodeLine(
                _text(info.get("node_id", "")),
                _text(address),
                _text(info.get("flags", "")),
                _text(info.get("master_id", "-")),
                _slot_ranges(info.get("slots")),
            )
            out.append((line, migrations))
        return out
    for text in _text(reply).splitlines():
        fields = text.split()
        if len(fields) < 8:
            continue
        slots, migrations = [], []
        for item in fields[8:]:
            if item.startswith("["):  # [slot->-id] migrating, [slot-<-id] importing
                slot, arrow = item[1:].split("-", 1)
                migrations.append((int(slot), "migrating" if arrow.startswith(">") else "importing"))
            else:
                first, _, last = item.partition("-")
                slots.append((int(first), int(last or first)))
        address = fields[1].split("@", 1)[0]
        out.append((NodeLine(fields[0], address, fields[2], fields[3], slots), migrations))
    return out


def node_timeout_ms(nodes: list[tuple[str, redis.Redis]]) -> int:
    """cluster-node-timeout of the first node that tells it (CONFIG GET may be refused by the ACL)."""
    for _name, client in nodes:
        try:
            reply = client.config_get("cluster-node-timeout")
        except rex.RedisError:
            continue
        for key, value in reply.items():
            if _text(key) == "cluster-node-timeout":
                return int(_text(value))
    return DEFAULT_NODE_TIMEOUT_MS


@dataclass
class Shards:
    """The shards at the start of a scan: slot -> shard index, and which node ids belong to which shard."""

    slot_shard: list[int]  # SLOTS entries; -1 for a slot no shard served at the start
    members: dict[str, int]  # node id -> shard index (its primary and replicas at the start)

    @classmethod
    def at_start(cls, view: ClusterView, primaries: list[str]) -> Shards:
        """`primaries`: the shards' primary names in the scan's order (index = shard index)."""
        slot_shard = [-1] * SLOTS
        members: dict[str, int] = {}
        index_of = {name: i for i, name in enumerate(primaries)}
        ids = {}
        for line in view.lines:
            if line.name in index_of and line.is_primary:
                members[line.node_id] = index_of[line.name]
                ids[line.node_id] = index_of[line.name]
                for first, last in line.slots:
                    for slot in range(first, last + 1):
                        slot_shard[slot] = index_of[line.name]
        for line in view.lines:
            if line.master_id in ids:
                members[line.node_id] = ids[line.master_id]
        return cls(slot_shard, members)

    def moved_slots(self, view: ClusterView) -> set[int]:
        """Slots whose migration shows in `view`, or that some node sees served by another shard than at
        the start (a migration finished; a promoted replica is the same shard, not a move)."""
        moved = set(view.migrating) | set(view.importing)
        for slot, owners in view.claims().items():
            start = self.slot_shard[slot]
            if any(self.members.get(owner, -2) != start for owner in owners):
                moved.add(slot)
        return moved
