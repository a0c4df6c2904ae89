"""langchain_community.cache.RedisSemanticCache (legacy semantic cache, redis-py < 6).

Index  "cache:" + md5(llm_string), PREFIX "doc:cache:<md5(llm_string)>": one index per model config
Key    doc:cache:<md5(llm_string)>:<uuid4 hex>, random: every miss adds a document (docs/layouts.md E2)
Fields prompt (dumps() or raw text), content_vector (float32), llm_string, return_val (JSON array)
GPTCache's "doc:" index also covers these keys (prefix bleed): attribution is by exact key shape.
"""

from __future__ import annotations

import re

import orjson
import redis

from ..server.indexes import sample_fields
from ..server.keyspace import RawRecord
from . import langchain_format as lc
from .base import HEX32, Context, Entry, Layout, PromptQuery, matched
from .redisvl_semantic import (
    fields_of,
    mark_message_ids,
    mark_reachability,
    message_list,
    search_prompt_terms,
    text,
    vector_info,
)

LEARN_PER_INDEX = 200


class CommunitySemanticLayout(Layout):
    id = "community_semantic"
    library = "langchain_community RedisSemanticCache"
    kind = "semantic"
    redis_type = "hash"
    key_re = re.compile(rf"^(?P<prefix>doc:cache:(?P<llm>{HEX32})):(?P<id>{HEX32})$")
    vector_field = "content_vector"

    def prepare(self, client: redis.Redis, ctx: Context) -> None:
        """Learn each index's llm_string (constant per index) and some prompts: exact caches of the
        same app store only hashes, and community RedisCache keys on md5(prompt + llm_string)."""
        for idx in ctx.indexes:
            if not (idx.name.startswith("cache:") and idx.fields.get(self.vector_field) == "VECTOR"):
                continue
            for fields in sample_fields(client, idx.name, ("llm_string", "prompt"), LEARN_PER_INDEX):
                if fields.get(b"llm_string"):
                    ctx.learn_llm_string(fields[b"llm_string"])
                if fields.get(b"prompt"):
                    ctx.learn_prompt(fields[b"prompt"])

    def decode(self, rec: RawRecord, cache: str, ctx: Context, full: bool = True) -> Entry | None:
        fields = fields_of(rec)
        if not {b"prompt", b"llm_string", b"return_val", self.vector_field.encode()} <= fields.keys():
            return None
        m = matched(self.key_re, rec.key_text)
        index = ctx.index_for_prefix(cache)
        entry = self.new_entry(rec, cache, index=index.name if index else None, prompt_hash=m.group("id"))
        messages, entry.prompt, ids = lc.read_prompt(text(fields[b"prompt"]) or "")
        if full:
            entry.messages = message_list(messages)
        entry.llm_string = text(fields[b"llm_string"])
        entry.model, entry.model_params = lc.parse_llm_string(entry.llm_string or "")
        if entry.llm_string and lc.md5_hex(entry.llm_string) != m.group("llm"):
            entry.notes.append("llm_string does not hash to the key's md5: written under another model config")
        try:
            raw = fields[b"return_val"]
            gens = list(orjson.loads(raw if isinstance(raw, bytes) else b""))
            answer, _model, generations, usage = lc.read_generations(gens, full)
        except (orjson.JSONDecodeError, TypeError, AttributeError):
            gens = []
            entry.answer = text(fields[b"return_val"])
            entry.notes.append("return_val is not a list of serialised generations (truncated?)")
        if gens:
            entry.answer, entry.generations, entry.usage = answer, generations, usage
        entry.vector = vector_info(fields, self.vector_field, index)
        mark_reachability(entry, ctx, index, cache, self.vector_field)
        mark_message_ids(entry, ids)
        entry.notes.append("keys are random uuids: every cache miss adds a document, duplicates are normal")
        return entry

    def locate(self, client, query: PromptQuery, ctx: Context, cache=None):
        for idx in ctx.indexes:
            if (
                idx.name.startswith("cache:")
                and idx.fields.get(self.vector_field) == "VECTOR"
                and (cache is None or any(p.rstrip(":") == cache for p in idx.prefixes))
            ):
                yield from search_prompt_terms(client, idx.name, query.text)

    def matches(self, entry: Entry, query: PromptQuery, ctx: Context | None = None) -> bool:
        if entry.messages is None:
            return query.system is None and entry.prompt == query.text
        wanted = ([("system", query.system)] if query.system is not None else []) + [("human", query.text)]
        return [(m.role, m.content) for m in entry.messages] == wanted
