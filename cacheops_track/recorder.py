"""The recorder: events appended in memory on the app's hot path, written by a background thread.

A lookup costs the app one deque append (no Redis round trip, no lock). A daemon thread wakes every
`flush_interval` seconds, folds the events into per-entry records and per-cache buckets and writes
them in two pipelines. Nothing here raises into the app or waits on Redis in the app's thread: past
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
            events = []
            queue = self.queue
            while queue:
                try:
                    events.append(queue.popleft())
                except IndexError:
                    break
            if not events:
                return 0
            try:
                self._write(self._resolve(events))
                self.flushed_events += len(events)
                return len(events)
            except Exception as exc:
                self.failed_flushes += 1
                self.dropped += len(events)
                self._log(f"cacheops_track: could not write {len(events)} events ({type(exc).__name__}: {exc})")
                return 0

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

    def _resolve(self, raw_events: list[tuple]) -> list[Event]:
        out = []
        for n, raw in enumerate(raw_events):
            if n % EVENT_CHUNK == EVENT_CHUNK - 1:
                time.sleep(0)  # let the app's threads have the GIL between chunks
            try:
                event = raw[0].resolve(raw)
            except Exception:
                self.dropped += 1
                continue
            if event is not None:
                out.append(event)
        return out

    def _write(self, events: list[Event]) -> None:
        records: dict[str, dict] = {}
        buckets: dict[tuple[bytes, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
        expiry: dict[tuple[bytes, str], dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
        totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(int))
        caches: dict[str, float] = {}
        groups: dict[tuple[str, str, int], list[int]] = {}  # (cache, model, minute) -> COUNTERS
        latency: dict[str, list] = {}  # cache -> [count, sum_us, per-bound counts]
        for n, ev in enumerate(events):
            if n % (4 * EVENT_CHUNK) == 0:
                time.sleep(0)  # let the app's threads have the GIL between chunks
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
            group = groups.get((ev.cache, model, int(ev.ts // 60) * 60))
            if group is None:
                group = groups[(ev.cache, model, int(ev.ts // 60) * 60)] = [0, 0, 0, 0, 0]
            if ev.kind == HIT:
                group[0] += 1
                group[2] += ev.input_tokens
                group[3] += ev.output_tokens
                if ev.estimated:
                    group[4] += 1
                if ev.key is not None:
                    rec = records.get(ev.key)
                    if rec is None:
                        rec = records[ev.key] = {"reset": False, "hits": 0, "fields": {}, "cache": ev.cache}
                    rec["hits"] += 1
                    fields = rec["fields"]
                    fields[K.LAST_HIT] = max(int(ev.ts * 1000), fields.get(K.LAST_HIT, 0))
                    fields.setdefault(K.CACHE, ev.cache)
                    if ev.model:
                        fields.setdefault(K.MODEL, ev.model)
                    if ev.distance is not None:
                        fields[K.LAST_DISTANCE] = ev.distance
            else:
                group[1] += 1
            if ev.latency_us is not None:
                lat = latency.get(ev.cache)
                if lat is None:
                    lat = latency[ev.cache] = [0, 0.0, [0] * len(K.LATENCY_BOUNDS_US)]
                lat[0] += 1
                lat[1] += ev.latency_us
                at = bisect_left(K.LATENCY_BOUNDS_US, ev.latency_us)
                if at < len(K.LATENCY_BOUNDS_US):
                    lat[2][at] += 1

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
        for cache, (count, sum_us, per_bound) in latency.items():
            total = totals[cache]
            total[K.LATENCY_FIELD + "count"] += count
            total[K.LATENCY_FIELD + "sum_us"] += sum_us
            running = 0
            for bound, n in zip(K.LATENCY_BOUNDS_US, per_bound):
                running += n  # Prometheus buckets are cumulative
                if running:
                    total[f"{K.LATENCY_FIELD}{bound}"] += running

        pipe = _ChunkedPipeline(self.client)
        order = list(records)
        for entry_key in order:
            rec = records[entry_key]
            rkey = K.entry_record_key(entry_key)
            if rec["reset"]:
                pipe.delete(rkey)  # the entry was (re)written: an earlier life's record goes
            if rec["hits"]:
                pipe.hincrby(rkey, K.HITS, rec["hits"])
            elif rec["reset"]:
                rec["fields"][K.HITS] = 0
            pipe.hset(rkey, mapping=rec["fields"])
            pipe.pttl(entry_key)
        for (prefix, cache), fields in buckets.items() if self.field_expiry else ():
            bkey = K.bucket_key(prefix, cache)
            for name, n in fields.items():
                pipe.hincrby(bkey, name, n)
        for cache, fields in totals.items():
            tkey = K.bucket_key(K.TOTALS_PREFIX, cache)
            for name, n in fields.items():
                if isinstance(n, float):
                    pipe.hincrbyfloat(tkey, name, n)
                else:
                    pipe.hincrby(tkey, name, n)
        for cache, last in caches.items():
            source = self._sources.get(cache)
            pipe.hset(
                K.TRACKED,
                cache,
                json.dumps(
                    {
                        "kind": source.kind if source else None,
                        "library": source.library if source else None,
                        "last_event": round(last, 3),
                    }
                ),
            )
        replies = pipe.execute(raise_on_error=False)
        per_record = [2 + (1 if records[k]["reset"] else 0) + (1 if records[k]["hits"] else 0) for k in order]
        pttls, at = [], 0
        for width in per_record:
            pttls.append(replies[at + width - 1])
            at += width
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply

        # Second round trip: each record expires with its entry; buckets' fields with their retention.
        pipe = _ChunkedPipeline(self.client)
        for entry_key, pttl in zip(order, pttls):
            rkey = K.entry_record_key(entry_key)
            if isinstance(pttl, int) and pttl > 0:
                pipe.pexpire(rkey, pttl)
            elif pttl == -1:
                pipe.expire(rkey, self.entry_idle_seconds)
            else:
                pipe.delete(rkey)  # the entry is gone (expired, evicted, cleared): so is its record
        if self.field_expiry:
            for (prefix, cache), by_time in expiry.items():
                bkey = K.bucket_key(prefix, cache)
                for at_ms, names in by_time.items():
                    pipe.execute_command("HPEXPIREAT", bkey, at_ms, "FIELDS", len(names), *names)
        replies = pipe.execute(raise_on_error=False)
        refused = [r for r in replies if isinstance(r, Exception)]
        if refused and self.field_expiry and any("unknown command" in str(r).lower() for r in refused):
            self.field_expiry = False
            self._log("cacheops_track: this server has no hash-field expiry (Redis < 7.4): buckets are not written")
            # no way to bound them: the buckets this flush wrote go rather than grow forever
            self.client.delete(*{K.bucket_key(p, c) for p, c in buckets})
        elif refused:
            raise refused[0]


CHUNK = 64  # commands sent between two yields of the GIL
EVENT_CHUNK = 16  # events resolved (about 10 us each) between two yields of the GIL


class _ChunkedPipeline:
    """A pipeline sent CHUNK commands at a time, yielding the GIL between chunks: one large flush
    would hold it (packing thousands of commands) and keep the server busy long enough to show in
    the app's p99; several small ones interleave with the app's lookups."""

    def __init__(self, client):
        self.pipe = client.pipeline(transaction=False)
        self.replies: list = []

    def __getattr__(self, name):
        method = getattr(self.pipe, name)

        def queue(*args, **kwargs):
            method(*args, **kwargs)
            if len(self.pipe) >= CHUNK:
                self.replies.extend(self.pipe.execute(raise_on_error=False))
                time.sleep(0)

        return queue

    def execute(self, raise_on_error: bool = False) -> list:
        if len(self.pipe):
            self.replies.extend(self.pipe.execute(raise_on_error=False))
        return self.replies


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
