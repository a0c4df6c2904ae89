"""Tagging: cacheops' own tag index, NAME=VALUE labels on cache entries whose library has no fields for them.

langchain-redis exact caches store one JSON document per (prompt, model) and nothing else, so an
entry cannot carry "source=warmup" or "tenant=acme". cacheops keeps those beside the entry:

    cacheops:tags:<entry key>   HASH  name -> value, with the entry's expiry (it dies with the entry)

One hash per tagged entry, so a lookup by key is one HGETALL, eviction removes it with the entry
(a companion key, backed up and restored with it), and nothing here can grow without bound. Finding
entries by tag walks the entries being selected anyway (SCAN) and reads their tag hashes in the same
batches: no global set to drift out of sync with entries that expired. Works for every layout; for
layouts with their own filterable fields (RedisVL) those fields are the entry's tags and win.

On a Redis Cluster the hash is named to live in its entry's hash slot (ownkeys.cluster_tag_key),
so evict reads and deletes the two in one script. A hash an earlier cacheops left under the
one-server name is moved over when the entry is tagged again (its fields first, then the new ones).
"""

from __future__ import annotations

from collections.abc import Sequence

import redis

from ..errors import NotFound
from ..inspect.catalog import build_context
from ..inspect.finder import read_entry
from ..inspect.tags import read_tags, tag_names
from ..layouts import Entry
from ..server import permissions


def set_tags(
    client: redis.Redis,
    entry_key: str | bytes,
    tags: dict[str, str],
    remove: Sequence[str] = (),
    context=None,
    check_permissions: bool = True,
) -> dict:
    """Tag one cache entry (it must exist and be recognised by a layout). Returns its tags after.

    The tag hash takes the entry's remaining TTL, so an expired entry leaves no tag behind.
    context: a catalog Context to reuse when tagging many entries (default: built here).
    check_permissions: probe the ACL first (warm probes once per run instead of per entry)."""
    ctx = context if context is not None else build_context(client, learn=False)
    item = read_entry(client, ctx, entry_key)
    if not isinstance(item, Entry):
        raise NotFound(f"{item.key!r} is not a cache entry cacheops recognises; only cache entries can be tagged")
    raw = entry_key.encode("utf-8") if isinstance(entry_key, str) else entry_key
    key, *older = tag_names(client, raw)
    if check_permissions and (tags or remove):
        permissions.require(client, "tag", ["hash", "expire", "transactions"], under=key)
    moved = {}
    if (tags or remove) and older:
        moved = client.hgetall(older[0])
    pipe = client.pipeline(transaction=True)
    for name, value in moved.items():
        pipe.hsetnx(key, name, value)  # a field already under the new name is the newer one
    if tags:
        pipe.hset(key, mapping=dict(tags))  # type: ignore[arg-type]  # redis-py's Mapping is invariant
    if remove:
        pipe.hdel(key, *remove)
    if item.ttl_ms is not None:
        pipe.pexpire(key, item.ttl_ms)
    else:
        pipe.persist(key)
    pipe.execute()
    if moved:
        client.unlink(older[0])
    return read_tags(client, [raw])[0]
