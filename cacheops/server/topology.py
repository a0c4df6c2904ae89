"""Where a client's data lives: one server, the shards of a Redis Cluster, or the primary (and
replicas) a Sentinel names. connection.py attaches a Topology to every client it builds; the scan
engine, index listing and server facts ask here which node clients to fan out to, so nothing else
needs to know which kind of deployment it talks to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.sentinel import Sentinel

from ..errors import NotOnCluster

SINGLE, CLUSTER, SENTINEL = "single", "cluster", "sentinel"
SLOTS = 16384  # hash slots of a Redis Cluster


@dataclass
class Topology:
    kind: str = SINGLE
    read_from_replicas: bool = False  # inspection scans read replicas where there are any
    service: str | None = None  # Sentinel service name
    replica_client: redis.Redis | None = field(default=None, repr=False)  # Sentinel: a replica
    sentinel: Sentinel | None = field(default=None, repr=False)  # Sentinel: the sentinels' client
    connect_node: Callable[[str, int], redis.Redis] | None = field(default=None, repr=False)  # same auth/TLS


@dataclass
class NodeClient:
    """One server to send a keyless command to (SCAN, INFO, FT._LIST), with a plain client for it."""

    name: str  # host:port
    role: str  # "primary" or "replica"
    client: redis.Redis = field(repr=False)
    shard: str = ""  # the name of the primary whose slots it serves (cluster)


@dataclass
class Shard:
    primary: ClusterNode
    replicas: list[ClusterNode]
    slots: list[tuple[int, int]]  # inclusive ranges


def refuse_on_cluster(client, what: str, because: str = "") -> None:
    """Commands whose cluster support is not built yet stop before doing anything (NotOnCluster)."""
    if is_cluster(client):
        raise NotOnCluster(
            f"{what} does not run on a Redis Cluster yet{f' ({because})' if because else ''}: nothing was changed "
            "(caches, scan, show, stats, doctor, tag, history, warm, evict, restore, expire, hits, audit and "
            "migrate-embeddings do; see docs/cluster.md)"
        )


def attach_topology(client, topology: Topology):
    client.cacheops_topology = topology
    return client


def topology(client) -> Topology:
    found = getattr(client, "cacheops_topology", None)
    if found is not None:
        return found
    return Topology(CLUSTER) if isinstance(client, RedisCluster) else Topology()


def is_cluster(client) -> bool:
    return isinstance(client, RedisCluster)


def shards(client: RedisCluster) -> list[Shard]:
    """The cluster's shards as the client's slot map has them, in slot order."""
    by_primary: dict[str, Shard] = {}
    previous = None
    for slot in sorted(client.nodes_manager.slots_cache):
        owners = client.nodes_manager.slots_cache[slot]
        primary = owners[0]
        shard = by_primary.setdefault(primary.name, Shard(primary, list(owners[1:]), []))
        if previous is not None and previous[0] is shard and previous[1] == slot - 1:
            shard.slots[-1] = (shard.slots[-1][0], slot)
        else:
            shard.slots.append((slot, slot))
        previous = (shard, slot)
    return list(by_primary.values())


def node_client(client: RedisCluster, node: ClusterNode) -> redis.Redis:
    """A plain client of one cluster node (its connections run the cluster client's setup:
    CLIENT NO-TOUCH and READONLY)."""
    return client.get_redis_connection(node)


def scan_nodes(client) -> list[NodeClient]:
    """The servers that together hold every key once: each shard's primary (or, with
    read_from_replicas, one of its replicas where it has any); on one server, that server."""
    topo = topology(client)
    if is_cluster(client):
        out = []
        for shard in shards(client):
            node = shard.replicas[0] if topo.read_from_replicas and shard.replicas else shard.primary
            role = "replica" if node is not shard.primary else "primary"
            out.append(NodeClient(node.name, role, node_client(client, node), shard.primary.name))
        return out
    if topo.kind == SENTINEL and topo.read_from_replicas and topo.replica_client is not None:
        return [NodeClient(f"{topo.service} replica", "replica", topo.replica_client)]
    return [NodeClient(_name(client), "primary", client)]


def slot_owner(client, key: str | bytes) -> NodeClient:
    """The primary whose hash slot `key` (or an index name: FT.CREATE lands there without a search
    coordinator) belongs to; on one server, that server."""
    if is_cluster(client):
        node = client.get_node_from_key(key)
        return NodeClient(node.name, "primary", node_client(client, node), node.name)
    return NodeClient(_name(client), "primary", client)


def primary_nodes(client) -> list[NodeClient]:
    """Every primary: where indexes are listed and server facts read."""
    if is_cluster(client):
        return [
            NodeClient(s.primary.name, "primary", node_client(client, s.primary), s.primary.name)
            for s in shards(client)
        ]
    return [NodeClient(_name(client), "primary", client)]


def key_count(client) -> int:
    """DBSIZE of the whole deployment: every primary's, summed (replicas hold copies)."""
    return sum(int(node.client.dbsize()) for node in primary_nodes(client))


