"""Evict cache entries: select -> plan (preview) -> backup -> execute -> log, the one destructive path.

plan()    streams the candidates (see selection.py) through the layouts and the selectors, and keeps
          only counts per cache, a small sample, and the selected keys spooled to a temp file: memory
          stays flat however large the keyspace or the selection.
execute() works through the spool in batches. For each batch it WATCHes the keys, re-reads them
          atomically together with their backup copy (evict_read.lua: the DUMP, or for a RedisJSON
          document the JSON itself, which is also what the re-check reads), learns which values
          are exactly the ones the preview judged, re-checks every selector on the others (a key
          the app rewrote since the preview is deleted only if it still matches), backs the batch
          up (fsync), then UNLINKs in MULTI/EXEC. A write to a watched key in between aborts the
          EXEC; then a compare-and-unlink script (evict_unlink.lua) deletes only the keys whose
          copy is still the one backed up, and a key changed in between is re-read and re-checked.
          Companion keys (the cacheops tag hash, a layout's companion keys) go with their entry.
          On a Redis Cluster the same steps run per hash slot, without WATCH/MULTI: the atomic
          read, the backup, then compare-and-unlink (_Deleter.run_by_slot, evict_scripts.py).
          Finally one event is appended to the operations log.
Never KEYS or FLUSH*; only keys a layout recognised as cache entries are ever deleted.
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import orjson
import redis
from redis.exceptions import RedisClusterException

from .. import faults
from ..errors import ConnectionFailed, UsageError
from ..inspect.catalog import build_context, decode_record
from ..inspect.hits import read_hit_records
from ..inspect.tags import read_tags
from ..layouts import BY_ID, Context, Entry
from ..ownkeys import is_companion_record
from ..semantic.neighbours import similar_to_text
from ..server import permissions
from ..server.keyspace import (
    DEFAULT_ELIDE,
    PREVIEW_LIMIT,
    SHOW_LIMIT,
    RawRecord,
    ScanOptions,
    ScanStats,
    iter_batches,
    read_records,
)
from ..server.slots import NodeLost
from ..server.topology import is_cluster
from . import oplog
from .backup import BackupWriter, SavedKey, default_backup_path, dump_sha1, server_time_ms
from .evict_scripts import ClusterEvictScripts, EvictScripts, KeyRead, PartialUnlink, record_digest
from .selection import Selection, batched

BATCH = 1000  # keys backed up (one fsync) and deleted per step
WATCH_SLICE = 125  # keys WATCHed per connection
READ_AHEAD = 2  # batches WATCHed and read while one is judged, backed up and deleted
DEDUPE_WINDOW = 10 * BATCH  # a key SCAN returns twice within this many is selected once (> READ_AHEAD batches)
MAX_ATTEMPTS = 5  # re-checks of a key the app keeps rewriting before it is left alone
SAMPLE_SIZE = 10

Progress = Callable[[int], None]


@dataclass
class Plan:
    """What an eviction would delete: the preview, and the selected keys (spooled, not in memory)."""

    selection: Selection
    total: int = 0
    bytes: int = 0
    per_cache: Counter = field(default_factory=Counter)
    per_layout: Counter = field(default_factory=Counter)
    sample: list[Entry] = field(default_factory=list)
    distances: dict[str, float] = field(default_factory=dict)
    candidates: int = 0  # keys looked at
    not_entries: int = 0  # candidates that exist but no layout recognised: never touched
    # what those were: a library's infrastructure by role (e.g. "cacheops operations log"), or "unknown"
    not_entries_kinds: Counter = field(default_factory=Counter)
    missing: int = 0  # candidates (e.g. --key) that do not exist
    no_age: int = 0  # with --older-than: entries that record no insertion time, so were not selected
    untracked: int = 0  # with --cold: entries the hit tracker has no record of, so were not considered
    source: str = ""
    seconds: float = 0.0
    _spool: IO[builtins.bytes] | None = field(default=None, repr=False)  # Plan.bytes shadows the type here
    _pending: list = field(default_factory=list, repr=False)  # spool lines of the current batch

    def _flush(self) -> None:
        if self._pending:
            self._pending.append(b"")
            assert self._spool is not None  # plan() opened it
            self._spool.write(b"\n".join(self._pending))
            self._pending = []

    def selected(self) -> Iterator[tuple[builtins.bytes, tuple, EntryInfo]]:
        """(key, digests of what was judged (value, tags) and its type, entry info) for every selected entry."""
        if self._spool is None:
            return
        self._spool.seek(0)
        for line in self._spool:  # lines of bytes
            head, _, info = line.rstrip(b"\n").partition(b"\t")
            key, value_digest, tags_digest_, kind, cache, companions = orjson.loads(head)
            yield base64.b64decode(key), (value_digest, tags_digest_, kind), EntryInfo(cache, companions, info)

    def keys(self) -> Iterator[builtins.bytes]:
        for key, _, _ in self.selected():
            yield key

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    def to_dict(self) -> dict:
        def sample_row(e: Entry) -> dict:
            row = e.to_dict()
            if e.key in self.distances:
                row["distance"] = self.distances[e.key]
            return row

        return {
            "selectors": self.selection.describe(),
            "matched": self.total,
            "bytes": self.bytes,
            "per_cache": dict(self.per_cache.most_common()),
            "per_layout": dict(self.per_layout),
            "sample": [sample_row(e) for e in self.sample],
            "candidates": self.candidates,
            "not_cache_entries": self.not_entries,
            "not_cache_entries_kinds": dict(self.not_entries_kinds),
            "missing": self.missing,
            "no_insertion_time": self.no_age,
            **({"untracked_not_considered": self.untracked} if self.selection.cold is not None else {}),
            "source": self.source,
            "seconds": round(self.seconds, 3),
            **({"distances": self.distances} if self.selection.similar is not None else {}),
        }


@dataclass
class EvictResult:
    plan: Plan
    deleted: int = 0
    companions_deleted: int = 0
    per_cache: Counter = field(default_factory=Counter)
    gone: int = 0  # vanished before the delete (expired, or deleted by the app)
    no_longer_matching: int = 0  # rewritten by the app since the preview, and no longer selected
    kept_busy: int = 0  # rewritten on every attempt: left alone
    backup: str | None = None
    event_id: str | None = None  # the operations log event (`cacheops history`)
    actor: dict | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "selectors": self.plan.selection.describe(),
            "matched": self.plan.total,
            "deleted": self.deleted,
            "companions_deleted": self.companions_deleted,
            "per_cache": dict(self.per_cache.most_common()),
            "gone_before_delete": self.gone,
            "no_longer_matching": self.no_longer_matching,
            "kept_busy": self.kept_busy,
            "backup": self.backup,
            "event_id": self.event_id,
            "audit_id": self.event_id,  # the same id under its earlier name, for scripts that read it
            "actor": self.actor,
            "seconds": round(self.seconds, 3),
        }


# -- plan -----------------------------------------------------------------------------------------


def plan(
    client: redis.Redis,
    selection: Selection,
    ctx: Context | None = None,
    sample_size: int = SAMPLE_SIZE,
    on_progress: Progress | None = None,
    server_side: bool | None = None,
) -> Plan:
    """Walk the candidates once and keep what the preview needs; nothing is changed."""
    if selection.empty:
        raise UsageError(
            "give at least one selector (--prompt, --key, --tag, --response-contains, ... or "
            "--cache NAME to evict a whole cache)"
        )
    started = time.monotonic()
    ctx = ctx or build_context(client, known_texts=selection.prompts)
    if selection.similar is not None and not selection.similar.distances:
        _find_neighbours(client, ctx, selection)
    result = Plan(
        selection, source=selection.source(), distances=dict(selection.similar.distances) if selection.similar else {}
    )
    result._spool = tempfile.TemporaryFile()  # noqa: SIM115  held by the plan until execute or close()
    limit = SHOW_LIMIT if selection.needs_full_values else PREVIEW_LIMIT
    full = selection.needs_full_decode  # else a listing decode: all the preview and the backup show
    recent = _RecentKeys()
    for records in _candidate_records(client, selection, ctx, limit, server_side):
        result.candidates += len(records)
        entries: list[tuple[Entry, RawRecord]] = []
        for rec in records:
            if rec.type == "none":
                result.missing += 1
                continue
            item = decode_record(rec, ctx, full)
            if isinstance(item, Entry):
                entries.append((item, rec))
            elif not is_companion_record(rec.key):
                result.not_entries += 1
                role = getattr(item, "role", "")  # an Infrastructure's, e.g. "cacheops operations log"
                result.not_entries_kinds[role.split(" of ", 1)[0] if role else f"unknown {rec.type} key"] += 1
        extra = read_tags(client, [rec.key for _, rec in entries]) if selection.needs_tags else [None] * len(entries)
        seen = _last_seen(client, entries, result) if selection.cold is not None else [None] * len(entries)
        for (entry, rec), tags, last_seen in zip(entries, extra, seen):
            if recent.seen(rec.key):
                continue
            if not selection.accepts(entry, tags, last_seen):
                if selection.older_than is not None and entry.inserted_at is None:
                    result.no_age += 1
                continue
            _add(result, entry, rec, tags, sample_size)
        result._flush()
        if on_progress:
            on_progress(len(records))
    result.seconds = time.monotonic() - started
    return result


class _RecentKeys:
    """The last DEDUPE_WINDOW..2*DEDUPE_WINDOW keys seen, in bounded memory. SCAN may return a key
    twice; selected twice, a key read ahead in one batch could be deleted by an earlier batch, and its
    "gone" marker would then keep restore from bringing back the copy that was deleted. Repeats
    further apart than the read-ahead are harmless: the key is gone by then and is not backed up again."""

    def __init__(self) -> None:
        self.current: set[bytes] = set()
        self.previous: set[bytes] = set()

    def seen(self, key: bytes) -> bool:
        if key in self.current or key in self.previous:
            return True
        if len(self.current) >= DEDUPE_WINDOW:
            self.previous, self.current = self.current, set()
        self.current.add(key)
        return False


def _last_seen(client, entries: list[tuple[Entry, RawRecord]], result: Plan) -> list[float | None]:
    """--cold: each entry's tracked last hit (its write time if never hit); untracked ones counted."""
    out: list[float | None] = []
    for record in read_hit_records(client, [rec.key for _, rec in entries]):
        if record is None:
            result.untracked += 1
            out.append(None)
        else:
            out.append(record.last_hit or record.written)
    return out


