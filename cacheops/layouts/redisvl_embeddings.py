"""RedisVL EmbeddingsCache: cached embeddings, one HASH per (content, model), no search index.

Key    <name>:sha256(f"{content}:{model_name}")   (default name "embedcache")
Fields entry_id, content, model_name, embedding (JSON text list), inserted_at [, metadata]
(FORMATS.md D). It needs no modules; get() refreshes the TTL, which cacheops never calls.
"""

from __future__ import annotations

import re

from .. import langchain_format as lc
from ..keyspace import RawRecord, glob_escape
from .base import HEX64, Context, Entry, Layout, PromptQuery, VectorInfo
from .redisvl_semantic import as_float, fields_of, json_field, text


class RedisVLEmbeddingsLayout(Layout):
    id = "redisvl_embeddings"
    library = "RedisVL EmbeddingsCache"
    kind = "embeddings"
    redis_type = "hash"
    key_re = re.compile(rf"^(?P<prefix>.+):(?P<id>{HEX64})$", re.S)

    def decode(self, rec: RawRecord, cache: str, ctx: Context) -> Entry | None:
        fields = fields_of(rec)
        if not {"entry_id", "content", "model_name", "embedding"} <= fields.keys():
            return None
        entry = self.new_entry(rec, cache, prompt_hash=self.key_re.match(rec.key_text).group("id"))
        entry.prompt = text(fields["content"])
        entry.model = text(fields["model_name"])
        entry.inserted_at = as_float(fields.get("inserted_at"))
        entry.metadata = json_field(fields.get("metadata"))
        raw = fields["embedding"]
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
