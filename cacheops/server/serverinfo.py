"""What the server is and can do: version, modules, memory policy, NO-TOUCH."""

from __future__ import annotations

from dataclasses import dataclass, field

import redis


@dataclass
class ServerInfo:
    version: str
    modules: dict[str, int] = field(default_factory=dict)  # lowercased name -> version number
    maxmemory: int = 0
    policy: str = "noeviction"
    no_touch: bool = False
    keyspace_hits: int = 0
    keyspace_misses: int = 0
    used_memory: int = 0

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
    info = client.info()
    out = ServerInfo(
        version=_text(info.get("redis_version", "0")),
        keyspace_hits=int(info.get("keyspace_hits", 0)),
        keyspace_misses=int(info.get("keyspace_misses", 0)),
        used_memory=int(info.get("used_memory", 0)),
        maxmemory=int(info.get("maxmemory", 0)),
        policy=_text(info.get("maxmemory_policy", "noeviction")),
    )
    try:
        for module in client.execute_command("MODULE", "LIST"):
            if isinstance(module, dict):
                name, ver = module.get(b"name", module.get("name")), module.get(b"ver", module.get("ver"))
            else:
                pairs = dict(zip(module[::2], module[1::2]))
                name, ver = pairs.get(b"name"), pairs.get(b"ver")
            out.modules[_text(name).lower()] = int(ver or 0)
    except redis.ResponseError:
        pass  # MODULE LIST may be forbidden by ACL; modules then show as unknown
    try:
        flags = _text(client.execute_command("CLIENT", "INFO"))
        out.no_touch = any(part.startswith("flags=") and "T" in part[6:] for part in flags.split())
    except redis.ResponseError:
        pass
    return out