def _add(result: Plan, entry: Entry, rec: RawRecord, tags: dict | None, sample_size: int) -> None:
    result.total += 1
    result.bytes += entry.bytes or 0
    result.per_cache[entry.cache] += 1
    result.per_layout[entry.layout] += 1
    if entry.prompt is None and entry.kind == "exact" and result.selection.prompts:
        # exact caches store only md5(prompt): the text is the user's own
        layout = BY_ID[entry.layout]
        entry.prompt = next((q.text for q in result.selection.queries() if layout.matches(entry, q)), None)
    # The spool line: the key, a digest of exactly what was judged (value as read, and the tags if
    # they were part of the selection), and what the backup says about the entry. At delete time an
    # unchanged digest means the selectors' verdict stands; a changed one means re-decode and re-check.
    # The entry info stays serialised until it is copied into the backup line: "<head>\t<info>"
    # (JSON never holds a raw tab).
    info = entry_info(entry)
    result._pending.append(
        orjson.dumps(
            [
                base64.b64encode(rec.key).decode(),
                record_digest(rec),
                tags_digest(tags if result.selection.needs_tags else None),
                rec.type,
                info.cache,
                info.companion_keys,
            ]
        )
        + b"\t"
        + info.json
    )
    if len(result.sample) < sample_size:
        if tags:
            entry.tags = {**tags, **(entry.tags or {})}
        result.sample.append(result.selection.presentable(entry))


