"""RedisVL EmbeddingsCache: cached embeddings, one HASH per (content, model), no search index.

Key    <name>:sha256(f"{content}:{model_name}")   (default name "embedcache")
Fields entry_id, content, model_name, embedding (JSON text list), inserted_at [, metadata]
(docs/layouts.md D). It needs no modules; get() refreshes the TTL, which cacheops never calls.
"""

from __future__ import annotations

import re

from ..server.keyspace import RawRecord, glob_escape
from . import langchain_format as lc
from .base import HEX64, Context, Entry, Layout, PromptQuery, VectorInfo, hex_tail
from .redisvl_semantic import as_float, fields_of, json_field, text


class RedisVLEmbeddingsLayout(Layout):
    id = "redisvl_embeddings"
    library = "RedisVL EmbeddingsCache"
    kind = "embeddings"
    redis_type = "hash"
    key_re = re.compile(rf"^(?P<prefix>.+):(?P<id>{HEX64})$", re.S)

    def cache_of(self, rec: RawRecord) -> str | None:
        if rec.type != "hash" or len(rec.key) < 66 or not hex_tail(rec.key, 64):  # cheap check before any regex
            return None
        return rec.key_text[:-65]

    def decode(self, rec: RawRecord, cache: str, ctx: Context, full: bool = True) -> Entry | None:
        fields = fields_of(rec)
        if not {b"entry_id", b"content", b"model_name", b"embedding"} <= fields.keys():
            return None
        entry = self.new_entry(rec, cache, prompt_hash=rec.key_text[-64:])
        entry.prompt = text(fields[b"content"])
        entry.model = text(fields[b"model_name"])
        entry.inserted_at = as_float(fields.get(b"inserted_at"))
        entry.metadata = json_field(fields.get(b"metadata"))
        raw = fields[b"embedding"]
        if isinstance(raw, bytes):
            dims = raw.count(b",") + 1 if raw.strip(b"[] ") else 0
            entry.vector = VectorInfo("embedding", dims, "json", len(raw))
            entry.answer = f"embedding, {dims} dims"
        return entry

    def locate(self, client, query: PromptQuery, ctx: Context, cache=None):
        # The key hashes the model name too, which the user rarely knows: read the prefix instead.
        if cache is None or query.system is not None:
            return []
        return client.scan_iter(match=f"{glob_escape(cache)}:*", count=1000)

    def matches(self, entry: Entry, query: PromptQuery, ctx=None) -> bool:
        return query.system is None and entry.prompt == query.text

    @staticmethod
    def key_for(name: str, content: str, model_name: str) -> str:
        return f"{name}:{lc.sha256_hex(f'{content}:{model_name}')}"
