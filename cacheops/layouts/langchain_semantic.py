"""langchain-redis RedisSemanticCache: a RedisVL SemanticCache whose entries carry LangChain data.

Key      <name>:<sha256(prompt)>, prompt = the serialised message list (docs/layouts.md B)
prompt   langchain_core.load.dumps(messages); an LLM's raw text
response JSON array of strings, each dumps(generation) (double-encoded)
metadata {"llm_string": ...}: the model is told apart here, not in the key
Index/prefix mapping changed across langchain-redis versions (0.1.x: index = name over keys
"<prefix>:"; 0.2.1-0.2.3: prefix ignored; 0.2.4+: "<name>:<prefix>"): entries are attributed by the
prefix the index actually covers, so every version's entries land in the right cache.
"""

from __future__ import annotations

from typing import Literal

import orjson

from ..server.indexes import sample_fields
from ..server.keyspace import RawRecord
from . import langchain_format as lc
from .base import Context, Entry, PromptQuery
from .redisvl_semantic import (
    RedisVLSemanticLayout,
    as_float,
    filter_tags,
    json_field,
    mark_message_ids,
    message_list,
    reachability,
    text,
    unreachable_by_ids,
    vector_info,
)

LEARN_PER_INDEX = 2_000


# The playbook `type:` of these caches (warm writes them through the library: ops/warm.py).
PlaybookType = Literal["langchain_semantic"]


class LangChainSemanticLayout(RedisVLSemanticLayout):
    id = "langchain_semantic"
    warm_type = "langchain_semantic"
    library = "langchain-redis RedisSemanticCache"
    default_threshold = 0.2  # RedisSemanticCache(distance_threshold=0.2), not RedisVL's 0.1 (docs/layouts.md B)
    scope = "llm_string"
    wraps_prompt = True

    def embedded_text(self, text: str, system: str | None = None, chat: bool = True) -> str:
        """The serialised message list for a chat model, the raw text for a plain LLM (which LangChain
        renders a system message into as "System: ...\nHuman: ...")."""
        if chat:
            return lc.chat_prompt(text, system)
        return text if system is None else f"System: {system}\nHuman: {text}"

    def lookup_scope(self, entry: Entry) -> tuple:
        """lookup() compares the hit's llm_string: another model's entry is a miss, not a wrong answer."""
        return ("llm_string", entry.llm_string or "")

    def app_settings(self, name: str, embedding: str, filterable: bool) -> str:
        return f'RedisSemanticCache(name="{name}", embeddings=<{embedding}>)'

    def prepare(self, client, ctx) -> None:
        """Learn prompt and llm_string hashes from a sample of each semantic index, so entries of an
        exact cache fed by the same app (which stores only md5s) can show their text and model."""
        if not ctx.learn:
            return
        for idx in ctx.indexes:
            if not {"prompt", self.vector_field} <= idx.fields.keys():
                continue
            for fields in sample_fields(client, idx.name, ("prompt", "metadata"), LEARN_PER_INDEX):
                if fields.get(b"prompt"):
                    ctx.learn_prompt(fields[b"prompt"])
                meta = json_field(fields.get(b"metadata"))
                if isinstance(meta, dict) and isinstance(meta.get("llm_string"), str):
                    ctx.learn_llm_string(meta["llm_string"])

    def claims(self, fields: dict, meta) -> bool:
        return isinstance(meta, dict) and "llm_string" in meta

    def decode_payload(self, entry: Entry, fields: dict, full: bool = True) -> None:
        messages, entry.prompt, ids = lc.read_prompt(text(fields.get(b"prompt")) or "")
        if full:
            entry.messages = message_list(messages)
        mark_message_ids(entry, ids)
        entry.llm_string, entry.model, entry.model_params = _model(entry.metadata)
        entry.answer, entry.generations, entry.usage, whole = _response(fields, full, stops=True)
        if not whole:
            entry.notes.append("response is not a list of serialised generations (truncated?)")

    def list_row(self, rec: RawRecord, cache: str, ctx: Context, now: float) -> dict | None:
        """decode(full=False).to_dict(), built from the same rule functions without an Entry."""
        claimed = self.claimed(rec)
        if claimed is None:
            return None
        fields, meta = claimed
        key = rec.key_text
        index = ctx.index_for_prefix(cache)
        vector = vector_info(fields, self.vector_field, index)
        unreachable = reachability(ctx, key, index, cache, vector, self.vector_field)[0]
        _messages, prompt, ids = lc.read_prompt(text(fields.get(b"prompt")) or "")
        answer = _response(fields, False, stops=False)[0]
        return self.new_row(
            rec,
            cache,
            now,
            index=index.name if index else None,
            prompt=prompt,
            prompt_hash=key[-64:],
            model=_model(meta)[1],
            answer=answer,
            inserted_at=as_float(fields.get(b"inserted_at")),
            updated_at=as_float(fields.get(b"updated_at")),
            tags=filter_tags(fields),
            unreachable=unreachable_by_ids(unreachable, ids),
            vector=vector,
        )

    def prompt_strings(self, query: PromptQuery) -> list[str]:
        out = [lc.chat_prompt(query.text, query.system)]
        return out + ([query.text] if query.system is None else [])

    def matches(self, entry: Entry, query: PromptQuery, ctx=None) -> bool:
        if entry.messages is None:
            return query.system is None and entry.prompt == query.text
        wanted = ([("system", query.system)] if query.system is not None else []) + [("human", query.text)]
        return [(m.role, m.content) for m in entry.messages] == wanted


def _model(meta) -> tuple[str | None, str | None, dict | None]:
    """(llm_string, model, model params) from the metadata field: the model is told apart there."""
    llm_string = meta.get("llm_string") if isinstance(meta, dict) else None
    if isinstance(llm_string, str):
        model, params = lc.parse_llm_string(llm_string)
        return llm_string, model, params
    return llm_string, None, None


def _response(fields: dict, full: bool, stops: bool) -> tuple[str | None, list[dict] | None, dict | None, bool]:
    """(answer, generations, usage, whether the response parsed whole) of the response field, which
    is double-encoded: a JSON list of strings, each a serialised generation. A response that does
    not parse is shown as its text (and whatever generations parsed before the fault win)."""
    gens: list = []
    response = fields.get(b"response")
    answer, whole = None, True
    try:
        loads = orjson.loads
        for gen_text in loads(response) if isinstance(response, bytes) else ():
            gens.append(loads(gen_text))
    except (orjson.JSONDecodeError, TypeError):
        answer, whole = text(response), False
    if gens:
        answer, _model_of_gens, generations, usage = lc.read_generations(gens, full, stops)
        return answer, generations, usage, whole
    return answer, None, None, whole