def _candidate_records(
    client, selection: Selection, ctx: Context, limit: int, server_side: bool | None
) -> Iterator[list[RawRecord]]:
    if selection.source() == "scan":
        opts = ScanOptions(match=selection.scan_match(), limit=limit, server_side=server_side)
        yield from iter_batches(client, opts, ScanStats())
        return
    for keys in selection.candidate_batches(client, ctx, BATCH):
        yield read_records(client, keys, limit, DEFAULT_ELIDE)


def _find_neighbours(client, ctx: Context, selection: Selection) -> None:
    sim = selection.similar
    assert sim is not None  # called only for --similar-to
    found = similar_to_text(
        client, ctx, sim.text, sim.threshold, cache=selection.cache, system=selection.system, embedding=sim.embedding
    )
    sim.distances = {n.entry.key: float(n.distance) for n in found}


# -- execute --------------------------------------------------------------------------------------


def execute(
    client: redis.Redis,
    the_plan: Plan,
    backup_path: Path | str | None = None,
    actor: oplog.Actor | None = None,
    server: str | None = None,
    on_progress: Progress | None = None,
    ctx: Context | None = None,
) -> EvictResult:
    """Back up and delete what the plan selected (re-checked key by key), then record it in
    the operations log."""
    started = time.monotonic()
    selection = the_plan.selection
    ctx = ctx or build_context(client, known_texts=selection.prompts)
    actor = actor or oplog.whoami(client)
    result = EvictResult(the_plan, actor=actor.to_dict())
    path = Path(backup_path) if backup_path else default_backup_path("evict")
    cluster = is_cluster(client)
    scripts = ClusterEvictScripts(client) if cluster else EvictScripts(client)
    first = next(the_plan.keys(), None)
    if first is not None:  # before the backup file is created: a refused user changes nothing
        permissions.require(client, "evict", ["scripts", "transactions", "unlink", "oplog"], under=first)
    writer = BackupWriter(
        path, {"created_at": time.time(), "server": server, "actor": actor.to_dict(), "selectors": selection.describe()}
    )
    result.backup = str(writer.path)
    deleter = _Deleter(client, scripts, ctx, selection, writer, result)
    started_id = None
    try:
        started_id = oplog.begin(client, "evict", actor, selection.describe(), result.backup)
        (deleter.run_by_slot if cluster else deleter.run)(batched(the_plan.selected(), BATCH), on_progress)
    except NodeLost as exc:
        raise ConnectionFailed(
            f"{exc}. {result.deleted:,} entries were deleted before that, every one of them in the backup "
            f"{result.backup}; once a replica has taken over (`cacheops doctor` shows the shards), run the "
            "same evict again to finish it"
        ) from None
    finally:
        writer.close()
        result.seconds = time.monotonic() - started
        counts = {
            "matched": the_plan.total,
            "deleted": result.deleted,
            "per_cache": dict(result.per_cache),
            "gone": result.gone,
            "no_longer_matching": result.no_longer_matching,
            "kept_busy": result.kept_busy,
        }
        try:  # also after a failure part-way: what was deleted is on record, with its backup
            result.event_id = oplog.record(
                client, "evict", actor, selection.describe(), counts, result.backup, started=started_id
            )
        except (redis.RedisError, RedisClusterException):
            result.event_id = None  # the connection is gone; the original error is what matters
    return result


