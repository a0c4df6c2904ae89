"""Reading what the hit tracker (cacheops_track) recorded: per-entry records, hit-rate buckets,
tokens and money saved. Every figure here is "tracked": counted by the app's own tracker.

The key names and fields are cacheops_track.keys' (defined once, there).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import redis

from cacheops_track import keys as K

from ..layouts import Context, Entry
from ..pricing import PriceTable, load_prices
from ..server.keyspace import read_records
from .catalog import EntryFilter, decode_record, iter_entries

SPARK = "▁▂▃▄▅▆▇█"
NOW_WINDOW = 300  # seconds: "hit rate now" is over the last five minutes
RECORD_FIELDS = (
    K.HITS,
    K.LAST_HIT,
    K.WRITTEN,
    K.PROMPT,
    K.SYSTEM,
    K.PROMPT_SHA256,
    K.MODEL,
    K.CACHE,
    K.INPUT_TOKENS,
    K.OUTPUT_TOKENS,
    K.LAST_DISTANCE,
)


@dataclass
class HitRecord:
    hits: int = 0
    last_hit: float | None = None  # unix seconds
    written: float | None = None
    prompt: str | None = None
    system: str | None = None
    prompt_sha256: str | None = None
    model: str | None = None
    cache: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    last_distance: float | None = None

    def to_dict(self) -> dict:
        out = {
            "source": "tracked",
            "hits": self.hits,
            "last_hit": self.last_hit,
            "written": self.written,
            "model": self.model,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
        }
        if self.last_distance is not None:
            out["last_distance"] = self.last_distance
        if self.prompt_sha256:
            out["prompt_sha256"] = self.prompt_sha256
        return out


def _text(v) -> str | None:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else v


def _name(v: bytes | str) -> str:
    """A key or field name (never None, unlike a field's value)."""
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else v


def _int(v) -> int | None:
    try:
        return int(v) if v is not None else None
    except ValueError:
        return None


def parse_record(values: list) -> HitRecord | None:
    """HMGET RECORD_FIELDS reply -> HitRecord (None: no record)."""
    if not any(v is not None for v in values):
        return None
    f = dict(zip(RECORD_FIELDS, values))
    last, written = _int(f[K.LAST_HIT]), _int(f[K.WRITTEN])
    distance = f[K.LAST_DISTANCE]
    return HitRecord(
        hits=_int(f[K.HITS]) or 0,
        last_hit=last / 1000 if last else None,
        written=written / 1000 if written else None,
        prompt=_text(f[K.PROMPT]),
        system=_text(f[K.SYSTEM]),
        prompt_sha256=_text(f[K.PROMPT_SHA256]),
        model=_text(f[K.MODEL]),
        cache=_text(f[K.CACHE]),
        input_tokens=_int(f[K.INPUT_TOKENS]),
        output_tokens=_int(f[K.OUTPUT_TOKENS]),
        last_distance=float(distance) if distance is not None else None,
    )


def read_hit_records(client: redis.Redis, keys: list[str | bytes]) -> list[HitRecord | None]:
    """The tracker's record of each entry key (None where it has none), in one round trip."""
    if not keys:
        return []
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hmget(K.entry_record_key(key), RECORD_FIELDS)
    return [parse_record(v) if isinstance(v, list) else None for v in pipe.execute(raise_on_error=False)]


def attach_hits(client: redis.Redis, items: Iterable, batch: int = 500, first: int | None = None) -> Iterator:
    """Pass `items` through, each Entry with its tracked record (entry.hits) and, for exact entries
    that store only hashes, the prompt and model the tracker recorded at write time. The records are
    read `batch` items at a time; `first`: a smaller first batch, for a listing's first screen.

    Where no tracker ever wrote (it registers each cache it records in K.TRACKED, in the same
    flush as the records), nothing is looked up: a lookup per entry would be a quarter of a
    listing's client work."""
    if not client.exists(K.TRACKED):
        yield from items
        return
    pending: list = []
    size = first or batch
    for item in items:
        pending.append(item)
        if len(pending) >= size:
            yield from _attach(client, pending)
            pending, size = [], batch
    yield from _attach(client, pending)


def _attach(client: redis.Redis, items: list) -> list:
    entries = [item for item in items if isinstance(item, Entry)]
    for entry, record in zip(entries, read_hit_records(client, [e.key for e in entries])):
        if record is None:
            continue
        entry.hits = record.to_dict()
        prompt, model = _recorded_text(entry.prompt, entry.model, record)
        if prompt is not entry.prompt:
            entry.prompt = prompt
            entry.notes = [n for n in entry.notes if "md5(prompt)" not in n]
            entry.notes.append("prompt text from the hit tracker's record (cacheops_track)")
            if record.system is not None:
                entry.hits["system"] = record.system
        if model is not entry.model:
            entry.model = model
            entry.notes = [n for n in entry.notes if "md5(llm_string)" not in n]
            entry.notes.append("model from the hit tracker's record (cacheops_track)")
    return items


def _recorded_text(prompt: str | None, model: str | None, record) -> tuple[str | None, str | None]:
    """An entry's (prompt, model) with what the tracker recorded at write time filled in: the text of
    an exact entry that stores only md5(prompt), the model of one shown only by md5(llm_string)."""
    if prompt is None and record.prompt is not None:
        prompt = record.prompt
    if record.model and (model is None or model.startswith("llm:")):
        model = record.model
    return prompt, model


def attach_hit_rows(client: redis.Redis, batches: Iterable[list[dict]]) -> Iterator[list[dict]]:
    """attach_hits for listing rows (catalog.iter_rows' batches of to_dict() rows): each entry's row
    gets the tracked record (hits) and the recorded prompt and model, exactly as attach_hits sets
    them on an Entry before to_dict()."""
    if not client.exists(K.TRACKED):
        yield from batches
        return
    for rows in batches:
        entries = [row for row in rows if "answer" in row]  # not unknown keys or infrastructure
        for row, record in zip(entries, read_hit_records(client, [row["key"] for row in entries])):
            if record is None:
                continue
            hits = row["hits"] = record.to_dict()
            prompt, row["model"] = _recorded_text(row["prompt"], row["model"], record)
            if prompt is not row["prompt"]:
                row["prompt"] = prompt
                if record.system is not None:
                    hits["system"] = record.system
        yield rows


def iter_entries_by_hits(
    client: redis.Redis, ctx: Context, flt: EntryFilter, limit: int = 10_000, chunk: int = 500
) -> Iterator[Entry]:
    """A cache's entries most hit first: its tracked entries by hits (then most recently hit), then
    the rest in scan order (no hit recorded). The order comes from the tracker's records (one SCAN
    over cacheops:hit:*), of which the `limit` most hit are kept: memory stays bounded."""
    import heapq

    best: list[tuple[int, float, str]] = []
    for key, values in iter_hit_records(client, flt.cache, count=10_000):  # few records among many keys
        record = parse_record(values)
        if record is None or not record.hits:
            continue
        ranked = (record.hits, record.last_hit or 0.0, key)
        if len(best) < limit:
            heapq.heappush(best, ranked)
        elif ranked > best[0]:
            heapq.heapreplace(best, ranked)
    ordered = [key for _, _, key in sorted(best, reverse=True)]
    listed: set[str] = set()
    for start in range(0, len(ordered), chunk):
        keys = [key.encode("utf-8") for key in ordered[start : start + chunk]]
        for rec in read_records(client, keys):
            decoded = decode_record(rec, ctx, full=False)
            if isinstance(decoded, Entry) and flt.accepts(decoded):
                listed.add(decoded.key)
                yield decoded
    for found in iter_entries(client, ctx, flt, full=False):
        if isinstance(found, Entry) and found.key not in listed:
            yield found


# -- hit rates over time -------------------------------------------------------------------------


@dataclass
class Counts:
    hits: int = 0
    misses: int = 0
    input_saved: int = 0
    output_saved: int = 0
    estimated: int = 0  # hits whose saved tokens are an estimate
    money_saved: float = 0.0
    unpriced_hits: int = 0  # hits of models the price table does not know (no money counted)

    def add(self, counter: str, n: int) -> None:
        if counter in (K.C_HITS, K.C_MISSES, K.C_INPUT_SAVED, K.C_OUTPUT_SAVED, K.C_ESTIMATED):
            setattr(self, counter, getattr(self, counter) + n)

    @property
    def hit_rate(self) -> float | None:
        total = self.hits + self.misses
        return self.hits / total if total else None

    def priced(self, model: str, table: PriceTable) -> None:
        money = table.cost(model, self.input_saved, self.output_saved)
        if money is None:
            self.unpriced_hits += self.hits
        else:
            self.money_saved += money

    def merge(self, other: Counts) -> None:
        for name in ("hits", "misses", "input_saved", "output_saved", "estimated", "money_saved", "unpriced_hits"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def to_dict(self) -> dict:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": self.hit_rate,
            "input_tokens_saved": self.input_saved,
            "output_tokens_saved": self.output_saved,
            "estimated_hits": self.estimated,
            "money_saved": round(self.money_saved, 6),
            "unpriced_hits": self.unpriced_hits,
        }


@dataclass
class CacheHits:
    name: str
    kind: str | None = None
    library: str | None = None
    last_event: float | None = None
    now: Counts = field(default_factory=Counts)
    window: Counts = field(default_factory=Counts)
    per_model: dict[str, Counts] = field(default_factory=dict)
    series: list[float | None] = field(default_factory=list)  # hit rate per bin over the window
    per_day: dict[str, Counts] = field(default_factory=dict)  # UTC date -> counts (hour buckets)
    total: Counts = field(default_factory=Counts)  # since tracking began
    latency: dict = field(default_factory=dict)

    @property
    def sparkline(self) -> str:
        return "".join(" " if r is None else SPARK[min(len(SPARK) - 1, int(r * len(SPARK)))] for r in self.series)

    def to_dict(self) -> dict:
        return {
            "cache": self.name,
            "source": "tracked",
            "kind": self.kind,
            "library": self.library,
            "last_event": self.last_event,
            "now": self.now.to_dict(),
            "window": self.window.to_dict(),
            "per_model": {m: c.to_dict() for m, c in sorted(self.per_model.items())},
            "series": self.series,
            "per_day": {d: c.to_dict() for d, c in sorted(self.per_day.items())},
            "total": self.total.to_dict(),
            "lookup_latency": self.latency,
        }


@dataclass
class EntryHits:
    key: str
    cache: str | None
    model: str | None
    hits: int
    last_hit: float | None
    written: float | None
    prompt: str | None
    bytes: int | None = None

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "cache": self.cache,
            "model": self.model,
            "hits": self.hits,
            "last_hit": self.last_hit,
            "written": self.written,
            "prompt": self.prompt,
            "bytes": self.bytes,
        }


