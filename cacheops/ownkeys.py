"""The names of cacheops' own keys in the Redis it manages, and the syntax of tag names.

    cacheops:tags:<entry key>   HASH    NAME=VALUE tags of an entry whose library has no fields for
                                        them (ops/tagging.py writes them, inspect/tags.py reads them)
    cacheops:tags:{<entry key>}  (on a Redis Cluster: the same hash in its entry's hash slot; see
                                        cluster_tag_key)
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

from redis.crc import key_slot

from cacheops_track.keys import ENTRY_PREFIX as HIT_RECORD_PREFIX

from .errors import UsageError

__all__ = [
    "HIT_RECORD_PREFIX",
    "TAG_PREFIX",
    "OPLOG_STREAM",
    "MIGRATE_STATE_PREFIX",
    "tag_key",
    "cluster_tag_key",
    "legacy_tag_key_on_cluster",
    "hash_tag",
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


def hash_tag(key: bytes) -> bytes | None:
    """What Redis Cluster hashes of a key that has a hash tag (the text between its first `{` and
    the first `}` after it, when not empty), else None (then the whole key is hashed)."""
    start = key.find(b"{")
    if start < 0:
        return None
    end = key.find(b"}", start + 1)
    return key[start + 1 : end] if end > start + 1 else None


def cluster_tag_key(entry_key: str | bytes) -> bytes:
    """The tag hash of an entry on a Redis Cluster: in the entry's own hash slot, so the entry and its
    tags are read, deleted and restored together (one script, one slot). The name carries a hash tag
    that hashes as the entry does:
        cacheops:tags:{<entry>}          an entry without a hash tag (the common case)
        cacheops:tags:{<tag>}<entry>     an entry with one ({<tag>} in its name)
        cacheops:tags:{<n>}<entry>       an entry with a `}` but no hash tag: <n> is the smallest
                                         number in the entry's slot (the entry itself cannot be the tag)
    Read back unambiguously: the text up to the first `}` is the tag, the rest (if any) the entry."""
    raw = entry_key.encode("utf-8") if isinstance(entry_key, str) else entry_key
    tag = hash_tag(raw)
    if tag is not None:
        return TAG_PREFIX + b"{" + tag + b"}" + raw
    if b"}" not in raw and raw:
        return TAG_PREFIX + b"{" + raw + b"}"
    return TAG_PREFIX + b"{" + _SLOT_STAND_INS.tag_for(key_slot(raw)) + b"}" + raw


def legacy_tag_key_on_cluster(entry_key: str | bytes) -> bytes | None:
    """The one-server name (tag_key) of an entry's tags, where an earlier cacheops left it on a
    cluster (usually another slot than the entry's: read and removed on its own). None when that
    name is the cluster name of another entry (an entry named like `{x}x`): it belongs to that one."""
    legacy = tag_key(entry_key)
    raw = legacy[len(TAG_PREFIX) :]
    if raw.startswith(b"{"):
        end = raw.find(b"}")
        if end > 1:
            other = raw[end + 1 :] or raw[1:end]
            if cluster_tag_key(other) == legacy:
                return None
    return legacy


class _SlotStandIns:
    """slot -> the smallest decimal number that hashes to it, found as asked (the first ~16k
    numbers cover most slots; computed once per process, CRC16 is cheap)."""

    def __init__(self) -> None:
        self.found: dict[int, bytes] = {}
        self.next = 0

    def tag_for(self, slot: int) -> bytes:
        while slot not in self.found:
            candidate = str(self.next).encode()
            self.next += 1
            self.found.setdefault(key_slot(candidate), candidate)
        return self.found[slot]


_SLOT_STAND_INS = _SlotStandIns()


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
