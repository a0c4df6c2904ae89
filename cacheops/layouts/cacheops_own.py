"""cacheops' own keys beside the caches it operates: the audit trail stream and the tag hashes.

cacheops:audit          STREAM  the capped audit trail of evictions and restores (audit_log.py)
cacheops:tags:<key>     HASH    tags cacheops keeps for an entry that has no fields of its own (tags.py)
cacheops:migrate:<name> HASH    the state of an in-place migration under way (migrate_inplace.py)
Recognised as infrastructure: never listed, counted or deleted as cache entries, never "unknown".
"""

from __future__ import annotations

import re

from ..ownkeys import MIGRATE_STATE_PREFIX, TAG_PREFIX
from ..ownkeys import OPLOG_STREAM as STREAM
from ..server.keyspace import RawRecord
from .base import Context, Entry, Infrastructure, Layout, PromptQuery

_ROLES = {"stream": "cacheops audit trail", "hash": "cacheops tags of an entry"}


class CacheopsOwnLayout(Layout):
    id = "cacheops"
    library = "cacheops"
    kind = "infrastructure"
    redis_type = "hash"
    redis_types = ("stream", "hash")
    key_re = re.compile(r"^(?P<prefix>cacheops):(?:audit|tags:.+|migrate:.+)$", re.S)

    def cache_of(self, rec: RawRecord) -> str | None:
        if rec.type == "stream" and rec.key == STREAM.encode():
            return "cacheops"
        if rec.type == "hash" and (rec.key.startswith(TAG_PREFIX) or rec.key.startswith(MIGRATE_STATE_PREFIX)):
            return "cacheops"
        return None

    def decode(self, rec: RawRecord, cache: str, ctx: Context, full: bool = True) -> Infrastructure:
        if rec.key.startswith(MIGRATE_STATE_PREFIX):
            return self.infrastructure(rec, cache, "cacheops in-place migration state")
        return self.infrastructure(rec, cache, _ROLES[rec.type])

    def locate(self, client, query: PromptQuery, ctx: Context, cache=None):
        return []

    def matches(self, entry: Entry, query: PromptQuery, ctx=None) -> bool:
        return False