Judged = tuple[bytes, "tuple | None", "EntryInfo | None"]  # key, digests of what the preview judged, entry info
Chosen = tuple["KeyRead", "EntryInfo", "list[SavedKey]"]  # what is read, backup info, companion keys


class _Deleter:
    """Deletes batch after batch of judged keys. Per batch, on its own connections:
    WATCH the keys -> atomic read with the backup copy -> re-check -> backup (fsync) ->
    MULTI / UNLINK ... / EXEC. Any write to a watched key in between aborts the EXEC, and then the
    batch falls back to the compare-and-unlink script, key by key. The next READ_AHEAD batches are
    read while the current one is judged and backed up, so the server and the client work at the
    same time."""

    def __init__(
        self,
        client,
        scripts: EvictScripts,
        ctx: Context,
        selection: Selection,
        writer: BackupWriter,
        result: EvictResult,
    ):
        self.client, self.scripts, self.ctx, self.selection = client, scripts, ctx, selection
        self.writer, self.result = writer, result
        self.limit = SHOW_LIMIT if selection.needs_full_values else PREVIEW_LIMIT

    def run(self, batches: Iterator[list[Judged]], on_progress: Progress | None) -> None:
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        batches = iter(batches)
        ahead: deque = deque()  # batches being read (in order) while the oldest is settled

        def read_more() -> None:
            while len(ahead) < READ_AHEAD:
                following = next(batches, None)
                if following is None:
                    return
                ahead.append(pool.submit(self._watch_and_read, following))

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cacheops-evict") as pool:
            read_more()
            # the batch whose MULTI/EXECs were sent and whose replies are not read yet, and the one
            # being sent (both closed on the way out)
            previous: tuple[int, list[_WatchedSlice], list] | None = None
            current: tuple[int, list[_WatchedSlice], list | None] | None = None
            try:
                while ahead:
                    items, watched, now_ms = ahead.popleft().result()
                    read_more()
                    current = (len(items), watched, None)
                    sent = self._send(items, watched, now_ms)
                    if previous is not None:  # its replies, while the server runs this batch's
                        self._finish(*previous, on_progress)
                    previous, current = (len(items), watched, sent), None
                if previous is not None:
                    self._finish(*previous, on_progress)
                    previous = None
            finally:
                for batch in (previous, current):
                    if batch is not None:
                        for watch in batch[1]:
                            watch.close()
                for pending in ahead:  # after a failure: release the batches read ahead as well
                    for watch in pending.result()[1]:
                        watch.close()

    def run_by_slot(self, batches: Iterator[list[Judged]], on_progress: Progress | None) -> None:
        """The same on a Redis Cluster, batch by batch: read (the atomic read script per hash slot,
        each primary's calls in one pipeline, the primaries in parallel) -> re-check -> backup
        (fsync) -> compare-and-unlink per slot. No WATCH/MULTI there: a transaction holds one slot,
        so a batch spread over the slots would need a transaction, and a connection held through
        the backup, per entry or two; compare-and-unlink gives the same guarantee (only the version
        backed up is deleted; a key changed in between is re-read and re-checked)."""
        for items in batches:
            digests = [d for _, d, _ in items]
            reads = self.scripts.read(
                [key for key, _, _ in items],
                self.limit,
                [d[0] if d else "" for d in digests],
                [d[2] if d else "" for d in digests],
            )
            self._unlink_compared(self._backup(self._judge(items, reads), None))
            faults.reached("evict.settled")
            if on_progress:
                on_progress(len(items))

    def _finish(self, count: int, watched: list[_WatchedSlice], sent: list, on_progress: Progress | None) -> None:
        try:
            self._outcomes(sent)
        finally:
            for watch in watched:
                watch.close()  # UNWATCH if still watching, connection back to the pool
        faults.reached("evict.settled")
        if on_progress:
            on_progress(count)

    def _watch_and_read(self, items: list[Judged]):
        """WATCH and read the batch in slices of WATCH_SLICE keys, each on its own connection (the
        server checks each new watched key against the client's list: cost grows with its square).
        Every slice's WATCH and read are sent before any reply is read: one round trip per batch."""
        watched: list[_WatchedSlice] = []
        try:
            for start in range(0, len(items), WATCH_SLICE):
                part = items[start : start + WATCH_SLICE]
                keys = [key for key, _, _ in part]
                watch = _WatchedSlice(self.client.connection_pool, keys)
                watch.expected = [d[0] if d else "" for _, d, _ in part]
                watched.append(watch)
                watch.send("WATCH", *keys)
                if start == 0:
                    watch.send("TIME")
                watch.send(
                    *self.scripts.read_command(
                        keys, self.limit, watch.expected, [d[2] if d else "" for _, d, _ in part]
                    )
                )
            now_ms = None
            for n, watch in enumerate(watched):
                watch.receive()  # WATCH: OK
                if n == 0:
                    now_ms = _time_ms(watch.receive())
                watch.reads = self.scripts.parse_read(watch.keys, watch.receive(), self.limit, watch.expected)
            return items, watched, now_ms
        except BaseException:
            for watch in watched:
                watch.close()
            raise

    def _judge(self, items: list[Judged], reads: list[KeyRead]) -> list[tuple[KeyRead, EntryInfo | None, Entry | None]]:
        """The reads still selected, with the preview's entry info (None: re-judged, then the entry)."""
        judged = {key: (digests, info) for key, digests, info in items}
        chosen: list[tuple[KeyRead, EntryInfo | None, Entry | None]] = []
        for read in reads:
            if read.copy is None:
                self.result.gone += 1
                continue
            digests, info = judged.get(read.key, (None, None))
            if (
                read.unchanged
                and digests is not None
                and (not self.selection.needs_tags or tags_digest(read.tags) == digests[1])
            ):
                chosen.append((read, info, None))  # exactly what the preview judged: still selected
                continue
            # rewritten since it was judged: judge it again
            item = decode_record(read.rec, self.ctx, self.selection.needs_full_decode)
            if isinstance(item, Entry) and self.selection.accepts(item, read.tags):
                chosen.append((read, entry_info(item), item))
            else:
                self.result.no_longer_matching += 1
        return chosen

    def _backup(self, judged: list[tuple[KeyRead, EntryInfo | None, Entry | None]], now_ms: int | None) -> list[Chosen]:
        """Write the backup lines of what is still selected (one fsync). now_ms: the server time the
        reads' PTTLs are relative to (on a cluster each read carries its node's)."""
        extra = _layout_companions(self.client, [(entry, read, info) for read, info, entry in judged], self.ctx)
        chosen: list[Chosen] = []
        for (read, info, _), comps in zip(judged, extra):
            assert read.copy is not None and info is not None  # _judge keeps only what is there, with its info
            comps = comps + read.own_keys
            when = read.now_ms if read.now_ms is not None else now_ms
            assert when is not None  # one server: the batch's TIME; a cluster: each node's
            self.writer.add(
                SavedKey(read.key, read.copy, read.pttl, read.hash_digest, read.copy_format), when, info.json, comps
            )
            chosen.append((read, info, comps))
        self.writer.commit()  # on disk before anything in it is deleted
        faults.reached("evict.backed_up")
        return chosen

    def _send(self, items: list[Judged], watched: list[_WatchedSlice], now_ms: int) -> list:
        """Judge and back up the batch (one fsync), then send each slice's MULTI/UNLINK/EXEC; the
        replies are read by _outcomes, after the next batch has been judged and backed up."""
        slices = [self._judge(items, watch.reads) for watch in watched]
        backed_up = iter(self._backup([c for chosen in slices for c in chosen], now_ms))
        sent = []
        for watch, judged in zip(watched, slices):
            chosen = [next(backed_up) for _ in judged]
            if chosen:
                companions = [c.key for _, _, comps in chosen for c in comps]
                watch.transaction([read.key for read, _, _ in chosen], companions)
                sent.append((watch, chosen))
        faults.reached("evict.sent")
        return sent

    def _outcomes(self, sent: list) -> None:
        for watch, chosen in sent:
            removed = watch.outcome()
            if removed is None:  # the app wrote one of these keys since the read: key by key
                self._unlink_compared(chosen)
            elif removed == len(chosen):
                for read, info, comps in chosen:
                    self._count(read, info, comps, 1)
            else:
                # Only expiry can remove a watched key without aborting the EXEC on old servers
                # (Redis >= 6.0.9 aborts then too); which ones is unknown, and restore skips
                # entries whose expiry has passed anyway.
                for i, (read, info, comps) in enumerate(chosen):
                    self._count(read, info, comps, 1 if i < removed else 0)

    def _count(self, read: KeyRead, info: EntryInfo, comps: list[SavedKey], code: int) -> None:
        if code == 1:
            self.result.deleted += 1
            self.result.companions_deleted += len(comps)
            self.result.per_cache[info.cache] += 1
        else:
            self.writer.not_deleted(read.key, dump_sha1(read.copy or b""), "gone" if code == 0 else "changed")
            if code == 0:
                self.result.gone += 1

    def _unlink_compared(self, chosen: list[Chosen]) -> None:
        """Compare-and-unlink each key against the copy backed up; re-read and re-judge the changed."""
        if not chosen:
            return
        for _attempt in range(MAX_ATTEMPTS):
            items = [
                (read.key, dump_sha1(read.copy or b""), read.copy_format, [c.key for c in comps])
                for read, _, comps in chosen
            ]
            try:
                codes = self.scripts.unlink(items)
            except PartialUnlink as partial:  # a primary was lost: count what is known, then stop
                for (read, info, comps), code in zip(chosen, partial.codes):
                    if code is not None:
                        self._count(read, info, comps, code)
                raise partial.error from None
            retry: list[Judged] = []
            for (read, info, comps), code in zip(chosen, codes):
                self._count(read, info, comps, code)
                if code == -1:
                    retry.append((read.key, None, None))  # no digest: decode and judge afresh
            if not retry:
                return
            now_ms = server_time_ms(self.client)
            keys = [key for key, _, _ in retry]
            chosen = self._backup(self._judge(retry, self.scripts.read(keys, self.limit)), now_ms)
            if not chosen:
                return
        self.result.kept_busy += len(chosen)


