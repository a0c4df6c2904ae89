"""cacheops' own tag index: NAME=VALUE labels on cache entries whose library has no fields for them.

langchain-redis exact caches store one JSON document per (prompt, model) and nothing else, so an
entry cannot carry "source=warmup" or "tenant=acme". cacheops keeps those beside the entry:

    cacheops:tags:<entry key>   HASH  name -> value, with the entry's expiry (it dies with the entry)

One hash per tagged entry, so a lookup by key is one HGETALL, eviction removes it with the entry
(a companion key, backed up and restored with it), and nothing here can grow without bound. Finding
entries by tag walks the entries being selected anyway (SCAN) and reads their tag hashes in the same
batches: no global set to drift out of sync with entries that expired. Works for every layout; for
layouts with their own filterable fields (RedisVL) those fields are the entry's tags and win.
"""

from __future__ import annotations

import redis

from .errors import NotFound, UsageError

TAG_PREFIX = b"cacheops:tags:"
_TAG_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


def tag_key(entry_key: str | bytes) -> bytes:
    raw = entry_key.encode("utf-8") if isinstance(entry_key, str) else entry_key
    return TAG_PREFIX + raw


def is_tag_key(key: bytes) -> bool:
    return key.startswith(TAG_PREFIX)


def valid_tag_name(name: str) -> bool:
    return bool(name) and set(name) <= _TAG_NAME_CHARS


def parse_pair(text: str) -> tuple[str, str]:
    """'NAME=VALUE' -> (name, value); a UsageError naming the fix otherwise."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not valid_tag_name(name):
        raise UsageError(f"tag {text!r}: write NAME=VALUE, NAME made of letters, digits, '_', '-' or '.'")
    return name, value


def read_tags(client: redis.Redis, keys: list[bytes]) -> list[dict[str, str]]:
    """cacheops tags of each key (empty dicts for untagged keys), in one pipeline."""
    if not keys:
        return []
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(tag_key(key))
    out = []
    for reply in pipe.execute(raise_on_error=False):
        if isinstance(reply, dict):
            out.append({k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in reply.items()})
        else:
            out.append({})
    return out


def set_tags(client: redis.Redis, entry_key: str | bytes, tags: dict[str, str], remove: list[str] = (),
             context=None) -> dict:
    """Tag one cache entry (it must exist and be recognised by a layout). Returns its tags after.

    The tag hash takes the entry's remaining TTL, so an expired entry leaves no tag behind.
    context: a catalog Context to reuse when tagging many entries (default: built here)."""
    from .catalog import build_context
    from .finder import read_entry
    from .layouts import Entry

    ctx = context if context is not None else build_context(client, learn=False)
    item = read_entry(client, ctx, entry_key)
    if not isinstance(item, Entry):
        raise NotFound(f"{item.key!r} is not a cache entry cacheops recognises; only cache entries can be tagged")
    key = tag_key(entry_key)
    pipe = client.pipeline(transaction=True)
    if tags:
        pipe.hset(key, mapping=tags)
    if remove:
        pipe.hdel(key, *remove)
    if item.ttl_ms is not None:
        pipe.pexpire(key, item.ttl_ms)
    else:
        pipe.persist(key)
    pipe.execute()
    return read_tags(client, [key[len(TAG_PREFIX):]])[0]
