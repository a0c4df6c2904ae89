"""The hand-rolled exact cache of the widely copied blog pattern: pickled responses in STRINGs.

Key   [<app>:]llm_cache:<sha256(prompt/model JSON)>
Value pickle.dumps(response) with SETEX: never unpickled here (pickle_peek reads it safely).
"""

from __future__ import annotations

import re

from ..server.keyspace import RawRecord
from .base import HEX64, Context, Entry, Layout, PromptQuery, matched
from .pickle_common import decode_pickle


class PickleLLMCacheLayout(Layout):
    id = "pickle_llm_cache"
    library = "hand-rolled llm_cache (pickle)"
    kind = "exact"
    redis_type = "string"
    key_re = re.compile(rf"^(?P<prefix>(?:.+:)?llm_cache):(?P<id>{HEX64})$", re.S)

    def cache_of(self, rec: RawRecord) -> str | None:
        if rec.type != "string" or b"llm_cache:" not in rec.key:
            return None
        m = self.key_re.match(rec.key_text)
        return m.group("prefix") if m else None

    def decode(self, rec: RawRecord, cache: str, ctx: Context, full: bool = True) -> Entry | None:
        raw = rec.value if isinstance(rec.value, bytes) else b""
        entry = self.new_entry(rec, cache, prompt_hash=matched(self.key_re, rec.key_text).group("id"))
        return entry if decode_pickle(entry, raw) else None

    def locate(self, client, query: PromptQuery, ctx: Context, cache=None):
        return []  # what the app hashes (prompt, model, params, JSON layout) is its own choice

    def matches(self, entry: Entry, query: PromptQuery, ctx=None) -> bool:
        return entry.prompt is not None and entry.prompt == query.text