@dataclass
class HitReport:
    since: float  # seconds
    granularity: str  # "minute" | "hour"
    currency: str
    prices_taken: str
    caches: list[CacheHits] = field(default_factory=list)
    top: list[EntryHits] = field(default_factory=list)
    cold: list[EntryHits] = field(default_factory=list)
    cold_after: float | None = None
    cold_entries: int = 0
    cold_bytes: int = 0
    tracked_entries: int = 0

    def to_dict(self) -> dict:
        return {
            "source": "tracked (cacheops_track in the app)",
            "since_seconds": self.since,
            "granularity": self.granularity,
            "currency": self.currency,
            "prices_taken": self.prices_taken,
            "caches": [c.to_dict() for c in self.caches],
            "top_entries": [e.to_dict() for e in self.top],
            "cold": {
                "after_seconds": self.cold_after,
                "entries": self.cold_entries,
                "bytes": self.cold_bytes,
                "sample": [e.to_dict() for e in self.cold],
            },
            "tracked_entries": self.tracked_entries,
        }


def tracked_caches(client: redis.Redis) -> dict[str, dict]:
    out = {}
    for name, value in (client.hgetall(K.TRACKED) or {}).items():
        try:
            info = json.loads(value)
        except ValueError:
            info = {}
        out[_name(name)] = info if isinstance(info, dict) else {}
    return out


