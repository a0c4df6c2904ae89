"""The names of cacheops' own keys in the Redis it manages, and the syntax of tag names.

    cacheops:tags:<entry key>   HASH    NAME=VALUE tags of an entry whose library has no fields for
                                        them (ops/tagging.py writes them, inspect/tags.py reads them)
    cacheops:oplog              STREAM  the operations log: evictions, restores, warms, migrations
                                        (ops/oplog.py, shown by `cacheops history`)
    cacheops:migrate:<cache>    HASH    an in-place migration (or flush) under way: its phase and
                                        what a re-run needs to resume it (ops/migrate_inplace.py)
    cacheops:hit:<entry key>    HASH    the hit tracker's record of an entry, and cacheops:hitrate:*
                                        / cacheops:tracked: its buckets (named in cacheops_track.keys,
                                        the app-side package, which imports nothing of cacheops)
    cacheops:audit              STREAM  the operations log as earlier versions named it: `history`
                                        still reads it, nothing writes it

Every layer may need these names (the cacheops_own layout recognises the keys, evict takes a tag
hash along with its entry), so they live at the bottom, beside the errors.
"""

from __future__ import annotations

from cacheops_track.keys import ENTRY_PREFIX as HIT_RECORD_PREFIX

from .errors import UsageError

__all__ = [
    "HIT_RECORD_PREFIX",
    "TAG_PREFIX",
    "OPLOG_STREAM",
    "MIGRATE_STATE_PREFIX",
    "tag_key",
    "is_tag_key",
    "is_companion_record",
    "valid_tag_name",
    "parse_pair",
]

TAG_PREFIX = b"cacheops:tags:"
OPLOG_STREAM = "cacheops:oplog"
# Earlier versions wrote the operations log here ("audit" now means only the wrong-answer audit).
LEGACY_OPLOG_STREAM = "cacheops:audit"
MIGRATE_STATE_PREFIX = b"cacheops:migrate:"
_TAG_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


def tag_key(entry_key: str | bytes) -> bytes:
    raw = entry_key.encode("utf-8") if isinstance(entry_key, str) else entry_key
    return TAG_PREFIX + raw


def is_tag_key(key: bytes) -> bool:
    return key.startswith(TAG_PREFIX)


def is_companion_record(key: bytes) -> bool:
    """A key cacheops keeps for one entry (tag hash, hit record): it goes and comes back with it."""
    return key.startswith(TAG_PREFIX) or key.startswith(HIT_RECORD_PREFIX)


def valid_tag_name(name: str) -> bool:
    return bool(name) and set(name) <= _TAG_NAME_CHARS


def parse_pair(text: str) -> tuple[str, str]:
    """'NAME=VALUE' -> (name, value); a UsageError naming the fix otherwise."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not valid_tag_name(name):
        raise UsageError(f"tag {text!r}: write NAME=VALUE, NAME made of letters, digits, '_', '-' or '.'")
    return name, value
