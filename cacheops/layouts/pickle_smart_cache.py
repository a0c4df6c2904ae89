"""The hand-rolled versioned cache with tag invalidation of the widely copied blog pattern.

Entry    [<app>:]smart_cache:v<N>:<key>   STRING, pickle.dumps(value) (never unpickled here)
Tag set  [<app>:]smart_cache:tag:<tag>    SET of entry keys, used to invalidate by tag: the cache's
         infrastructure, recognised but never counted or deleted as an entry.
Bumping N orphans every older version's entries until their TTL; they are listed with their version.
"""

from __future__ import annotations

import re

from ..server.keyspace import RawRecord
from .base import Context, Entry, Infrastructure, Layout, PromptQuery, matched
from .pickle_common import decode_pickle


class PickleSmartCacheLayout(Layout):
    id = "pickle_smart_cache"
    library = "hand-rolled smart_cache (pickle)"
    kind = "exact"
    redis_type = "string"
    redis_types = ("string", "set")  # entries; tag sets
    key_re = re.compile(r"^(?P<prefix>(?:.+:)?smart_cache):v(?P<version>\d+):(?P<id>.+)$", re.S)
    tag_re = re.compile(r"^(?P<prefix>(?:.+:)?smart_cache):tag:(?P<tag>.+)$", re.S)

    def cache_of(self, rec: RawRecord) -> str | None:
        if b"smart_cache:" not in rec.key:
            return None
        m: re.Match | None
        if rec.type == "string":
            m = self.key_re.match(rec.key_text)
        elif rec.type == "set":
            m = self.tag_re.match(rec.key_text)
        else:
            return None
        return m.group("prefix") if m else None

    def decode(self, rec: RawRecord, cache: str, ctx: Context, full: bool = True) -> Entry | Infrastructure | None:
        if rec.type == "set":
            return self.infrastructure(rec, cache, f"tag set of {matched(self.tag_re, rec.key_text).group('tag')}")
        m = matched(self.key_re, rec.key_text)
        raw = rec.value if isinstance(rec.value, bytes) else b""
        entry = self.new_entry(rec, cache, prompt_hash=m.group("id"), tags={"version": f"v{m.group('version')}"})
        return entry if decode_pickle(entry, raw) else None

    def locate(self, client, query: PromptQuery, ctx: Context, cache=None):
        return []

    def matches(self, entry: Entry, query: PromptQuery, ctx=None) -> bool:
        return entry.prompt is not None and entry.prompt == query.text