def _buckets(client: redis.Redis, prefix: bytes, cache: str) -> Iterator[tuple[int, str, str, int]]:
    """(bucket start, model, counter, n) of one cache's bucket hash, read in HSCAN pages."""
    for name, value in client.hscan_iter(K.bucket_key(prefix, cache), count=1000):
        start, _, rest = _name(name).partition("|")
        model, _, counter = rest.rpartition("|")
        try:
            yield int(start), model, counter, int(value)
        except ValueError:
            continue


def hit_report(
    client: redis.Redis,
    since: float = 86400,
    cache: str | None = None,
    bins: int = 24,
    top: int = 10,
    cold_after: float | None = 7 * 86400,
    cold_sample: int = 20,
    now: float | None = None,
    table: PriceTable | None = None,
    entries: bool = True,
) -> HitReport:
    """Hit rates now and over the last `since` seconds, per cache and model; tokens and money saved
    per day; the most hit entries and the cold ones (not hit for `cold_after` seconds, or never).
    entries=False: the rates only, without the walk over every per-entry record (top, cold), which
    costs a SCAN of the whole keyspace (the TUI's sparkline asks for rates only)."""
    now = time.time() if now is None else now
    table = table or load_prices()
    use_minutes = since <= K.MINUTE_RETENTION
    report = HitReport(since, "minute" if use_minutes else "hour", table.currency, table.taken, cold_after=cold_after)
    width = since / bins
    for name, info in sorted(tracked_caches(client).items()):
        if cache is not None and name != cache:
            continue
        ch = CacheHits(name, info.get("kind"), info.get("library"), info.get("last_event"))
        series = [[0, 0] for _ in range(bins)]
        money_models: dict[tuple[str, str], Counts] = defaultdict(Counts)  # (scope, model) -> counts
        for start, model, counter, n in _buckets(client, K.MINUTE_PREFIX, name):
            if start + 60 > now - NOW_WINDOW and start <= now:
                money_models[("now", model)].add(counter, n)
            if use_minutes:
                _window(ch, money_models, series, start, 60, model, counter, n, now, since, width, bins)
        for start, model, counter, n in _buckets(client, K.HOUR_PREFIX, name):
            if not use_minutes:
                _window(ch, money_models, series, start, 3600, model, counter, n, now, since, width, bins)
            day = time.strftime("%Y-%m-%d", time.gmtime(start))
            money_models[("day:" + day, model)].add(counter, n)
        for (scope, model), counts in money_models.items():
            counts.priced(model, table)
            if scope == "now":
                ch.now.merge(counts)
            elif scope == "window":
                ch.window.merge(counts)
                ch.per_model.setdefault(model, Counts()).merge(counts)
            else:
                ch.per_day.setdefault(scope[4:], Counts()).merge(counts)
        ch.series = [h / (h + m) if h + m else None for h, m in series]
        ch.total, ch.latency = _totals(client, name, table)
        report.caches.append(ch)
    if entries:
        _entries(client, report, cache, top, cold_after, cold_sample, now)
    return report


