"""Turning on the keyspace events `hits --follow` needs: only when asked (--enable-events), logged,
and put back as it was afterwards."""

from __future__ import annotations

import contextlib

import redis

from ..inspect.hitevents import events_setting, missing_flags
from ..server.topology import primary_nodes
from . import oplog


@contextlib.contextmanager
def events_enabled(client: redis.Redis, flags: str):
    """Add `flags` to notify-keyspace-events for the duration of the block, then restore it (on a
    cluster, on every primary: each publishes its own keys' events)."""
    changed: list[tuple[redis.Redis, str]] = []
    after = ""
    for node in primary_nodes(client):
        before = events_setting(node.client)
        missing = missing_flags(before) if flags else ""
        if not missing:
            continue
        after = "".join(dict.fromkeys(before + missing))
        node.client.config_set("notify-keyspace-events", after)
        changed.append((node.client, before))
    if not changed:
        yield None
        return
    was = changed[0][1]
    oplog.record(
        client,
        "config",
        oplog.whoami(client),
        {"notify-keyspace-events": after},
        {"changed": len(changed)},
        None,
        {"was": was},
    )
    try:
        yield after
    finally:
        for node_client, before in changed:
            try:
                node_client.config_set("notify-keyspace-events", before)
            except redis.RedisError:
                pass
