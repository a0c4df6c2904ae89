"""langchain-redis RedisCache: exact-match cache, one RedisJSON document per (prompt, model).

Key   <prefix>:<md5(prompt)>:<md5(llm_string)>   (default prefix "redis")
Value JSON array of serialised generations (>= 0.2.6) or one generation object as root (<= 0.2.5).
The prompt text and llm_string are not stored: only their md5s are in the key (docs/layouts.md A).
"""

from __future__ import annotations

import re
from typing import Literal

import orjson

from ..server.keyspace import RawRecord, glob_escape
from . import langchain_format as lc
from .base import HEX32, Context, Layout, PromptQuery, hex_tail

_TEXT_RE = re.compile(rb'"text":\s*"((?:[^"\\]|\\.){0,400})')


_GENERATION_ID = ["langchain", "schema", "output"]
ARRAY_ROOT = "value shape: array root (langchain-redis >= 0.2.6)"
OBJECT_ROOT = "value shape: object root (langchain-redis <= 0.2.5)"


def _is_generation(obj) -> bool:
    return isinstance(obj, dict) and obj.get("lc") == 1 and (obj.get("id") or [])[:3] == _GENERATION_ID


# The playbook `type:` of these caches (warm writes them through the library: ops/warm.py).
PlaybookType = Literal["langchain_exact"]


class LangChainExactLayout(Layout):
    id = "langchain_exact"
    warm_type = "langchain_exact"
    library = "langchain-redis RedisCache"
    kind = "exact"
    redis_type = "ReJSON-RL"
    key_re = re.compile(rf"^(?P<prefix>.*):(?P<prompt>{HEX32}):(?P<llm>{HEX32})$", re.S)

    def cache_of(self, rec: RawRecord) -> str | None:
        if rec.type != "ReJSON-RL" or not hex_tail(rec.key, 32, 32):  # cheap shape check before any regex
            return None
        return rec.key_text[:-66]

    def decode(self, rec: RawRecord, cache: str, ctx: Context, full: bool = True):
        key = rec.key_text  # cache_of checked the shape: "<prefix>:<md5 prompt>:<md5 llm_string>"
        prompt_md5, llm_md5 = key[-65:-33], key[-32:]
        gens_raw: list | None = None
        shape = ""
        if isinstance(rec.value, bytes):
            try:
                doc = orjson.loads(rec.value)
            except orjson.JSONDecodeError:
                doc = None
            if isinstance(doc, list):
                if doc and all(map(_is_generation, doc)):
                    gens_raw, shape = doc, ARRAY_ROOT
            elif _is_generation(doc):
                gens_raw, shape = [doc], OBJECT_ROOT
        entry = self.new_entry(rec, cache)
        entry.prompt_hash = prompt_md5
        if gens_raw is None:
            if (
                not rec.truncated
                or not isinstance(rec.value, bytes)
                or b'"lc":1' not in rec.value[:200].replace(b" ", b"")
            ):
                return None  # not LangChain's: leave it unknown
            found = _TEXT_RE.search(rec.value)
            entry.answer = found.group(1).decode("utf-8", "replace") if found else None
            entry.notes.append("value too large to decode fully; answer is a preview")
        else:
            entry.answer, entry.model, entry.generations, entry.usage = lc.read_generations(gens_raw, full)
            entry.notes.append(shape)
        entry.prompt = ctx.known_prompts.get(prompt_md5)
        llm_string = ctx.known_llm_strings.get(llm_md5)
        if llm_string:
            entry.llm_string = llm_string
            model, entry.model_params = lc.parse_llm_string(llm_string)
            entry.model = entry.model or model
        if entry.model is None:
            entry.model = f"llm:{llm_md5[:8]}"
            entry.notes.append("RedisCache stores only md5(llm_string); model shown by that hash")
        if entry.prompt is None:
            entry.notes.append("RedisCache stores only md5(prompt); the text is known only if given or seen elsewhere")
        else:
            from .redisvl_semantic import mark_message_ids, message_list

            messages, entry.prompt, ids = lc.read_prompt(entry.prompt)
            mark_message_ids(entry, ids)
            if full:
                entry.messages = message_list(messages)
        return entry

    def locate(self, client, query: PromptQuery, ctx: Context, cache=None):
        hashes = {lc.md5_hex(lc.chat_prompt(query.text, query.system))}
        if query.system is None:
            hashes.add(lc.md5_hex(query.text))  # a plain (non-chat) LLM keys on the raw text
        prefix = glob_escape(cache) if cache is not None else "*"
        for md5 in hashes:
            yield from client.scan_iter(match=f"{prefix}:{md5}:*", count=1000)

    def matches(self, entry, query: PromptQuery, ctx=None) -> bool:
        wanted = {lc.md5_hex(lc.chat_prompt(query.text, query.system))}
        if query.system is None:
            wanted.add(lc.md5_hex(query.text))
        return entry.prompt_hash in wanted
