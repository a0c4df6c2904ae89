"""Connect the scan engine to the layouts: stream decoded entries, and summarise caches.

This is the walk every command shares: build the context (indexes, known hashes) -> stream
RawRecords -> classify each with the layouts -> filter -> hand Entries (or unknown keys) on.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import redis

from ..errors import NotFound
from ..layouts import LAYOUTS, UNREACHABLE_REASONS, Context, Entry, Infrastructure, classify, list_row
from ..layouts import langchain_format as lc
from ..server.indexes import IndexInfo, list_indexes
from ..server.keyspace import RawRecord, ScanOptions, ScanStats, glob_escape, iter_batches
from ..units import human_duration


@dataclass(slots=True)
class UnknownKey:
    """A key no layout recognised. Listed on request, never decoded, counted or deleted as an entry."""

    key: str
    type: str
    bytes: int | None
    ttl_ms: int | None

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "layout": "unknown",
            "type": self.type,
            "bytes": self.bytes,
            "ttl_seconds": None if self.ttl_ms is None else self.ttl_ms / 1000,
        }


# What a listing may yield besides entries: keys no layout recognised, and the keys a library keeps
# beside its entries. Neither is ever listed, counted or deleted as an entry.
NOT_ENTRIES = (UnknownKey, Infrastructure)


def build_context(client: redis.Redis, known_texts: Iterable[str] = (), learn: bool = True) -> Context:
    ctx = Context(indexes=list_indexes(client), learn=learn)
    for layout in LAYOUTS:
        layout.prepare(client, ctx)
    for text in known_texts:
        for prompt in (lc.chat_prompt(text), text):
            ctx.known_prompts[lc.md5_hex(prompt)] = prompt
    return ctx


@dataclass
class EntryFilter:
    cache: str | None = None
    model: str | None = None
    text: str | None = None  # case-insensitive piece of the prompt, answer or key (the TUI's filter)

    def scan_match(self, match: str | None, ctx: Context | None = None) -> str | None:
        if match:
            return match
        if self.cache is None:
            return None
        for layout in LAYOUTS:  # caches of unprefixed keys name their own glob
            glob = layout.scan_match(self.cache, ctx)
            if glob is not None:
                return None if glob == "*" else glob
        return f"{glob_escape(self.cache)}:*"

    def accepts(self, entry: Entry) -> bool:
        if self.cache is not None and entry.cache != self.cache:
            return False
        if self.model is not None and not entry.has_model(self.model):
            return False
        if self.text:
            needle = self.text.casefold()
            if not any(needle in (value or "").casefold() for value in (entry.prompt, entry.answer, entry.key)):
                return False
        return True


def decode_record(rec: RawRecord, ctx: Context, full: bool = True) -> Entry | Infrastructure | UnknownKey:
    """full=False: decoded for a listing (what Entry.to_dict() shows; see Layout.decode)."""
    if rec.type == "none":
        return UnknownKey(rec.key_text, "none", None, None)
    entry = classify(rec, ctx, full)
    return unknown_key(rec) if entry is None else entry


def unknown_key(rec: RawRecord) -> UnknownKey:
    return UnknownKey(rec.key_text, rec.type, rec.memory, None if rec.pttl < 0 else rec.pttl)


def iter_entries(
    client: redis.Redis,
    ctx: Context,
    flt: EntryFilter | None = None,
    match: str | None = None,
    count: int = 1000,
    limit: int | None = None,
    include_unknown: bool = False,
    stats: ScanStats | None = None,
    server_side: bool | None = None,
    full: bool = True,
) -> Iterator[Entry | Infrastructure | UnknownKey]:
    """Entries (and unknown keys on request) as a streaming scan finds them. full=False decodes only
    what a listing shows (Entry.to_dict(), the filters): several times cheaper per key."""
    flt = flt or EntryFilter()
    opts = ScanOptions(match=flt.scan_match(match, ctx), count=count, server_side=server_side)
    shown = 0
    accepts = None if flt.cache is None and flt.model is None and not flt.text else flt.accepts
    for batch in iter_batches(client, opts, stats):  # batches decoded here: no generator in between
        for rec in batch:
            item = decode_record(rec, ctx, full)
            if isinstance(item, NOT_ENTRIES):
                if item.type == "none" or not include_unknown:
                    continue
            elif accepts is not None and not accepts(item):
                continue
            yield item
            shown += 1
            if limit is not None and shown >= limit:
                return


def iter_rows(
    client: redis.Redis,
    ctx: Context,
    flt: EntryFilter | None = None,
    match: str | None = None,
    count: int = 1000,
    limit: int | None = None,
    include_unknown: bool = False,
    stats: ScanStats | None = None,
    server_side: bool | None = None,
) -> Iterator[list[dict]]:
    """What iter_entries yields, as the rows a listing prints (to_dict() of each), a scan batch at a
    time. The layouts build most rows straight from the value (Layout.list_row): no Entry per key.
    A --model or text filter reads what a row does not carry (the llm_string): those listings go
    through iter_entries."""
    flt = flt or EntryFilter()
    if flt.model is not None or flt.text:
        rows: list[dict] = []
        for item in iter_entries(client, ctx, flt, match, count, limit, include_unknown, stats, server_side, False):
            rows.append(item.to_dict())
            if len(rows) >= count:
                yield rows
                rows = []
        if rows:
            yield rows
        return
    opts = ScanOptions(match=flt.scan_match(match, ctx), count=count, server_side=server_side)
    cache = flt.cache
    left = limit
    for batch in iter_batches(client, opts, stats):
        now = time.time()
        rows = []
        for rec in batch:
            if rec.type == "none":
                continue
            row = list_row(rec, ctx, now)
            if isinstance(row, dict):
                if cache is not None and row["cache"] != cache:
                    continue
                rows.append(row)
            elif include_unknown:
                rows.append((unknown_key(rec) if row is None else row).to_dict())
            else:
                continue
            if left is not None:
                left -= 1
                if left <= 0:
                    yield rows
                    return
        if rows:
            yield rows


# -- summaries ------------------------------------------------------------------------------------

TTL_BUCKETS = (("none", None), ("<1h", 3600), ("<1d", 86400), ("<7d", 7 * 86400), (">=7d", float("inf")))


def ttl_bucket(ttl_ms: int | None) -> str:
    if ttl_ms is None:
        return "none"
    seconds = ttl_ms / 1000
    for name, bound in TTL_BUCKETS[1:]:
        if seconds < bound:
            return name
    return ">=7d"


@dataclass
class CacheSummary:
    name: str
    kind: str
    libraries: Counter = field(default_factory=Counter)
    index: str | None = None
    index_prefixes: list[str] = field(default_factory=list)
    entries: int = 0
    bytes: int = 0
    with_ttl: int = 0
    min_ttl_ms: int | None = None
    max_ttl_ms: int | None = None
    ttl_histogram: Counter = field(default_factory=Counter)
    models: Counter = field(default_factory=Counter)
    vector_dims: Counter = field(default_factory=Counter)  # "384 FLOAT32" -> n
    vector_mismatches: int = 0
    oldest: float | None = None
    newest: float | None = None
    foreign_keys: int = 0  # unknown keys under this cache's prefix
    unreachable: Counter = field(default_factory=Counter)  # reason -> entries no lookup can hit
    unreachable_bytes: Counter = field(default_factory=Counter)  # reason -> their bytes
    infrastructure: Counter = field(default_factory=Counter)  # role -> the library's non-entry keys
    infrastructure_bytes: int = 0
    notes: list[str] = field(default_factory=list)
    # None: every key's value was decoded. Else the quick catalog's {"keys": n, "of": N}: entries,
    # bytes and TTLs count every key by its shape, the value-derived figures only n sampled keys.
    sampled: dict | None = None

    def add_infrastructure(self, item: Infrastructure) -> None:
        self.infrastructure[_role_kind(item.role)] += 1
        self.infrastructure_bytes += item.bytes or 0
        self.libraries.setdefault(item.library, 0)

    def add(self, entry: Entry) -> None:
        self.entries += 1
        self.bytes += entry.bytes or 0
        self.libraries[entry.library] += 1
        self.models[entry.model or "?"] += 1
        self.ttl_histogram[ttl_bucket(entry.ttl_ms)] += 1
        if entry.ttl_ms is not None:
            self.with_ttl += 1
            self.min_ttl_ms = entry.ttl_ms if self.min_ttl_ms is None else min(self.min_ttl_ms, entry.ttl_ms)
            self.max_ttl_ms = entry.ttl_ms if self.max_ttl_ms is None else max(self.max_ttl_ms, entry.ttl_ms)
        if entry.unreachable is not None:
            self.unreachable[entry.unreachable] += 1
            self.unreachable_bytes[entry.unreachable] += entry.bytes or 0
        if entry.vector:
            self.vector_dims[f"{entry.vector.dims} {entry.vector.dtype or ''}".strip()] += 1
            if entry.vector.matches_index is False:
                self.vector_mismatches += 1
        when = entry.inserted_at
        if when:
            self.oldest = when if self.oldest is None else min(self.oldest, when)
            self.newest = when if self.newest is None else max(self.newest, when)

    @property
    def ttl_policy(self) -> str:
        if not self.entries:
            return "-"
        if self.with_ttl == 0:
            return "no expiry"
        span = f"{_dur(self.min_ttl_ms)}..{_dur(self.max_ttl_ms)} left"
        if self.with_ttl < self.entries:
            return f"mixed: {self.entries - self.with_ttl} never expire, {span}"
        return span

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "libraries": dict(self.libraries),
            "index": self.index,
            "index_prefixes": self.index_prefixes,
            "entries": self.entries,
            "bytes": self.bytes,
            "ttl_policy": self.ttl_policy,
            "ttl_histogram": {k: self.ttl_histogram.get(k, 0) for k, _ in TTL_BUCKETS},
            "models": dict(self.models.most_common()),
            "vector": dict(self.vector_dims),
            "vector_mismatches": self.vector_mismatches,
            "oldest": self.oldest,
            "newest": self.newest,
            "foreign_keys": self.foreign_keys,
            "unreachable": unreachable_dict(self.unreachable, self.unreachable_bytes),
            "infrastructure": {
                "keys": sum(self.infrastructure.values()),
                "bytes": self.infrastructure_bytes,
                "roles": dict(self.infrastructure),
            },
            "sampled": self.sampled,
            "notes": self.notes,
        }


def _role_kind(role: str) -> str:
    """'vector of gptcache:questions:3' -> 'vector': roles are counted by kind, not per key."""
    return role.split(" of ", 1)[0]


def unreachable_dict(counts: Counter, nbytes: Counter) -> dict:
    return {
        reason: {"entries": n, "bytes": nbytes.get(reason, 0), "how": UNREACHABLE_REASONS.get(reason, "")}
        for reason, n in counts.most_common()
    }


def _dur(ms: int | None) -> str:
    return human_duration(None if ms is None else ms / 1000, coarse=True, none="-")


@dataclass
class Catalog:
    caches: list[CacheSummary]
    unknown_keys: int
    scanned_keys: int
    seconds: float
    scan_path: str
    indexes: list[IndexInfo]
    quick: bool = False  # built by quick_catalog (key shape + a value sample), not by reading every value

    @property
    def unreachable(self) -> tuple[Counter, Counter]:
        counts: Counter = Counter()
        nbytes: Counter = Counter()
        for c in self.caches:
            counts.update(c.unreachable)
            nbytes.update(c.unreachable_bytes)
        return counts, nbytes

    def to_dict(self) -> dict:
        return {
            "caches": [c.to_dict() for c in self.caches],
            "unknown_keys": self.unknown_keys,
            "unreachable": unreachable_dict(*self.unreachable),
            "scanned_keys": self.scanned_keys,
            "seconds": round(self.seconds, 3),
            "scan_path": self.scan_path,
            "values": "sampled" if self.quick else "every key",
        }


UNKNOWN_PREFIXES_MAX = 50_000


def add_infrastructure(summaries: dict[str, CacheSummary], item: Infrastructure, flt: EntryFilter) -> None:
    """Count one infrastructure key (an index's companion, cacheops' own keys) into its cache's summary."""
    if flt.cache is None or flt.cache == item.cache:
        summary = summaries.get(item.cache)
        if summary is None:
            summary = summaries[item.cache] = CacheSummary(item.cache, item.kind)
        summary.add_infrastructure(item)