def _time_ms(reply) -> int:
    seconds, micros = reply
    return int(seconds) * 1000 + int(micros) // 1000


def tags_digest(tags: dict | None) -> str | None:
    return hashlib.sha1(orjson.dumps(tags or {}, option=orjson.OPT_SORT_KEYS)).hexdigest() if tags is not None else None


@dataclass(slots=True)
class EntryInfo:
    """What execute needs of a selected entry besides its key: its cache (for the counts), the
    companion keys its layout names (deleted and backed up with it), and the JSON object the backup
    line says about it, kept serialised from the preview to the backup."""

    cache: str
    companion_keys: list[str] | None
    json: bytes


def entry_info(entry: Entry) -> EntryInfo:
    """What the backup line says about the entry, for people reading it (restore needs only the
    saved copy), and the companion keys its layout names."""
    info: dict[str, object] = {
        "layout": entry.layout,
        "cache": entry.cache,
        "model": entry.model,
        "prompt": entry.prompt,
        "answer": (entry.answer or "")[:500] or None,
        "inserted_at": entry.inserted_at,
    }
    layout = BY_ID.get(entry.layout)
    companions = layout.companion_keys(entry) if layout is not None else []
    if companions:
        companions = [k if isinstance(k, str) else k.decode("utf-8", "backslashreplace") for k in companions]
        info["companion_keys"] = companions
    return EntryInfo(entry.cache, companions or None, orjson.dumps(info, default=str))


