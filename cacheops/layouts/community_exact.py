"""langchain_community.cache.RedisCache (legacy exact cache): one HASH per (prompt, model).

Key   md5(prompt + llm_string): a bare 32-hex key, no prefix (docs/layouts.md E1)
Value fields "0", "1", ... one per generation, each langchain_core.load.dumps(generation)
Neither the prompt nor the llm_string is stored, and they are hashed together: an entry is found
from the user's text only with a known llm_string (learned from semantic caches of the same app).
"""

from __future__ import annotations

import re

import orjson

from ..server.keyspace import RawRecord
from . import langchain_format as lc
from .base import HEX32, Context, Entry, Layout, PromptQuery

CACHE_NAME = "langchain_community.RedisCache"  # its keys have no prefix: the cache is named by library


class CommunityExactLayout(Layout):
    id = "community_exact"
    library = "langchain_community RedisCache"
    kind = "exact"
    redis_type = "hash"
    key_re = re.compile(rf"^(?P<prefix>)(?P<id>{HEX32})$")

    def cache_of(self, rec: RawRecord) -> str | None:
        if rec.type != "hash" or len(rec.key) != 32 or not self.key_re.match(rec.key_text):
            return None
        return CACHE_NAME

    def scan_match(self, cache: str, ctx=None) -> str | None:
        return "?" * 32 if cache == CACHE_NAME else None

    def decode(self, rec: RawRecord, cache: str, ctx: Context, full: bool = True) -> Entry | None:
        value = rec.value if isinstance(rec.value, dict) else {}
        if not value or not all(k.isdigit() for k in value):
            return None
        gens, partial, verified = [], False, 0
        for name in sorted(value, key=int):
            raw = value[name]
            if isinstance(raw, int):  # field not read (very large hash): judged by the others
                partial = True
                continue
            if not raw.startswith(b'{"lc": 1'):
                return None
            verified += 1
            try:
                gens.append(orjson.loads(raw))
            except orjson.JSONDecodeError:
                partial = True  # cut at the read limit: still LangChain's, shown in part
        if not verified:
            return None
        entry = self.new_entry(rec, cache, prompt_hash=rec.key_text)
        if gens:
            entry.answer, entry.model, entry.generations, entry.usage = lc.read_generations(gens, full)
        elif full:
            entry.generations = []
        entry.notes.append("key = md5(prompt + llm_string): neither is stored, so prompt and model are unknown")
        if partial:
            entry.notes.append("a generation was too large to decode in full")
        return entry

    @staticmethod
    def prompt_strings(query: PromptQuery) -> list[str]:
        out = [lc.chat_prompt(query.text, query.system)]
        return out + ([query.text] if query.system is None else [])

    def keys_for(self, query: PromptQuery, ctx: Context) -> set[str]:
        return {lc.md5_hex(p + s) for p in self.prompt_strings(query) for s in ctx.known_llm_strings.values()}

    def locate(self, client, query: PromptQuery, ctx: Context, cache=None):
        if cache not in (None, CACHE_NAME):
            return []
        return [k.encode() for k in self.keys_for(query, ctx)]

    def matches(self, entry: Entry, query: PromptQuery, ctx: Context | None = None) -> bool:
        return ctx is not None and entry.key in self.keys_for(query, ctx)
