"""The operations log: one event per eviction, restore, warm run or migration in a capped Redis stream.

It lives in the Redis it describes (cacheops:oplog), so every operator of that server sees the
same history, whichever machine they ran cacheops from. The stream is capped (XADD MAXLEN ~), so it
cannot grow without bound. `cacheops history` reads it newest first, together with the stream
earlier versions wrote (cacheops:audit), which nothing writes any more.
(`cacheops audit` is a different thing: it audits cached answers for wrong ones.)
"""

from __future__ import annotations

import getpass
import socket
import time
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from ..ownkeys import LEGACY_OPLOG_STREAM, OPLOG_STREAM

STREAM = OPLOG_STREAM

MAX_EVENTS = 10_000


@dataclass
class Actor:
    """Who did it: the Redis ACL user (authoritative), and the machine and OS user it ran from."""

    redis_user: str
    host: str
    os_user: str

    def to_dict(self) -> dict:
        return {"redis_user": self.redis_user, "host": self.host, "os_user": self.os_user}


def whoami(client: redis.Redis) -> Actor:
    try:
        user = client.execute_command("ACL", "WHOAMI")
        user = user.decode() if isinstance(user, bytes) else str(user)
    except redis.RedisError:  # ACL refused or a pre-6 server
        user = "unknown"
    try:
        os_user = getpass.getuser()
    except Exception:  # no passwd entry in a container
        os_user = "unknown"
    return Actor(user, socket.gethostname(), os_user)


# An event's state. A run appends a STARTED event before its first write and its DONE event (which
# names the started one) at the end, so a run killed or failed part-way is still on record: history
# shows its STARTED event, unmatched, as UNFINISHED (with the backup that holds what it changed).
STARTED, DONE, UNFINISHED = "started", "done", "unfinished"


def begin(client: redis.Redis, action: str, actor: Actor, selectors: dict, backup: str | None = None) -> str:
    """Append the event that says a run started (before its first write); returns its stream id,
    which the run's record() names."""
    return record(client, action, actor, selectors, {}, backup, state=STARTED)


def record(
    client: redis.Redis,
    action: str,
    actor: Actor,
    selectors: dict,
    counts: dict,
    backup: str | None,
    extra: dict | None = None,
    started: str | None = None,
    state: str = DONE,
) -> str:
    """Append one event, a run's result (`started`: the id of its begin() event) unless state is
    STARTED; returns its stream id."""
    fields = {
        "action": action,
        "at": f"{time.time():.3f}",
        **actor.to_dict(),
        "selectors": orjson.dumps(selectors, default=str),
        "counts": orjson.dumps(counts, default=str),
        "backup": backup or "",
    }
    if state == STARTED:
        fields["state"] = STARTED
    if started:
        fields["started"] = started
    if extra:
        fields["extra"] = orjson.dumps(extra, default=str)
    event_id = client.xadd(STREAM, fields, maxlen=MAX_EVENTS, approximate=True)
    return event_id.decode() if isinstance(event_id, bytes) else str(event_id)


def history(client: redis.Redis, limit: int = 20, action: str | None = None) -> list[dict]:
    """The newest events first (at most `limit` of them, of `action` if given), from the log and
    from the stream earlier versions wrote (stream ids are times, so the two interleave by id)."""
    events = _history_of(client, STREAM, limit, action) + _history_of(client, LEGACY_OPLOG_STREAM, limit, action)
    events.sort(key=lambda doc: _id_order(doc["id"]), reverse=True)
    return events[:limit]


def _id_order(event_id: str) -> tuple[int, int]:
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)


def _history_of(client: redis.Redis, stream: str, limit: int, action: str | None) -> list[dict]:
    """Newest first. A run's started event is left out once its result is known (the result, newer,
    is read first and names it); one with no result is the run's only trace: UNFINISHED."""
    out: list[dict] = []
    finished: set[str] = set()
    last: str = "+"
    while len(out) < limit:
        chunk: Any = client.xrevrange(stream, max=last, min="-", count=max(limit, 100))
        if not chunk:
            break
        for event_id, fields in chunk:
            event_id = event_id.decode() if isinstance(event_id, bytes) else event_id
            if event_id == last:
                continue
            doc = _decode(event_id, fields)
            started = doc.pop("started", None)  # the id of this result's started event
            if started:
                finished.add(started)
            if doc["state"] == STARTED:
                if event_id in finished:
                    continue
                doc["state"] = UNFINISHED
            if action is None or doc["action"] == action:
                out.append(doc)
                if len(out) >= limit:
                    break
        last = chunk[-1][0].decode() if isinstance(chunk[-1][0], bytes) else chunk[-1][0]
        if len(chunk) < max(limit, 100):
            break
    return out


def _decode(event_id: str, fields: dict) -> dict:
    f = {
        k.decode() if isinstance(k, bytes) else k: v.decode("utf-8", "replace") if isinstance(v, bytes) else v
        for k, v in fields.items()
    }
    doc = {
        "id": event_id,
        "action": f.get("action", "?"),
        "at": float(f.get("at") or 0),
        "redis_user": f.get("redis_user"),
        "host": f.get("host"),
        "os_user": f.get("os_user"),
        "backup": f.get("backup") or None,
        "state": STARTED if f.get("state") == STARTED else DONE,
    }
    if f.get("started"):
        doc["started"] = f["started"]
    for name in ("selectors", "counts", "extra"):
        try:
            doc[name] = orjson.loads(f[name]) if f.get(name) else {}
        except orjson.JSONDecodeError:
            doc[name] = f[name]
    return doc