def _layout_companions(
    client, chosen: list[tuple[Entry | None, KeyRead, EntryInfo | None]], ctx: Context
) -> list[list[SavedKey]]:
    """DUMP + PTTL of the companion keys a layout names for each entry (GPTCache's vector hash, ...):
    those of the re-decoded entry if it changed, else those the preview recorded. The cacheops tag
    hash is read with the entry itself; most entries have no other companions."""
    wanted: list[list[bytes]] = []
    for entry, _read, info in chosen:
        if entry is not None:
            layout = BY_ID.get(entry.layout)
            names = layout.companion_keys(entry) if layout is not None else []
        else:
            names = (info.companion_keys if info is not None else None) or []
        wanted.append([k.encode("utf-8") if isinstance(k, str) else k for k in names])
    if not any(wanted):
        return [[] for _ in chosen]
    pipe = client.pipeline(transaction=False)
    for keys in wanted:
        for key in keys:
            pipe.dump(key)
            pipe.pttl(key)
    replies = iter(pipe.execute())
    out = []
    for keys in wanted:
        saved = []
        for key in keys:
            dump, pttl = next(replies), next(replies)
            if dump is not None:
                saved.append(SavedKey(key, dump, pttl if isinstance(pttl, int) else -1))
        out.append(saved)
    return out