def build_catalog(
    client: redis.Redis,
    ctx: Context,
    flt: EntryFilter | None = None,
    on_entry=None,
    server_side: bool | None = None,
    stats: ScanStats | None = None,
) -> Catalog:
    """One streaming pass over the keyspace: every cache with its aggregates. Memory is bounded by
    the number of caches and distinct prefixes, never by the number of keys."""
    flt = flt or EntryFilter()
    started = time.monotonic()
    summaries: dict[str, CacheSummary] = {}
    unknown_by_prefix: Counter = Counter()
    unknown = 0
    stats = stats if stats is not None else ScanStats()
    for item in iter_entries(client, ctx, flt, include_unknown=True, stats=stats, server_side=server_side, full=False):
        if isinstance(item, Infrastructure):
            add_infrastructure(summaries, item, flt)
            continue
        if isinstance(item, UnknownKey):
            unknown += 1
            count_unknown(unknown_by_prefix, item.key)
            continue
        summary = summaries.get(item.cache)
        if summary is None:
            summary = summaries[item.cache] = CacheSummary(item.cache, item.kind, index=item.index)
        summary.add(item)
        if on_entry:
            on_entry(item)
    return finish_catalog(summaries, unknown_by_prefix, unknown, ctx, flt, stats, started)


def count_unknown(unknown_by_prefix: Counter, key: str) -> None:
    """Count an unknown key under its first three prefixes (bounded: flat memory)."""
    parts = key.split(":")
    for depth in range(1, min(len(parts), 4)):
        prefix = ":".join(parts[:depth])
        if prefix in unknown_by_prefix or len(unknown_by_prefix) < UNKNOWN_PREFIXES_MAX:
            unknown_by_prefix[prefix] += 1