def _name(client: redis.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return str(kwargs["path"])
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"


# -- facts about a cluster, for doctor -----------------------------------------------------------


def cluster_state(client: RedisCluster) -> dict[str, str]:
    """CLUSTER INFO of the first primary as {field: value}."""
    node = primary_nodes(client)[0]
    text = node.client.execute_command("CLUSTER", "INFO")
    text = text.decode() if isinstance(text, bytes) else str(text)
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def replication(node: redis.Redis) -> dict:
    """INFO replication of one node (role, master_link_status, offsets)."""
    return node.info("replication")


def has_search_coordinator(node: redis.Redis) -> bool:
    """Whether the search module fans queries out to every shard. A coordinator build registers the
    shard-local `_FT.SEARCH` beside `FT.SEARCH` (its FT.SEARCH is the distributed one); the
    redis-stack 7.4 module has no such command, so its indexes each cover one shard."""
    try:
        return bool(node.command_list(pattern="_FT.SEARCH"))
    except redis.ResponseError:
        return False


def search_fans_out(client) -> bool:
    """Whether one FT.SEARCH sees every document of an index: on one server always; on a Redis
    Cluster only where the search module has a coordinator. Without one (redis-stack 7.4), an index
    lives on the node owning its name's slot and covers that node's documents only, so cacheops'
    own KNN work reads the stored vectors of every shard instead (semantic/vectorscan.py)."""
    return not is_cluster(client) or has_search_coordinator(primary_nodes(client)[0].client)


# -- facts about a Sentinel setup, for doctor -----------------------------------------------------


@dataclass
class SentinelView:
    service: str
    answers: list[tuple[str, dict | Exception]]  # each sentinel: SENTINEL MASTER <service>, or why not
    replicas: list[tuple[str, dict | Exception]]  # each replica the sentinels list: INFO replication


def sentinel_view(client) -> SentinelView | None:
    """What every sentinel says about the service, and each replica's own replication state."""
    topo = topology(client)
    if topo.kind != SENTINEL or topo.sentinel is None:
        return None
    answers: list = []
    for sentinel in topo.sentinel.sentinels:
        kwargs = sentinel.connection_pool.connection_kwargs
        name = f"{kwargs.get('host')}:{kwargs.get('port')}"
        try:
            answers.append((name, sentinel.sentinel_master(topo.service)))
        except redis.RedisError as exc:
            answers.append((name, exc))
    replicas: list = []
    try:
        addresses = topo.sentinel.discover_slaves(topo.service)
    except redis.RedisError:
        addresses = []
    for host, port in addresses:
        try:
            assert topo.connect_node is not None  # set for a Sentinel topology
            node = topo.connect_node(host, port)
            replicas.append((f"{host}:{port}", node.info("replication")))
            node.close()
        except redis.RedisError as exc:
            replicas.append((f"{host}:{port}", exc))
    return SentinelView(topo.service or "", answers, replicas)