class _WatchedSlice:
    """One connection of the pool that WATCHes a slice of a batch until its MULTI/EXEC: commands are
    sent without waiting, replies read in order. A connection left with unread replies (an error
    part-way) is disconnected before it goes back to the pool; one still watching is UNWATCHed."""

    def __init__(self, pool, keys: list[bytes]):
        self.pool, self.keys = pool, keys
        self.conn = pool.get_connection()
        self.pending = 0  # replies sent for and not yet read
        self.watching = True
        self.reads: list[KeyRead] = []
        self.expected: list[str] = []  # the preview's digest of each key ('' if none)
        self._queued = 0

    def send(self, *args) -> None:
        self.conn.send_command(*args)
        self.pending += 1

    def receive(self):
        self.pending -= 1
        return self.conn.read_response()

    def transaction(self, keys: list[bytes], companions: list[bytes]) -> None:
        self.send("MULTI")
        self.send("UNLINK", *keys)
        if companions:
            self.send("UNLINK", *companions)
        self._queued = 2 if companions else 1
        self.send("EXEC")

    def outcome(self) -> int | None:
        """UNLINKed entry count, or None when a watched key changed and the EXEC was aborted."""
        self.receive()  # MULTI: OK
        for _ in range(self._queued):
            self.receive()  # QUEUED
        replies = self.receive()
        self.watching = False  # EXEC ends the WATCH, aborted or not
        return None if replies is None else replies[0]

    def close(self) -> None:
        if self.conn is None:
            return
        try:
            if self.pending:
                self.conn.disconnect()  # unread replies: the connection cannot be reused
            elif self.watching:
                self.send("UNWATCH")
                self.receive()
        except redis.RedisError:
            self.conn.disconnect()
        finally:
            self.pool.release(self.conn)
            self.conn = None
