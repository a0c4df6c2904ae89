"""Turning on the keyspace events `hits --follow` needs: only when asked (--enable-events), logged,
and put back as it was afterwards."""

from __future__ import annotations

import contextlib

import redis

from ..inspect.hitevents import events_setting, missing_flags
from . import oplog


@contextlib.contextmanager
def events_enabled(client: redis.Redis, flags: str):
    """Add `flags` to notify-keyspace-events for the duration of the block, then restore it."""
    before = events_setting(client)
    missing = missing_flags(before) if flags else ""
    if not missing:
        yield before
        return
    after = "".join(dict.fromkeys(before + missing))
    client.config_set("notify-keyspace-events", after)
    oplog.record(
        client, "config", oplog.whoami(client), {"notify-keyspace-events": after}, {"changed": 1}, None, {"was": before}
    )
    try:
        yield after
    finally:
        try:
            client.config_set("notify-keyspace-events", before)
        except redis.RedisError:
            pass