def finish_catalog(
    summaries: dict[str, CacheSummary],
    unknown_by_prefix: Counter,
    unknown: int,
    ctx: Context,
    flt: EntryFilter,
    stats: ScanStats,
    started: float,
) -> Catalog:
    """Empty semantic caches, foreign keys, index prefixes and notes: the same for every catalog."""
    # Semantic indexes with no entries yet are caches too.
    for name, idx in _semantic_index_caches(ctx):
        if flt.cache is None or flt.cache == name:
            summaries.setdefault(name, CacheSummary(name, "semantic", index=idx.name))
    for summary in summaries.values():
        summary.foreign_keys = unknown_by_prefix.get(summary.name, 0)
        found = next((i for i in ctx.indexes if i.name == summary.index), None)
        if found:
            summary.index_prefixes = found.prefixes
        _annotate(summary, summaries, ctx)
    return Catalog(
        sorted(summaries.values(), key=lambda s: (s.kind, s.name)),
        unknown,
        stats.keys,
        time.monotonic() - started,
        stats.path,
        ctx.indexes,
    )


def _semantic_index_caches(ctx: Context) -> list[tuple[str, IndexInfo]]:
    """(cache name, index) for every semantic cache index, entries or not."""
    return [
        (prefix.rstrip(":"), idx)
        for idx in ctx.indexes
        if {"prompt", "prompt_vector"} <= idx.fields.keys()
        for prefix in idx.prefixes
    ]


