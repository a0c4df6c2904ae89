"""The catalog from key names plus a value sample: no per-key command for most keys.

Listing key names is what `redis-cli --scan` does; reading each key's TYPE, TTL, size and value
costs the server 10x that and the client more. Most of a catalog needs none of it per key: the
layouts tell from a key's name alone which caches could hold it (layouts.NameShapes), so one
names-only scan (SCAN COUNT 5000, nothing else) counts every key into a group per candidate cache
set, and only the first SAMPLE_PER_CACHE keys of each group are read (TYPE, PTTL, MEMORY USAGE,
value) and decoded exactly as build_catalog decodes every key. A group no larger than its sample is
therefore exact, figure for figure; a larger one's figures are the sample's scaled to the group
(estimate = sample mean x count), and its cache says so in `sampled`. Names no layout could claim
are unknown keys, counted exactly without being read. `--full` runs build_catalog instead.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import redis

from ..layouts import Context, Entry, Infrastructure, NameShapes
from ..server.keyspace import ScanStats, iter_key_names, read_records
from .catalog import (
    CacheSummary,
    Catalog,
    EntryFilter,
    UnknownKey,
    add_infrastructure,
    count_unknown,
    decode_record,
    finish_catalog,
)

SAMPLE_PER_CACHE = 1000
READ_CHUNK = 500
# Figures scaled from the sample to the group (estimates), and figures that stay the sample's own
# counts (shares: the render shows them as percentages).
ESTIMATED = ["entries", "bytes", "ttl_histogram", "ttl_policy", "unreachable", "vector_mismatches", "infrastructure"]
SAMPLE_FIGURES = ["libraries", "models", "vector", "oldest", "newest"]


@dataclass
class _Group:
    """Keys whose names the same caches could claim: counted whole, read up to the sample."""

    caches: tuple[str, ...]
    keys: int = 0
    sample: list[bytes] = field(default_factory=list)


def quick_catalog(
    client: redis.Redis,
    ctx: Context,
    flt: EntryFilter | None = None,
    on_entry: Callable[[Entry], None] | None = None,
    server_side: bool | None = None,
    stats: ScanStats | None = None,
    sample: int | None = None,
    on_progress: Callable[[dict[str, tuple[str, int]]], None] | None = None,
) -> Catalog:
    """Every cache with its aggregates from one names-only scan plus a bounded value sample per
    group of like-named keys. on_entry sees the sampled entries (stats reads their access figures).
    Filters on values (model, text) need every value: use build_catalog for those. server_side is
    accepted for build_catalog's signature: the names-only scan runs no script.
    on_progress(counts), after each scan batch: the keys counted so far per cache by name
    (name -> (kind, keys); a group several caches could claim counts for none yet), so a front end
    can list the caches long before the pass ends."""
    flt = flt or EntryFilter()
    sample = sample or SAMPLE_PER_CACHE
    started = time.monotonic()
    stats = stats if stats is not None else ScanStats()
    shapes = NameShapes()
    caches_of = shapes.caches_of
    groups: dict[tuple[str, ...], _Group] = {}
    unknown_by_prefix: Counter = Counter()
    unknown = 0
    wanted = flt.cache
    for keys in iter_key_names(client, flt.scan_match(None, ctx), stats):
        for key in keys:
            caches = caches_of(key)
            group = groups.get(caches)
            if group is None:
                if not caches:
                    unknown += 1
                    count_unknown(unknown_by_prefix, key.decode("utf-8", "backslashreplace"))
                    continue
                if wanted is not None and wanted not in caches:
                    continue
                group = groups[caches] = _Group(caches)
            group.keys += 1
            if len(group.sample) < sample:
                group.sample.append(key)
        if on_progress is not None:
            on_progress(_running_counts(groups, shapes))
    groups.pop((), None)
    summaries: dict[str, CacheSummary] = {}
    coverage: dict[str, list[int]] = {}  # cache -> [keys read, keys of its groups, groups sampled]
    for group in groups.values():
        unknown += _read_group(client, ctx, flt, group, summaries, unknown_by_prefix, on_entry, coverage)
    for name, (read, of, partly) in coverage.items():
        if partly and name in summaries:
            summaries[name].sampled = {
                "keys": read,
                "of": of,
                "estimated": list(ESTIMATED),
                "figures": list(SAMPLE_FIGURES),
            }
    catalog = finish_catalog(summaries, unknown_by_prefix, unknown, ctx, flt, stats, started)
    catalog.quick = True
    return catalog


def _running_counts(groups: dict[tuple[str, ...], _Group], shapes: NameShapes) -> dict[str, tuple[str, int]]:
    counts: dict[str, tuple[str, int]] = {}
    for caches, group in groups.items():
        if len(caches) == 1:
            (name,) = caches
            kind, keys = counts.get(name, (shapes.kind_of(name), 0))
            counts[name] = (kind, keys + group.keys)
    return counts


def _read_group(
    client: redis.Redis,
    ctx: Context,
    flt: EntryFilter,
    group: _Group,
    summaries: dict[str, CacheSummary],
    unknown_by_prefix: Counter,
    on_entry: Callable[[Entry], None] | None,
    coverage: dict[str, list[int]],
) -> int:
    """Read and decode the group's sample into its own summaries, scale them to the group and add
    them to `summaries`; returns the unknown keys (estimated likewise), already counted by prefix."""
    read = len(group.sample)
    scale = group.keys / read if group.keys > read else 1.0
    partial: dict[str, CacheSummary] = {}
    unknown_keys: list[str] = []
    for start in range(0, read, READ_CHUNK):
        for rec in read_records(client, group.sample[start : start + READ_CHUNK]):
            item = decode_record(rec, ctx, full=False)
            if isinstance(item, Infrastructure):
                add_infrastructure(partial, item, flt)
            elif isinstance(item, UnknownKey):
                if item.type != "none":  # deleted since the scan: not counted at all
                    unknown_keys.append(item.key)
            elif flt.accepts(item):
                summary = partial.get(item.cache)
                if summary is None:
                    summary = partial[item.cache] = CacheSummary(item.cache, item.kind, index=item.index)
                summary.add(item)
                if on_entry is not None:
                    on_entry(item)
    group.sample = []
    for name, part in partial.items():
        seen = coverage.setdefault(name, [0, 0, 0])
        seen[0] += read
        seen[1] += group.keys
        if scale > 1:
            seen[2] = 1
            _scale(part, scale)
        merged = summaries.get(name)
        if merged is None:
            summaries[name] = part
        else:
            _merge(merged, part)
    estimated: Counter[str] = Counter()
    for key in unknown_keys:
        count_unknown(estimated, key)
    for prefix, n in estimated.items():
        unknown_by_prefix[prefix] += round(n * scale)
    return round(len(unknown_keys) * scale)


def _times(counts: Counter, scale: float) -> Counter:
    return Counter({k: round(n * scale) for k, n in counts.items()})


def _scale(summary: CacheSummary, scale: float) -> None:
    """A group larger than its sample: the additive figures scaled to the group (estimates); the
    value-derived shares (models, libraries, vectors) and extremes stay the sample's."""
    summary.entries = round(summary.entries * scale)
    summary.bytes = round(summary.bytes * scale)
    summary.with_ttl = round(summary.with_ttl * scale)
    summary.ttl_histogram = _times(summary.ttl_histogram, scale)
    summary.unreachable = _times(summary.unreachable, scale)
    summary.unreachable_bytes = _times(summary.unreachable_bytes, scale)
    summary.vector_mismatches = round(summary.vector_mismatches * scale)
    summary.infrastructure = _times(summary.infrastructure, scale)
    summary.infrastructure_bytes = round(summary.infrastructure_bytes * scale)


def _lower(a, b):
    return b if a is None else a if b is None else min(a, b)


def _higher(a, b):
    return b if a is None else a if b is None else max(a, b)


def _merge(into: CacheSummary, part: CacheSummary) -> None:
    """One cache seen in several groups (its keys' names fell into more than one)."""
    for name in ("entries", "bytes", "with_ttl", "vector_mismatches", "infrastructure_bytes"):
        setattr(into, name, getattr(into, name) + getattr(part, name))
    for name in ("libraries", "ttl_histogram", "models", "vector_dims", "unreachable", "unreachable_bytes"):
        getattr(into, name).update(getattr(part, name))
    into.infrastructure.update(part.infrastructure)
    into.min_ttl_ms, into.max_ttl_ms = (
        _lower(into.min_ttl_ms, part.min_ttl_ms),
        _higher(into.max_ttl_ms, part.max_ttl_ms),
    )
    into.oldest, into.newest = _lower(into.oldest, part.oldest), _higher(into.newest, part.newest)
    into.index = into.index or part.index
    if part.kind != "infrastructure" and into.kind == "infrastructure":
        into.kind = part.kind
