"""Semantic hits of an app that does not track them, counted from keyspace events.

RedisVL SemanticCache.check() (and so langchain-redis RedisSemanticCache.lookup()) EXPIREs each
matched entry when the cache has a TTL, so every hit leaves an `expire` keyspace event on the
server. A write (store()) leaves one too, right after its `hset`: an `expire` of a key that was
`hset` within WRITE_WINDOW seconds is counted as a write, not a hit. Source label: "events".

Needs the server's notify-keyspace-events to include E (keyevent channels), g (generic commands:
expire) and h (hash commands: hset). Caches without a TTL leave no event per hit: nothing to count.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import redis

from ..errors import EventsDisabled, PermissionDenied
from ..layouts import Context
from ..server.topology import primary_nodes

NEEDED_FLAGS = "Egh"
WRITE_WINDOW = 1.0  # seconds between a store()'s HSET and its EXPIRE
_ENTRY_RE = re.compile(r"^(?P<prefix>.+):[0-9a-f]{64}$")


def missing_flags(setting: str) -> str:
    """The flags of NEEDED_FLAGS that `setting` (notify-keyspace-events) lacks; 'A' means every
    class but keyspace/keyevent and m/n."""
    have = set(setting)
    if "A" in have:
        have |= set("g$lshzxetd")
    return "".join(f for f in NEEDED_FLAGS if f not in have)


def events_setting(client: redis.Redis) -> str:
    try:
        reply: dict = client.config_get("notify-keyspace-events")
    except redis.ResponseError as exc:
        raise PermissionDenied(
            f"cannot read notify-keyspace-events (CONFIG GET refused: {exc}); ask for it to include {NEEDED_FLAGS}"
        ) from None
    value = reply.get("notify-keyspace-events") or reply.get(b"notify-keyspace-events") or ""
    return value.decode() if isinstance(value, bytes) else value


@dataclass
class HitCounts:
    source: str = "events (keyspace expire events of RedisVL check(), caches with a TTL)"
    hits: Counter = field(default_factory=Counter)  # entry key -> hits
    per_cache: Counter = field(default_factory=Counter)
    writes: int = 0
    seconds: float = 0.0

    def to_dict(self, top: int = 20) -> dict:
        return {
            "source": self.source,
            "seconds": round(self.seconds, 3),
            "hits": sum(self.hits.values()),
            "writes": self.writes,
            "per_cache": dict(self.per_cache.most_common()),
            "top_entries": [{"key": k, "hits": n} for k, n in self.hits.most_common(top)],
        }


def semantic_prefixes(ctx: Context) -> set[str]:
    """Key prefixes of the HASH indexes with a vector field: the semantic caches' entries."""
    return {p.rstrip(":") for idx in ctx.indexes if idx.key_type == "HASH" and idx.vectors for p in idx.prefixes}


def follow_hits(
    client: redis.Redis,
    ctx: Context,
    cache: str | None = None,
    duration: float | None = None,
    on_hit: Callable[[str, str, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> HitCounts:
    """Count semantic hits live until `duration` seconds pass (None: until should_stop or Ctrl-C).
    on_hit(cache, key, at) is called per hit. Raises EventsDisabled when the server does not publish
    the events."""
    # keyspace events are published on the node whose key changed: a cluster is followed on every
    # primary, one subscription each
    nodes = [node.client for node in primary_nodes(client)]
    lacking = {flag for node in nodes for flag in missing_flags(events_setting(node))}
    missing = "".join(f for f in NEEDED_FLAGS if f in lacking)
    if missing:
        raise EventsDisabled(
            f"the server does not publish the keyspace events this needs (notify-keyspace-events lacks "
            f"{missing!r}; it needs {NEEDED_FLAGS!r}): run `CONFIG SET notify-keyspace-events {NEEDED_FLAGS}` "
            f"or rerun with --enable-events"
        )
    pool = getattr(client, "connection_pool", None)  # a cluster has db 0 only, and no single pool
    db = (pool.connection_kwargs.get("db", 0) if pool is not None else 0) or 0
    prefixes = semantic_prefixes(ctx)
    counts = HitCounts()
    recent_writes: dict[str, float] = {}
    subscriptions = []
    for node in nodes:
        pubsub = node.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(f"__keyevent@{db}__:expire", f"__keyevent@{db}__:hset")
        subscriptions.append(pubsub)
    wait = 0.2 / len(subscriptions)
    started = time.monotonic()
    try:
        while True:
            now = time.monotonic()
            if (duration is not None and now - started >= duration) or (should_stop and should_stop()):
                break
            for pubsub in subscriptions:
                message = pubsub.get_message(timeout=wait)
                if message is None:
                    continue
                channel = message["channel"].decode() if isinstance(message["channel"], bytes) else message["channel"]
                data = message["data"]
                key = data.decode("utf-8", "backslashreplace") if isinstance(data, bytes) else str(data)
                now = time.monotonic()
                if channel.endswith(":hset"):
                    recent_writes[key] = now
                    if len(recent_writes) > 10_000:
                        cutoff = now - WRITE_WINDOW
                        recent_writes = {k: t for k, t in recent_writes.items() if t >= cutoff}
                    continue
                written = recent_writes.pop(key, None)
                if written is not None and now - written <= WRITE_WINDOW:
                    counts.writes += 1
                    continue
                found = _ENTRY_RE.match(key)
                if not found or found["prefix"] not in prefixes:
                    continue
                name = found["prefix"]
                if cache is not None and name != cache:
                    continue
                counts.hits[key] += 1
                counts.per_cache[name] += 1
                if on_hit:
                    on_hit(name, key, time.time())
    finally:
        counts.seconds = time.monotonic() - started
        for pubsub in subscriptions:
            pubsub.close()
    return counts
