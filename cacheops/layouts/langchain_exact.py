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
from .redisvl_semantic import mark_message_ids, message_list, unreachable_by_ids

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
        value = _read_value(rec, full, stops=True)
        if value is None:
            return None  # not LangChain's: leave it unknown
        shape, answer, model, generations, usage = value
        entry = self.new_entry(rec, cache)
        entry.prompt_hash = key[-65:-33]
        entry.answer, entry.generations, entry.usage = answer, generations, usage
        entry.notes.append(shape or "value too large to decode fully; answer is a preview")
        known = _known_text(ctx, key, model)
        messages, entry.prompt, ids, entry.llm_string, entry.model, entry.model_params, by_hash = known
        if by_hash:
            entry.notes.append("RedisCache stores only md5(llm_string); model shown by that hash")
        if entry.prompt is None:
            entry.notes.append("RedisCache stores only md5(prompt); the text is known only if given or seen elsewhere")
        else:
            mark_message_ids(entry, ids)
            if full:
                entry.messages = message_list(messages)
        return entry

    def list_row(self, rec: RawRecord, cache: str, ctx: Context, now: float) -> dict | None:
        """decode(full=False).to_dict(), built from the same rule functions without an Entry."""
        key = rec.key_text
        value = _read_value(rec, False, stops=False)
        if value is None:
            return None
        _shape, answer, model_of_gens, _generations, _usage = value
        _messages, prompt, ids, _llm_string, model, _params, _by_hash = _known_text(ctx, key, model_of_gens)
        return self.new_row(
            rec,
            cache,
            now,
            prompt=prompt,
            prompt_hash=key[-65:-33],
            model=model,
            answer=answer,
            unreachable=unreachable_by_ids(None, ids),
        )

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


def _read_value(rec: RawRecord, full: bool, stops: bool) -> tuple | None:
    """(value shape, answer, model, generations, usage) of a document; None when it is not
    LangChain's. A document cut at the read limit is LangChain's if it starts like one: its answer
    is a preview (shape "") and nothing else is read from it."""
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
    if gens_raw is not None:
        answer, model, generations, usage = lc.read_generations(gens_raw, full, stops)
        return shape, answer, model, generations, usage
    if not rec.truncated or not isinstance(rec.value, bytes) or b'"lc":1' not in rec.value[:200].replace(b" ", b""):
        return None
    found = _TEXT_RE.search(rec.value)
    return "", found.group(1).decode("utf-8", "replace") if found else None, None, None, None


def _known_text(ctx: Context, key: str, model: str | None) -> tuple:
    """(messages, prompt, message ids, llm_string, model, model params, whether the model is shown by
    its hash) of an entry whose key holds only md5(prompt) and md5(llm_string): the texts as
    learned from other caches (ctx), the model from the generations or else the llm_string, or else
    shown by its hash ("llm:<md5[:8]>")."""
    llm_md5 = key[-32:]
    llm_string = ctx.known_llm_strings.get(llm_md5) or None
    params = None
    if llm_string:
        parsed, params = lc.parse_llm_string(llm_string)
        model = model or parsed
    by_hash = model is None
    if by_hash:
        model = f"llm:{llm_md5[:8]}"
    prompt = ctx.known_prompts.get(key[-65:-33])
    if prompt is None:
        return None, None, [], llm_string, model, params, by_hash
    messages, prompt, ids = lc.read_prompt(prompt)
    return messages, prompt, ids, llm_string, model, params, by_hash
