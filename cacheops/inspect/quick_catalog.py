"""The catalog without reading every value: key shape + TYPE/PTTL/MEMORY USAGE for every key, values for a sample.

Reading and decoding each value costs the server 8-10x what listing the key names costs, and the
client more. But most of a catalog needs no value: a layout's cache_of tells the cache from the key's
shape and type, and TTL and memory come with the key. So one scan reads no values (ScanOptions
limit 0), counts every key by shape, and keeps the first SAMPLE_PER_CACHE keys of each cache; only
those are read and decoded, for the value-derived figures (library, models, vectors, unreachable,
age, infrastructure). A cache no larger than the sample is therefore exact, figure for figure, as
build_catalog; a larger one says so in its `sampled` field. `--full` runs build_catalog instead.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import redis

from ..layouts import Context, Entry, Infrastructure, claim_by_shape
from ..server.keyspace import ScanOptions, ScanStats, iter_batches, read_records
from .catalog import (
    TTL_BUCKETS,
    CacheSummary,
    Catalog,
    EntryFilter,
    UnknownKey,
    add_infrastructure,
    count_unknown,
    decode_record,
    finish_catalog,
    ttl_bucket,
)

SAMPLE_PER_CACHE = 1000
READ_CHUNK = 500


@dataclass(slots=True)
class ClaimedKey:
    """A key a layout claims by its shape (what stats' access sampling needs of an entry)."""

    key: str
    cache: str


@dataclass
class _ByShape:
    kind: str
    keys: int = 0
    bytes: int = 0
    with_ttl: int = 0
    min_ttl_ms: int | None = None
    max_ttl_ms: int | None = None
    ttl_histogram: Counter = field(default_factory=Counter)
    sample: list[bytes] = field(default_factory=list)

    def add(self, memory: int | None, pttl: int) -> None:
        self.keys += 1
        self.bytes += memory or 0
        ttl = None if pttl < 0 else pttl
        self.ttl_histogram[ttl_bucket(ttl)] += 1
        if ttl is not None:
            self.with_ttl += 1
            self.min_ttl_ms = ttl if self.min_ttl_ms is None else min(self.min_ttl_ms, ttl)
            self.max_ttl_ms = ttl if self.max_ttl_ms is None else max(self.max_ttl_ms, ttl)


def quick_catalog(
    client: redis.Redis,
    ctx: Context,
    flt: EntryFilter | None = None,
    on_entry: Callable[[ClaimedKey], None] | None = None,
    server_side: bool | None = None,
    stats: ScanStats | None = None,
    sample: int | None = None,
    on_progress: Callable[[dict[str, tuple[str, int]]], None] | None = None,
) -> Catalog:
    """Every cache with its aggregates from one value-less scan plus a bounded value sample per cache.
    Filters on values (model, text) need every value: use build_catalog for those.
    on_progress(counts), after each scan batch: the keys counted so far per cache by key shape
    (name -> (kind, keys)), so a front end can list the caches long before the pass ends."""
    flt = flt or EntryFilter()
    sample = sample or SAMPLE_PER_CACHE
    started = time.monotonic()
    stats = stats if stats is not None else ScanStats()
    shapes: dict[str, _ByShape] = {}
    unknown_by_prefix: Counter = Counter()
    unknown = 0
    opts = ScanOptions(match=flt.scan_match(None, ctx), limit=0, server_side=server_side)
    for batch in iter_batches(client, opts, stats):
        for rec in batch:
            if rec.type == "none":
                continue
            claim = claim_by_shape(rec)
            if claim is None:
                unknown += 1
                count_unknown(unknown_by_prefix, rec.key_text)
                continue
            layout, cache = claim
            if flt.cache is not None and cache != flt.cache:
                continue
            shape = shapes.get(cache)
            if shape is None:
                shape = shapes[cache] = _ByShape(layout.kind)
            shape.add(rec.memory, rec.pttl)
            if len(shape.sample) < sample:
                shape.sample.append(rec.key)
            if on_entry is not None:
                on_entry(ClaimedKey(rec.key_text, cache))
        if on_progress is not None:
            on_progress({name: (shape.kind, shape.keys) for name, shape in shapes.items()})
    # The samples are decoded exactly as build_catalog decodes every key, into one set of summaries
    # keyed by the cache the value tells (a GPTCache vector hash belongs to its questions' cache).
    summaries: dict[str, CacheSummary] = {}
    for shape in shapes.values():
        unknown_keys = _decode_sample(client, ctx, flt, shape.sample, summaries)
        unknown += len(unknown_keys)
        for key in unknown_keys:
            count_unknown(unknown_by_prefix, key)
    for name, shape in shapes.items():
        rest = shape.keys - len(shape.sample)
        if rest <= 0:
            continue  # every key was read: the figures are exact
        if name not in summaries:  # no sampled key was an entry: the rest are taken as unknown too
            unknown += rest
            unknown_by_prefix[name] += rest
            continue
        _scale(summaries[name], shape, len(shape.sample))
    catalog = finish_catalog(summaries, unknown_by_prefix, unknown, ctx, flt, stats, started)
    catalog.quick = True
    return catalog


def _decode_sample(
    client: redis.Redis, ctx: Context, flt: EntryFilter, keys: list[bytes], summaries: dict
) -> list[str]:
    """Read and decode the sampled keys into the summaries; returns the keys that are unknown."""
    unknown: list[str] = []
    for start in range(0, len(keys), READ_CHUNK):
        for rec in read_records(client, keys[start : start + READ_CHUNK]):
            item = decode_record(rec, ctx, full=False)
            if isinstance(item, Infrastructure):
                add_infrastructure(summaries, item, flt)
                continue
            if isinstance(item, UnknownKey):
                if item.type != "none":  # deleted since the scan: not counted at all
                    unknown.append(item.key)
                continue
            assert isinstance(item, Entry)
            summary = summaries.get(item.cache)
            if summary is None:
                summary = summaries[item.cache] = CacheSummary(item.cache, item.kind, index=item.index)
            summary.add(item)
    return unknown


def _scale(summary: CacheSummary, shape: _ByShape, read: int) -> None:
    """A cache larger than its sample: entries, bytes and TTLs from every key's shape; entries and
    infrastructure split by the sample's proportions; the value-derived figures stay the sample's."""
    seen_entries = summary.entries
    seen_infra = sum(summary.infrastructure.values())
    share = seen_entries / read if read else 1.0
    summary.sampled = {
        "keys": read,
        "of": shape.keys,
        "figures": ["libraries", "models", "vector", "vector_mismatches", "oldest", "newest", "unreachable"],
    }
    summary.entries = round(shape.keys * share)
    if seen_infra and read:
        scale = shape.keys / read
        summary.infrastructure = Counter({role: round(n * scale) for role, n in summary.infrastructure.items()})
        summary.infrastructure_bytes = round(summary.infrastructure_bytes * scale)
    summary.bytes = shape.bytes - summary.infrastructure_bytes if share < 1 else shape.bytes
    summary.with_ttl = shape.with_ttl
    summary.min_ttl_ms, summary.max_ttl_ms = shape.min_ttl_ms, shape.max_ttl_ms
    summary.ttl_histogram = Counter({name: shape.ttl_histogram.get(name, 0) for name, _ in TTL_BUCKETS})
    if share < 1:
        summary.notes.append(
            f"{read - seen_entries} of {read} sampled keys of this cache's key shape are not entries: "
            f"entries estimated from that share; `--full` counts exactly"
        )