def no_such_cache(name: str, known: Iterable[str], kind: str = "cache") -> NotFound:
    """The one error for a --cache NAME that is not there (exit 7), naming the caches that are."""
    names = ", ".join(sorted(set(known))) or "none"
    return NotFound(f"no {kind} named {name!r}; {kind}s on this server: {names}")


def require_cache(client: redis.Redis, ctx: Context, name: str | None) -> None:
    """Nothing if `name` is None or a cache on this server (a semantic index over it, or a key a
    layout attributes to it); otherwise no_such_cache naming the caches there are. Stops at the
    first key of the cache, so an existing cache costs little; the error path costs a catalog pass."""
    if name is None or any(cache == name for cache, _ in _semantic_index_caches(ctx)):
        return
    for item in iter_entries(client, ctx, EntryFilter(cache=name), include_unknown=True, full=False):
        if getattr(item, "cache", None) == name:
            return
    raise no_such_cache(name, (c.name for c in build_catalog(client, ctx).caches))


def _annotate(summary: CacheSummary, summaries: dict[str, CacheSummary], ctx: Context) -> None:
    if summary.foreign_keys:
        summary.notes.append(
            f"{summary.foreign_keys} key(s) under '{summary.name}:' are not cache entries; "
            f"the library's clear() would delete them too"
        )
    # Entries no index covers and vectors that do not fit their index are reported per reason below.
    for reason, n in summary.unreachable.most_common():
        summary.notes.append(
            f"{n} unreachable entr{'y' if n == 1 else 'ies'} ({summary.unreachable_bytes[reason]:,} bytes), "
            f"{reason}: {UNREACHABLE_REASONS.get(reason, '')}"
        )
    for idx in ctx.indexes:
        for prefix in idx.prefixes:
            if summary.name != prefix.rstrip(":") and summary.name.startswith(prefix) and not prefix.endswith(":"):
                summary.notes.append(
                    f"index {idx.name!r} (prefix {prefix!r}, no trailing colon) also indexes "
                    f"{summary.name}:* keys: its searches can return this cache's answers "
                    f"(prefix bleed); give each cache a name that is not a prefix of another's"
                )
