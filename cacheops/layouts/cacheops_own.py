"""cacheops' own keys beside the caches it operates: the operations log, tag hashes, hit records.

cacheops:oplog              STREAM  the operations log (ops/oplog.py)
cacheops:audit              STREAM  the same log as earlier versions named it (still read by `history`)
cacheops:tags:<key>         HASH    tags cacheops keeps for an entry that has no fields of its own
                                    (on a Redis Cluster cacheops:tags:{<key>}: ownkeys.cluster_tag_key)
cacheops:hit:<key>          HASH    the hit tracker's record of an entry (cacheops_track.keys)
cacheops:hitrate:<m|h|t>:<cache>  HASH  the hit tracker's minute / hour buckets and totals
cacheops:tracked            HASH    the caches the hit tracker has written for
cacheops:migrate:<name>     HASH    the state of an in-place migration under way (ops/migrate_inplace.py)
Recognised as infrastructure: never listed, counted or deleted as cache entries, never "unknown".
"""

from __future__ import annotations

import re

from cacheops_track import keys as track_keys

from ..ownkeys import LEGACY_OPLOG_STREAM, MIGRATE_STATE_PREFIX, OPLOG_STREAM, TAG_PREFIX
from ..server.keyspace import RawRecord
from .base import Context, Entry, Infrastructure, Layout, PromptQuery

_STREAM_ROLE = "cacheops operations log"
_STREAMS = (OPLOG_STREAM.encode(), LEGACY_OPLOG_STREAM.encode())
_TAGS_ROLE = "cacheops tags of an entry"
_HIT_ROLE = "cacheops hit record of an entry"
_BUCKET_ROLE = "cacheops hit-rate buckets"
_TRACKED_ROLE = "cacheops tracked caches"
_MIGRATE_ROLE = "cacheops in-place migration state"


class CacheopsOwnLayout(Layout):
    id = "cacheops"
    library = "cacheops"
    kind = "infrastructure"
    redis_type = "hash"
    redis_types = ("stream", "hash")
    key_re = re.compile(r"^(?P<prefix>cacheops):(?:oplog|audit|tags:.+|hit:.+|hitrate:.+|tracked|migrate:.+)$", re.S)

    def cache_of(self, rec: RawRecord) -> str | None:
        if rec.type == "stream" and rec.key in _STREAMS:
            return "cacheops"
        if rec.type == "hash" and rec.key.startswith(b"cacheops:") and _role(rec.key):
            return "cacheops"
        return None

    def decode(self, rec: RawRecord, cache: str, ctx: Context, full: bool = True) -> Infrastructure:
        return self.infrastructure(
            rec, cache, _STREAM_ROLE if rec.type == "stream" else _role(rec.key) or "cacheops key"
        )

    def locate(self, client, query: PromptQuery, ctx: Context, cache=None):
        return []

    def matches(self, entry: Entry, query: PromptQuery, ctx=None) -> bool:
        return False


def _role(key: bytes) -> str | None:
    if key.startswith(TAG_PREFIX):
        return _TAGS_ROLE
    if key.startswith(MIGRATE_STATE_PREFIX):
        return _MIGRATE_ROLE
    if key.startswith(track_keys.ENTRY_PREFIX):
        return _HIT_ROLE
    if key.startswith(track_keys.BUCKET_PREFIX):
        return _BUCKET_ROLE
    if key == track_keys.TRACKED:
        return _TRACKED_ROLE
    return None
