"""The recorder: events appended in memory on the app's hot path, written by a background thread.

A lookup costs the app one deque append (no Redis round trip, no lock). A daemon thread wakes every
`flush_interval` seconds, groups the events that resolve alike (many hits of one entry in one
minute: one group, resolved once, one HINCRBY of their number), folds the groups into per-entry
records and per-cache buckets and writes them in two rounds of hand-packed commands (wire.py),
yielding the GIL every few tens of microseconds so the app's threads are never held up for
longer. Nothing here raises into the app or waits on Redis in the app's thread: past
`max_pending` queued events new ones are dropped and counted; a failed flush drops its batch,
counts it and is logged at most once per `log_interval`; a slow or absent Redis costs the flush
thread at most `timeout` seconds per attempt.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import threading
import time
import weakref
from bisect import bisect_left
from collections import defaultdict, deque
from dataclasses import dataclass

from . import keys as K
from .wire import Batch, Slices, number

log = logging.getLogger("cacheops_track")

HIT, MISS, WRITE = "hit", "miss", "write"


@dataclass(slots=True)
class Event:
    """One thing that happened, resolved (off the hot path) into what is recorded."""

    kind: str  # hit | miss | write
    cache: str
    ts: float  # unix seconds
    key: str | None = None  # the entry served (hit) or written (write); None when unknown
    model: str | None = None
    latency_us: float | None = None  # lookups only
    input_tokens: int = 0  # hit: what it saved; write: the generation's usage
    output_tokens: int = 0
    estimated: bool = False  # the tokens are an estimate (the generation carried no usage)
    prompt: str | None = None  # write: recorded per record_prompts
    system: str | None = None
    prompt_sha256: str | None = None
    distance: float | None = None  # semantic hits


class Source:
    """What a tracked cache hands the recorder: raw event tuples it knows how to resolve later."""

    cache_name: str = "unknown"
    kind: str = "exact"
    library: str = "unknown"

    def resolve(self, raw: tuple) -> Event | None:  # pragma: no cover - every adapter overrides it
        raise NotImplementedError

    def group(self, raw: tuple) -> tuple[object, object]:
        """(group key, entry) of a raw event, read cheaply. Events of one flush with the same group
        key (and minute) resolve to the same Event and are resolved and written once, counted as
        many. None as the key: resolve this event alone. `entry` names the cache entry a write
        replaces (hits of it after the write form a group of their own) or a hit is of."""
        return None, None


class _Direct(Source):
    """Events already resolved (Recorder.record): resolve returns them as they are."""

    def resolve(self, raw: tuple) -> Event:
        return raw[4]


_DIRECT = _Direct()


class Recorder:
    def __init__(
        self,
        client,
        *,
        flush_interval: float = 1.0,
        max_pending: int = 100_000,
        minute_retention: int = K.MINUTE_RETENTION,
        hour_retention: int = K.HOUR_RETENTION,
        entry_idle_seconds: int = K.ENTRY_IDLE_SECONDS,
        log_interval: float = 60.0,
    ):
        self.client = client
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self.minute_retention = minute_retention
        self.hour_retention = hour_retention
        self.entry_idle_seconds = entry_idle_seconds
        self.log_interval = log_interval
        self.queue: deque = deque()
        self.dropped = 0  # events not recorded: queue full, or their flush failed
        self.failed_flushes = 0
        self.flushed_events = 0
        self.flush_cpu_seconds = 0.0  # CPU time the flushes took (thread time: not the waits on Redis)
        self.field_expiry = True  # hash-field expiry (Redis >= 7.4); off after the server refuses it
        self._sources: dict[str, Source] = {}
        self._lock = threading.Lock()  # one flush at a time (the thread, flush(), atexit)
        self._wake = threading.Event()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._last_log = 0.0
        _LIVE.add(self)

    # -- the hot path --------------------------------------------------------------------------

    def push(self, source: Source, kind: str, latency_ns: int, a=None, b=None, c=None, d=None) -> None:
        """Queue a raw event (resolved later by `source`). Never raises, never waits."""
        try:
            if len(self.queue) >= self.max_pending:
                self.dropped += 1
                return
            self.queue.append((source, kind, time.time(), latency_ns, a, b, c, d))
            if self._thread is None:
                self._start()
        except Exception:
            self.dropped += 1

    def record(self, event: Event) -> None:
        """Queue a resolved event (its own timestamp kept): for integrations without an adapter, and
        for replaying history."""
        if len(self.queue) >= self.max_pending:
            self.dropped += 1
            return
        self.queue.append((_DIRECT, event.kind, event.ts, None, event, None, None, None))
        if self._thread is None:
            self._start()

    def register(self, source: Source) -> None:
        self._sources[source.cache_name] = source

    # -- the background thread -----------------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="cacheops-track-flush", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            self.flush()

    def flush(self) -> int:
        """Write what is queued now; the number of events written. Never raises."""
        with self._lock:
            count = len(self.queue)
            if not count:
                return 0
            cpu = time.thread_time()
            try:
                slices = Slices()
                groups, latency = self._fold(self.queue, count, slices)
                self._write(self._resolve(groups, slices), latency, slices)
                self.flushed_events += count
                return count
            except Exception as exc:
                self.failed_flushes += 1
                self.dropped += count
                self._log(f"cacheops_track: could not write {count} events ({type(exc).__name__}: {exc})")
                return 0
            finally:
                self.flush_cpu_seconds += time.thread_time() - cpu

    def close(self, timeout: float = 2.0) -> None:
        """Stop the thread and flush what is queued, waiting `timeout` seconds at most for each (at
        exit: a slow stats Redis must not hold the app's exit longer than that)."""
        self._stop = True
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        last = threading.Thread(target=self.flush, name="cacheops-track-final-flush", daemon=True)
        last.start()
        last.join(timeout)

    def _log(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last_log >= self.log_interval:
            self._last_log = now
            log.warning("%s; %d events dropped so far", message, self.dropped)

    def _fold(self, queue: deque, count: int, slices: Slices) -> tuple[dict, dict]:
        """Take `count` raw events off the queue and group the ones that resolve alike (each
        source says which: Source.group), so each group is resolved and written once however
        many events it holds. The latency histogram is counted here, per event."""
        groups: dict = {}  # group key (or the event's position) -> [events, first raw, last ts]
        epochs: dict = {}  # (source, entry) -> writes seen so far: a hit after a write is another group
        latency: dict[str, list] = {}  # cache -> [count, sum_ns, per-bound counts]
        bounds, width = LATENCY_BOUNDS_NS, len(LATENCY_BOUNDS_NS)
        pop = queue.popleft
        for i in range(count):
            if not i & 63:
                slices.tick()
            raw = pop()
            source, ts, elapsed = raw[0], raw[2], raw[3]
            if source is _DIRECT:
                event = raw[4]
                elapsed = None if event.latency_us is None else event.latency_us * 1000
                cache = event.cache
            else:
                cache = source.cache_name
            if elapsed:
                lat = latency.get(cache)
                if lat is None:
                    lat = latency[cache] = [0, 0, [0] * width]
                lat[0] += 1
                lat[1] += elapsed
                at = bisect_left(bounds, elapsed)
                if at < width:
                    lat[2][at] += 1
            try:
                key, entry = source.group(raw)
            except Exception:
                key = entry = None
            if key is None:
                if entry is not None:  # a write: later hits of that entry are hits of its new life
                    epochs[(source, entry)] = epochs.get((source, entry), 0) + 1
                groups[i] = [1, raw, ts]
                continue
            epoch = epochs.get((source, entry), 0) if epochs and entry is not None else 0
            key = (source, key, epoch, int(ts // 60))
            group = groups.get(key)
            if group is None:
                groups[key] = [1, raw, ts]
            else:
                group[0] += 1
                if ts > group[2]:
                    group[2] = ts
        return groups, latency

    def _resolve(self, groups: dict, slices: Slices) -> list[tuple[int, Event]]:
        """(events in the group, the group's event), in the order each group first happened."""
        out = []
        for n, raw, last in groups.values():
            slices.tick()
            try:
                event = raw[0].resolve(raw)
            except Exception:
                self.dropped += n
                continue
            if event is not None:
                if n > 1:
                    event.ts = last
                out.append((n, event))
        return out

    def _write(self, items: list[tuple[int, Event]], latency: dict[str, list], slices: Slices) -> None:
        records: dict[str, dict] = {}
        rec: dict | None
        buckets: dict[tuple[bytes, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
        expiry: dict[tuple[bytes, str], dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
        totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(int))
        caches: dict[str, float] = {}
        groups: dict[tuple[str, str, int], list[int]] = {}  # (cache, model, minute) -> COUNTERS
        for n, ev in items:
            slices.tick()
            model = ev.model or K.UNKNOWN_MODEL
            caches[ev.cache] = max(caches.get(ev.cache, 0), ev.ts)
            if ev.kind == WRITE:
                if ev.key is not None:
                    rec = records[ev.key] = {"reset": True, "hits": 0, "fields": {}, "cache": ev.cache}
                    fields = rec["fields"]
                    fields[K.WRITTEN] = int(ev.ts * 1000)
                    fields[K.CACHE] = ev.cache
                    fields[K.MODEL] = model
                    for name, value in (
                        (K.PROMPT, ev.prompt),
                        (K.SYSTEM, ev.system),
                        (K.PROMPT_SHA256, ev.prompt_sha256),
                    ):
                        if value is not None:
                            fields[name] = value
                    if ev.input_tokens or ev.output_tokens:
                        fields[K.INPUT_TOKENS] = ev.input_tokens
                        fields[K.OUTPUT_TOKENS] = ev.output_tokens
                continue
            # Counters are summed per (cache, model, minute) first; bucket field names are built
            # once per group below, not once per event.
            minute = int(ev.ts // 60) * 60
            group = groups.get((ev.cache, model, minute))
            if group is None:
                group = groups[(ev.cache, model, minute)] = [0, 0, 0, 0, 0]
            if ev.kind == HIT:
                group[0] += n
                group[2] += n * ev.input_tokens
                group[3] += n * ev.output_tokens
                if ev.estimated:
                    group[4] += n
                if ev.key is not None:
                    rec = records.get(ev.key)
                    if rec is None:
                        rec = records[ev.key] = {"reset": False, "hits": 0, "fields": {}, "cache": ev.cache}
                    rec["hits"] += n
                    fields = rec["fields"]
                    fields[K.LAST_HIT] = max(int(ev.ts * 1000), fields.get(K.LAST_HIT, 0))
                    fields.setdefault(K.CACHE, ev.cache)
                    if ev.model:
                        fields.setdefault(K.MODEL, ev.model)
                    if ev.distance is not None:
                        fields[K.LAST_DISTANCE] = ev.distance
            else:
                group[1] += n

        for (cache, model, minute), group in groups.items():
            total = totals[cache]
            for prefix, width, keep in (
                (K.MINUTE_PREFIX, 60, self.minute_retention),
                (K.HOUR_PREFIX, 3600, self.hour_retention),
            ):
                start = minute // width * width
                bucket = buckets[(prefix, cache)]
                for counter, n in zip(K.COUNTERS, group):
                    if n:
                        name = f"{start}|{model}|{counter}"
                        if name not in bucket:
                            expiry[(prefix, cache)][(start + keep) * 1000].append(name)
                        bucket[name] += n
            for counter, n in zip(K.COUNTERS, group):
                if n:
                    total[f"{model}|{counter}"] += n
        for cache, (count, sum_ns, per_bound) in latency.items():
            total = totals[cache]
            total[K.LATENCY_FIELD + "count"] += count
            total[K.LATENCY_FIELD + "sum_us"] += sum_ns / 1000
            running = 0
            for bound, n in zip(K.LATENCY_BOUNDS_US, per_bound):
                running += n  # Prometheus buckets are cumulative
                if running:
                    total[f"{K.LATENCY_FIELD}{bound}"] += running

        batch = Batch(self.client, slices)
        order = []  # (entry key, record key, where its PTTL reply is)
        for entry_key, rec in records.items():
            slices.tick()
            raw_key = entry_key.encode("utf-8")
            rkey = K.ENTRY_PREFIX + raw_key
            if rec["reset"]:
                batch.add(b"DEL", rkey)  # the entry was (re)written: an earlier life's record goes
            if rec["hits"]:
                batch.add(b"HINCRBY", rkey, b"hits", b"%d" % rec["hits"])
            elif rec["reset"]:
                rec["fields"][K.HITS] = 0
            flat = [b"HSET", rkey]
            for name, value in rec["fields"].items():
                flat.append(name.encode())
                flat.append(value.encode("utf-8") if isinstance(value, str) else number(value))
            batch.add(*flat)
            order.append((rkey, batch.add(b"PTTL", raw_key)))
        for (prefix, cache), fields in buckets.items() if self.field_expiry else ():
            bkey = K.bucket_key(prefix, cache)
            for name, n in fields.items():
                batch.add(b"HINCRBY", bkey, name.encode("utf-8"), b"%d" % n)
        for cache, fields in totals.items():
            tkey = K.bucket_key(K.TOTALS_PREFIX, cache)
            for name, amount in fields.items():
                verb = b"HINCRBYFLOAT" if isinstance(amount, float) else b"HINCRBY"
                batch.add(verb, tkey, name.encode("utf-8"), number(amount))
        for cache, last in caches.items():
            source = self._sources.get(cache)
            state = {
                "kind": source.kind if source else None,
                "library": source.library if source else None,
                "last_event": round(last, 3),
            }
            batch.add(b"HSET", K.TRACKED, cache.encode("utf-8"), json.dumps(state).encode())
        replies = batch.execute()
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply

        # Second round trip: each record expires with its entry; buckets' fields with their retention.
        batch = Batch(self.client, slices)
        for rkey, at in order:
            slices.tick()
            pttl = replies[at]
            if isinstance(pttl, int) and pttl > 0:
                batch.add(b"PEXPIRE", rkey, b"%d" % pttl)
            elif pttl == -1:
                batch.add(b"EXPIRE", rkey, b"%d" % self.entry_idle_seconds)
            else:
                batch.add(b"DEL", rkey)  # the entry is gone (expired, evicted, cleared): so is its record
        if self.field_expiry:
            for (prefix, cache), by_time in expiry.items():
                bkey = K.bucket_key(prefix, cache)
                for at_ms, names in by_time.items():
                    encoded = [name.encode("utf-8") for name in names]
                    batch.add(b"HPEXPIREAT", bkey, b"%d" % at_ms, b"FIELDS", b"%d" % len(names), *encoded)
        refused = [r for r in batch.execute() if isinstance(r, Exception)]
        if refused and self.field_expiry and any("unknown command" in str(r).lower() for r in refused):
            self.field_expiry = False
            self._log("cacheops_track: this server has no hash-field expiry (Redis < 7.4): buckets are not written")
            # no way to bound them: the buckets this flush wrote go rather than grow forever
            self.client.delete(*{K.bucket_key(p, c) for p, c in buckets})
        elif refused:
            raise refused[0]


LATENCY_BOUNDS_NS = tuple(bound * 1000 for bound in K.LATENCY_BOUNDS_US)


def prompt_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_LIVE: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _flush_all_at_exit() -> None:
    for recorder in list(_LIVE):
        try:
            recorder.close()
        except Exception:
            pass


def _after_fork() -> None:
    # The flush thread did not survive the fork, and the queued events belong to the parent.
    for recorder in list(_LIVE):
        recorder.queue.clear()
        recorder._thread = None
        recorder._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
