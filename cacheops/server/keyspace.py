"""The streaming scan engine: SCAN batches -> RawRecords (type, TTL, size, bounded value).

Two paths give the same records:
- server-side: one read-only script call per SCAN batch (scan_batch.lua) does SCAN, TYPE, PTTL,
  MEMORY USAGE and the bounded value reads on the server, and a reader thread keeps the next batch
  in flight while the caller decodes the current one;
- plain: SCAN, then one pipeline of TYPE/PTTL/MEMORY USAGE and one of value reads per batch, for
  servers or ACLs that forbid scripts.
Memory stays flat: at most three batches are held at once, and no value is read past `limit` bytes.
Never KEYS; nothing here writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import redis

from .. import faults
from ..errors import ConnectionFailed
from .cluster_scan import NOT_SERVED, merged_batches
from .cluster_view import refuse_moving_keys
from .connection import connections_made, run_id
from .readahead import read_ahead
from .scripting import Script
from .topology import is_cluster, scan_nodes

PREVIEW_LIMIT = 64 * 1024  # bytes read of any one value while listing
SHOW_LIMIT = 16 * 1024 * 1024  # bytes read of one value when showing a single entry
DEFAULT_ELIDE = ("prompt_vector", "content_vector", "vector")  # vector fields: length is enough

HashValue = dict  # field bytes -> bytes, or int (the byte length of an elided/unread field)
Value = bytes | HashValue | None


@dataclass(slots=True)
class RawRecord:
    key: bytes
    type: str  # "string", "hash", "ReJSON-RL", "none" (gone), ...
    pttl: int  # ms; -1 no expiry, -2 gone
    memory: int | None  # MEMORY USAGE bytes
    value: Value = None
    size: int | None = None  # full value length where measured (strings, JSON text)
    truncated: bool = False  # some of the value was not read
    _key_text: str | None = field(default=None, repr=False, compare=False)

    @property
    def key_text(self) -> str:
        """The key as text (invalid UTF-8 shown as \\xNN), decoded once: every layout asks for it."""
        text = self._key_text
        if text is None:
            text = self._key_text = self.key.decode("utf-8", "backslashreplace")
        return text

    @property
    def key_is_utf8(self) -> bool:
        try:
            self.key.decode("utf-8")
            return True
        except UnicodeDecodeError:
            return False


@dataclass
class ScanOptions:
    match: str | None = None
    count: int = 1000
    type: str | None = None
    limit: int = PREVIEW_LIMIT  # 0: no value is read (key, type, TTL, memory only)
    elide: tuple[str, ...] = DEFAULT_ELIDE
    server_side: bool | None = None  # None = try the script, fall back to plain


@dataclass
class ScanStats:
    path: str = ""
    batches: int = 0
    keys: int = 0
    fallback_reason: str = ""
    extra: dict = field(default_factory=dict)


_SCAN_BATCH = Script(Path(__file__).with_name("scan_batch.lua"), prelude=True, read_only=True)


def _s(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# -- server-side path -----------------------------------------------------------------------------

_TYPE_NAMES: dict[bytes, str] = {}  # TYPE reply -> str, decoded once per type, not per key


def _script_records(reply) -> tuple[bytes, list[RawRecord]]:
    cursor = reply[0]
    out = []
    items = iter(reply)
    next(items)
    names = _TYPE_NAMES
    for key, kind, pttl, mem, value, size, trunc in zip(items, items, items, items, items, items, items):
        name = names.get(kind)
        if name is None:
            name = names[kind] = _s(kind)
        if name == "hash" and isinstance(value, list):
            pairs = iter(value)
            value = dict(zip(pairs, pairs))  # field, value, field, value, ... (no slice copies)
        out.append(
            RawRecord(key, name, pttl, None if mem < 0 else mem, value or None, None if size < 0 else size, bool(trunc))
        )
    return cursor, out


KeyFilter = Callable[[list[bytes]], list[bytes]]  # the keys of a batch that may be read on that node


class ScriptUnavailable(Exception):
    pass


def _script_batches(client: redis.Redis, opts: ScanOptions, stats: ScanStats) -> Iterator[list[RawRecord]]:
    try:
        script = _SCAN_BATCH.bind(client)
    except redis.ResponseError as exc:  # NOPERM, scripting disabled
        raise ScriptUnavailable(str(exc)) from None
    args = ["0", str(opts.count), str(opts.limit), opts.match or "", opts.type or "", ",".join(opts.elide)]

    def call(cursor):
        args[0] = cursor
        return script(args=args)

    # First call in this thread so a refusal falls back cleanly before anything was yielded.
    try:
        first = call("0")
    except redis.ResponseError as exc:
        raise ScriptUnavailable(str(exc)) from None
    stats.path = "server-side script"

    def replies() -> Iterator[list[RawRecord]]:
        reply = first
        while True:
            cursor, records = _script_records(reply)
            yield records
            if _s(cursor) == "0":
                return
            reply = call(cursor)

    # Two batches in flight while one is decoded.
    for records in read_ahead(replies(), depth=2, name="cacheops-scan"):
        stats.batches += 1
        stats.keys += len(records)
        yield records


# -- plain path -----------------------------------------------------------------------------------


def read_records(
    client: redis.Redis, keys: list[bytes], limit: int = PREVIEW_LIMIT, elide: tuple[str, ...] = ()
) -> list[RawRecord]:
    """TYPE/PTTL/MEMORY USAGE in one pipeline, bounded value reads in a second."""
    if not keys:
        return []
    refuse_moving_keys(client, keys)
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.type(key)
        pipe.pttl(key)
        pipe.execute_command("MEMORY", "USAGE", key, "SAMPLES", 0)  # exact: sampling misses big fields
    meta = pipe.execute(raise_on_error=False)
    records = []
    for i, key in enumerate(keys):
        kind, pttl, mem = meta[3 * i : 3 * i + 3]
        records.append(
            RawRecord(key, _s(kind), pttl if isinstance(pttl, int) else -2, mem if isinstance(mem, int) else None)
        )
    if limit <= 0:
        return records
    pipe = client.pipeline(transaction=False)
    plan: list[str | None] = []
    # Big values are read whole and cut here, exactly as the script cuts them on the server: a hash
    # field or a JSON document cannot be read partially, and both paths must list the same entries.
    for rec in records:
        if rec.type == "string":
            pipe.strlen(rec.key)
            pipe.getrange(rec.key, 0, limit - 1)
            plan.append("string")
        elif rec.type == "hash":
            pipe.hgetall(rec.key)
            plan.append("hash")
        elif rec.type == "ReJSON-RL":
            pipe.execute_command("JSON.GET", rec.key)
            plan.append("json")
        else:
            plan.append(None)
    replies = iter(pipe.execute(raise_on_error=False))
    for rec, step in zip(records, plan):
        if step == "string":
            size, value = next(replies), next(replies)
            if isinstance(size, int) and isinstance(value, bytes):
                rec.size, rec.value, rec.truncated = size, value, size > len(value)
        elif step == "hash":
            value = next(replies)
            if isinstance(value, dict):
                rec.value = {
                    k: (len(v) if k.decode("utf-8", "replace") in elide else v if len(v) <= limit else v[:limit])
                    for k, v in value.items()
                }
                rec.truncated = any(isinstance(v, bytes) and len(v) > limit for v in value.values())
        elif step == "json":
            value = next(replies)
            if isinstance(value, bytes):
                rec.size = len(value)
                rec.value, rec.truncated = value[:limit], len(value) > limit
    return records


def _plain_batches(
    client: redis.Redis, opts: ScanOptions, stats: ScanStats, keep: KeyFilter | None = None
) -> Iterator[list[RawRecord]]:
    stats.path = stats.path or "plain pipeline"
    cursor = 0
    while True:
        cursor, found = client.scan(cursor, match=opts.match, count=opts.count, _type=opts.type)
        if found:
            keys = cast(list[bytes], found)  # raw client: bytes
            stats.batches += 1
            stats.keys += len(keys)
            if keep is None:
                yield read_records(client, keys, opts.limit, opts.elide)
            else:  # keys the node does not serve are passed on unread, as the script reports them
                kept = keep(keys)
                read = {r.key: r for r in read_records(client, kept, opts.limit, opts.elide)}
                yield [read.get(key) or RawRecord(key, NOT_SERVED, -2, None) for key in keys]
        if int(cursor) == 0:
            return


def read_keys(client: redis.Redis, keys: list[bytes], opts: ScanOptions, asking: bool = False) -> list[RawRecord]:
    """The records of `keys` on one node, read by the batch script (so a key of a slot the node does not
    serve comes back as NOT_SERVED instead of an error). asking: the node is importing their slot; ASKING
    before the call lets the script read the keys it already holds. Never the plain pipeline: on a
    Redis 8.0-8.2 node, a CLIENT NO-TOUCH command on a key of a migrating slot crashes the server, a
    script's does not."""
    if not keys:
        return []
    script = _SCAN_BATCH.bind(client)
    args = ["", str(opts.count), str(opts.limit), "", "", ",".join(opts.elide), *keys]
    if not asking:
        reply = script(args=args)
    else:
        pipe = client.pipeline(transaction=False)
        pipe.execute_command("ASKING")
        pipe.execute_command(*script.command(args=args))
        reply = pipe.execute()[1]
    return _script_records(reply)[1]