def _window(ch, money_models, series, start, span, model, counter, n, now, since, width, bins) -> None:
    if start + span <= now - since or start > now:
        return
    money_models[("window", model)].add(counter, n)
    if counter in (K.C_HITS, K.C_MISSES):
        at = min(bins - 1, max(0, int((start + span / 2 - (now - since)) // width)))
        series[at][0 if counter == K.C_HITS else 1] += n


def _totals(client: redis.Redis, cache: str, table: PriceTable) -> tuple[Counts, dict]:
    per_model: dict[str, Counts] = defaultdict(Counts)
    latency: dict = {}
    for raw, value in (client.hgetall(K.bucket_key(K.TOTALS_PREFIX, cache)) or {}).items():
        name = _name(raw)
        if name.startswith(K.LATENCY_FIELD):
            latency[name[len(K.LATENCY_FIELD) :]] = float(value)
            continue
        model, _, counter = name.rpartition("|")
        try:
            per_model[model].add(counter, int(value))
        except ValueError:
            continue
    total = Counts()
    for model, counts in per_model.items():
        counts.priced(model, table)
        total.merge(counts)
    return total, latency


def iter_hit_records(client: redis.Redis, cache: str | None = None, count: int = 1000) -> Iterator[tuple[str, list]]:
    """(entry key, HMGET RECORD_FIELDS + EXISTS of the entry) of every record, SCAN batch by batch.
    On a Redis Cluster scan_iter walks every primary in turn and the pipeline sends each command to
    the primary of its key (a record and its entry usually live in different slots)."""
    names: list[bytes] = []
    for name in client.scan_iter(match=K.ENTRY_PREFIX + b"*", count=count):
        names.append(name)
        if len(names) >= count:
            yield from _records(client, names, cache)
            names = []
    yield from _records(client, names, cache)


def _records(client: redis.Redis, names: list[bytes], cache: str | None) -> Iterator[tuple[str, list]]:
    if not names:
        return
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.hmget(name, RECORD_FIELDS)
        pipe.exists(name[len(K.ENTRY_PREFIX) :])
    replies = pipe.execute(raise_on_error=False)
    for i, name in enumerate(names):
        values, exists = replies[2 * i], replies[2 * i + 1]
        if isinstance(values, list) and exists == 1:
            key = _name(name[len(K.ENTRY_PREFIX) :])
            if cache is None or _text(values[RECORD_FIELDS.index(K.CACHE)]) == cache:
                yield key, values


def _entries(client, report: HitReport, cache, top: int, cold_after, cold_sample: int, now: float) -> None:
    import heapq

    best: list = []
    cold_batch: list[EntryHits] = []

    def measure(batch: list[EntryHits]) -> None:
        pipe = client.pipeline(transaction=False)
        for e in batch:
            pipe.memory_usage(e.key)
        for e, size in zip(batch, pipe.execute(raise_on_error=False)):
            e.bytes = size if isinstance(size, int) else None
            report.cold_bytes += e.bytes or 0

    for key, values in iter_hit_records(client, cache):
        record = parse_record(values)
        if record is None:
            continue
        report.tracked_entries += 1
        item = EntryHits(key, record.cache, record.model, record.hits, record.last_hit, record.written, record.prompt)
        if record.hits:
            entry = (record.hits, key, item)
            if len(best) < top:
                heapq.heappush(best, entry)
            elif entry > best[0]:
                heapq.heapreplace(best, entry)
        if cold_after is not None:
            seen = record.last_hit or record.written
            if seen is not None and now - seen >= cold_after:
                report.cold_entries += 1
                cold_batch.append(item)
                if len(report.cold) < cold_sample:
                    report.cold.append(item)
                if len(cold_batch) >= 500:
                    measure(cold_batch)
                    cold_batch = []
    if cold_batch:
        measure(cold_batch)
    report.top = [item for _, _, item in sorted(best, key=lambda t: (-t[0], t[1]))]
    report.cold.sort(key=lambda e: (e.last_hit or 0, e.written or 0))
