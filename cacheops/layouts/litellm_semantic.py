"""LiteLLM redis-semantic cache: a RedisVL SemanticCache with a litellm_cache_key TAG (scope).

Index  litellm_semantic_cache_index by default (its "_isolated" fallback when a same-named index
       has another schema); keys <index>:sha256(prompt + "litellm_cache_key" + scope) (docs/layouts.md F2)
prompt every message's content concatenated with no separator
response the same {"timestamp", "response"} wrapper as the exact cache, as a Python repr
"""

from __future__ import annotations

from .base import Entry, PromptQuery
from .litellm_format import decode_into, looks_like_wrapper
from .redisvl_semantic import RedisVLSemanticLayout, text


class LiteLLMSemanticLayout(RedisVLSemanticLayout):
    id = "litellm_semantic"
    library = "LiteLLM Cache (redis-semantic)"
    # Cache(similarity_threshold=...) is required (distance = 1 - similarity): LiteLLM has no default.
    default_threshold = None
    scope = "litellm_cache_key (model and request params)"  # a TAG filter field: the default lookup_scope
    warm_type = None

    def embedded_text(self, text: str, system: str | None = None, chat: bool = True) -> str:
        """Every message's content concatenated with no separator: the stored prompt field."""
        return (system or "") + text

    def app_settings(self, name: str, embedding: str, filterable: bool) -> str:
        return (
            f'Cache(type="redis-semantic", redis_semantic_cache_index_name="{name}", '
            f"redis_semantic_cache_embedding_model=<{embedding}>)"
        )

    def claims(self, fields: dict, meta) -> bool:
        return b"litellm_cache_key" in fields

    def decode_payload(self, entry: Entry, fields: dict, full: bool = True) -> None:
        entry.prompt = text(fields.get(b"prompt"))
        scope = entry.tags.get("litellm_cache_key")
        if scope:
            entry.notes.append(
                f"scope (litellm_cache_key) {scope[:12]}…: sha256 of the model and request "
                "params; lookups only match entries of the same scope"
            )
        raw = fields.get(b"response")
        encoding = looks_like_wrapper(raw) if isinstance(raw, bytes) else None
        if encoding is None or not isinstance(raw, bytes) or not decode_into(entry, raw, encoding):
            entry.answer = text(raw)

    def prompt_strings(self, query: PromptQuery) -> list[str]:
        return []  # the id also hashes the scope (model + params): found by the indexed prompt text

    def matches(self, entry: Entry, query: PromptQuery, ctx=None) -> bool:
        return entry.prompt == (query.system or "") + query.text
