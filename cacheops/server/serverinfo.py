"""What the server is and can do: version, modules, memory policy, NO-TOUCH."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis

from .topology import primary_nodes


@dataclass
class ServerInfo:
    version: str
    modules: dict[str, int] = field(default_factory=dict)  # lowercased name -> version number (0: not known)
    # how the modules were learnt: "MODULE LIST" (names and versions); "COMMAND INFO" (MODULE LIST is
    # forbidden by the ACL: presence only, from the modules' commands); "" (neither answered: unknown)
    modules_source: str = "MODULE LIST"
    maxmemory: int = 0
    policy: str = "noeviction"
    no_touch: bool = False
    keyspace_hits: int = 0
    keyspace_misses: int = 0
    used_memory: int = 0
    name: str = ""  # host:port of the node these facts are from
    role: str = "master"
    nodes: list[ServerInfo] = field(default_factory=list)  # Redis Cluster: each primary's own facts

    @property
    def version_tuple(self) -> tuple[int, ...]:
        return tuple(int(p) for p in self.version.split(".")[:3] if p.isdigit())

    @property
    def has_search(self) -> bool:
        return "search" in self.modules or "ft" in self.modules

    @property
    def has_json(self) -> bool:
        return "rejson" in self.modules or "redisjson" in self.modules

    @property
    def lfu(self) -> bool:
        return "lfu" in self.policy


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def server_info(client: redis.Redis) -> ServerInfo:
    """The server's facts. On a Redis Cluster: the first primary's version, modules and policy,
    memory and hit counters summed over the primaries, and each primary's own facts in `nodes`."""
    nodes = primary_nodes(client)
    if len(nodes) == 1:
        return node_info(nodes[0].client, nodes[0].name)
    per_node = [node_info(n.client, n.name) for n in nodes]
    first = per_node[0]
    return ServerInfo(
        version=first.version,
        modules=dict(first.modules),
        modules_source=first.modules_source,
        maxmemory=0 if any(n.maxmemory == 0 for n in per_node) else sum(n.maxmemory for n in per_node),
        policy=first.policy,
        no_touch=all(n.no_touch for n in per_node),
        keyspace_hits=sum(n.keyspace_hits for n in per_node),
        keyspace_misses=sum(n.keyspace_misses for n in per_node),
        used_memory=sum(n.used_memory for n in per_node),
        name=first.name,
        nodes=per_node,
    )


def node_info(client: redis.Redis, name: str = "") -> ServerInfo:
    """One server's facts."""
    info = client.info()
    out = ServerInfo(
        version=_text(info.get("redis_version", "0")),
        keyspace_hits=int(info.get("keyspace_hits", 0)),
        keyspace_misses=int(info.get("keyspace_misses", 0)),
        used_memory=int(info.get("used_memory", 0)),
        maxmemory=int(info.get("maxmemory", 0)),
        policy=_text(info.get("maxmemory_policy", "noeviction")),
        name=name,
        role=_text(info.get("role", "master")),
    )
    try:
        for module in client.execute_command("MODULE", "LIST"):
            if isinstance(module, dict):
                module_name, ver = module.get(b"name", module.get("name")), module.get(b"ver", module.get("ver"))
            else:
                pairs = dict(zip(module[::2], module[1::2]))
                module_name, ver = pairs.get(b"name"), pairs.get(b"ver")
            out.modules[_text(module_name).lower()] = int(ver or 0)
    except redis.ResponseError:
        out.modules_source = _modules_from_commands(client, out.modules)  # MODULE LIST forbidden by the ACL
    try:
        flags = _text(client.execute_command("CLIENT", "INFO"))
        out.no_touch = any(part.startswith("flags=") and "T" in part[6:] for part in flags.split())
    except redis.ResponseError:
        pass
    return out


# A command of each module, by the name MODULE LIST gives the module.
_MODULE_COMMANDS = {"search": "FT.INFO", "rejson": "JSON.GET"}


def _modules_from_commands(client: redis.Redis, modules: dict[str, int]) -> str:
    """The modules whose commands the server knows (COMMAND INFO, allowed to every user who may
    connect), versions unknown; "" if that is refused too."""
    try:
        replies = client.execute_command("COMMAND", "INFO", *_MODULE_COMMANDS.values())
    except redis.ResponseError:
        return ""
    for name, reply in zip(_MODULE_COMMANDS, replies or []):
        if reply:
            modules[name] = 0
    return "COMMAND INFO"