def iter_batches(
    client: redis.Redis, opts: ScanOptions | None = None, stats: ScanStats | None = None
) -> Iterator[list[RawRecord]]:
    """Every key (matching opts) exactly as SCAN yields it, in batches of RawRecords.

    Keys deleted mid-scan come back with type "none"; SCAN may repeat a key it already returned
    (its guarantee is "at least once"), which callers that count treat as harmless noise.
    On a Redis Cluster (or with read_from_replicas) the nodes to scan come from topology.py and
    cluster_scan.py merges their streams; each node is scanned by iter_node_batches below."""
    opts = opts or ScanOptions()
    stats = stats if stats is not None else ScanStats()
    nodes = scan_nodes(client)
    if len(nodes) > 1 or nodes[0].client is not client:
        yield from merged_batches(
            nodes, opts, stats, iter_node_batches, cluster=client if is_cluster(client) else None, read_keys=read_keys
        )
        return
    yield from iter_node_batches(client, opts, stats)


def iter_node_batches(
    client: redis.Redis, opts: ScanOptions, stats: ScanStats, keep: KeyFilter | None = None
) -> Iterator[list[RawRecord]]:
    """iter_batches on one server. keep (cluster nodes): which keys of a batch the plain path may read
    there; the others come back as NOT_SERVED, as the script reports keys of slots the node does not serve."""
    watch = _RestartWatch(client)
    if opts.server_side is not False:
        try:
            for records in _script_batches(client, opts, stats):
                watch.check()
                faults.reached("scan.batch")
                yield records
            return
        except ScriptUnavailable as exc:
            if opts.server_side:
                raise
            stats.fallback_reason = str(exc)
            stats.path = "plain pipeline (scripts refused)"
        except redis.exceptions.NoScriptError:
            watch.check(force=True)  # a restart is the likely cause: say so
            raise
    for records in _plain_batches(client, opts, stats, keep):
        watch.check()
        faults.reached("scan.batch")
        yield records
    watch.check(force=True)


