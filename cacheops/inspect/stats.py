"""Per-cache statistics plus what the server knows about access: hits, misses, idle time or LFU."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import redis

from ..layouts import Context, Entry
from ..server.serverinfo import ServerInfo, server_info
from .catalog import Catalog, EntryFilter, build_catalog
from .quick_catalog import quick_catalog

ACCESS_SAMPLE_MAX = 100_000  # entries whose OBJECT FREQ / IDLETIME is read (flat cost on big caches)
IDLE_BUCKETS = (("<1m", 60), ("<1h", 3600), ("<1d", 86400), (">=1d", float("inf")))
FREQ_BUCKETS = (("0", 1), ("1-4", 5), ("5-15", 16), ("16-63", 64), (">=64", float("inf")))


@dataclass
class AccessStats:
    """OBJECT FREQ (LFU policies) or OBJECT IDLETIME (otherwise), per cache, as histograms."""

    measure: str  # "lfu_frequency" or "idle_seconds"
    per_cache: dict[str, Counter] = field(default_factory=dict)
    sampled: int = 0

    def to_dict(self) -> dict:
        return {
            "measure": self.measure,
            "sampled": self.sampled,
            "per_cache": {k: dict(v) for k, v in self.per_cache.items()},
        }


@dataclass
class StatsReport:
    server: ServerInfo
    catalog: Catalog
    access: AccessStats

    @property
    def hit_ratio(self) -> float | None:
        total = self.server.keyspace_hits + self.server.keyspace_misses
        return self.server.keyspace_hits / total if total else None

    def to_dict(self) -> dict:
        s = self.server
        return {
            "server": {
                "version": s.version,
                "maxmemory": s.maxmemory,
                "maxmemory_policy": s.policy,
                "used_memory": s.used_memory,
                "keyspace_hits": s.keyspace_hits,
                "keyspace_misses": s.keyspace_misses,
                "hit_ratio": self.hit_ratio,
                "hit_ratio_scope": "whole server (INFO stats), not only caches",
                "no_touch": s.no_touch,
            },
            **self.catalog.to_dict(),
            "access": self.access.to_dict(),
        }


def _bucket(value: float, buckets) -> str:
    for name, bound in buckets:
        if value < bound:
            return name
    return buckets[-1][0]


def collect_stats(
    client: redis.Redis, ctx: Context, flt: EntryFilter | None = None, scan_stats=None, full: bool = True
) -> StatsReport:
    """full=False: the quick catalog (key names for every key, values for a sample per group of like
    names); the access histograms then cover the sampled entries only."""
    info = server_info(client)
    access = AccessStats("lfu_frequency" if info.lfu else "idle_seconds")
    pending: list[Entry] = []

    def flush():
        pipe = client.pipeline(transaction=False)
        for e in pending:
            pipe.execute_command("OBJECT", "FREQ" if info.lfu else "IDLETIME", e.key.encode())
        for e, value in zip(pending, pipe.execute(raise_on_error=False)):
            if isinstance(value, int):
                buckets = FREQ_BUCKETS if info.lfu else IDLE_BUCKETS
                access.per_cache.setdefault(e.cache, Counter())[_bucket(value, buckets)] += 1
                access.sampled += 1
        pending.clear()

    def on_entry(entry: Entry):
        if access.sampled + len(pending) < ACCESS_SAMPLE_MAX:
            pending.append(entry)
            if len(pending) >= 1000:
                flush()

    if full or (flt is not None and (flt.model or flt.text)):
        catalog = build_catalog(client, ctx, flt, on_entry=on_entry, stats=scan_stats)
    else:
        catalog = quick_catalog(client, ctx, flt, on_entry=on_entry, stats=scan_stats)
    flush()
    return StatsReport(info, catalog, access)