class _RestartWatch:
    """SCAN cursors do not survive a server restart (the new process hashes keys with a new seed),
    and redis-py reconnects quietly: a scan would go on with a stale cursor and miss or repeat keys.
    So when a connection was re-made since the last batch (cheap to tell), the server's run id is
    compared with the one it had at the start (one INFO), and a change ends the scan with a clear error."""

    def __init__(self, client: redis.Redis):
        self.client = client
        self.connections = connections_made()
        self.run_id = run_id(client)

    def check(self, force: bool = False) -> None:
        made = connections_made()
        if (made == self.connections and not force) or self.run_id is None:
            return
        self.connections = made
        now = run_id(self.client)
        if now is not None and now != self.run_id:
            raise ConnectionFailed(
                "the Redis server restarted during the scan: SCAN cannot resume across a restart, so what "
                "was listed may miss or repeat keys; run the command again"
            )


# -- names only -----------------------------------------------------------------------------------

NAMES_COUNT = 5000  # SCAN COUNT of a names-only scan: fewer round trips, the server's SCAN is the same work


def iter_key_names(
    client: redis.Redis, match: str | None = None, stats: ScanStats | None = None, count: int = NAMES_COUNT
) -> Iterator[list[bytes]]:
    """Every key name (matching `match`) in SCAN batches, with no per-key command at all: what
    `redis-cli --scan` does. A reader thread keeps the next SCAN in flight; on a Redis Cluster every
    primary is scanned (as iter_batches does). Keys may repeat (SCAN's "at least once")."""
    stats = stats if stats is not None else ScanStats()
    opts = ScanOptions(match=match, count=count, limit=0)
    nodes = scan_nodes(client)
    if len(nodes) > 1 or nodes[0].client is not client:
        yield from merged_batches(nodes, opts, stats, _node_names)
        return
    yield from _node_names(client, opts, stats)


def _node_names(client: redis.Redis, opts: ScanOptions, stats: ScanStats) -> Iterator[list[bytes]]:
    watch = _RestartWatch(client)
    stats.path = "key names only"

    def scans() -> Iterator[list[bytes]]:
        cursor = 0
        while True:
            cursor, keys = client.scan(cursor, match=opts.match, count=opts.count)
            yield cast(list[bytes], keys)  # raw client: bytes
            if int(cursor) == 0:
                return

    for keys in read_ahead(scans(), depth=2, name="cacheops-names"):
        watch.check()
        faults.reached("scan.batch")
        if keys:
            stats.batches += 1
            stats.keys += len(keys)
            yield keys
    watch.check(force=True)


def glob_escape(text: str) -> str:
    """Escape a literal for SCAN MATCH."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
