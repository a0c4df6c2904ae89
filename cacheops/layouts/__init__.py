"""The registry of cache layouts. Order matters: more specific layouts claim a record first."""

from __future__ import annotations

from ..server.keyspace import RawRecord
from .base import UNREACHABLE_REASONS, Context, Entry, Infrastructure, Layout, Message, PromptQuery, VectorInfo
from .cacheops_own import CacheopsOwnLayout
from .community_exact import CommunityExactLayout
from .community_semantic import CommunitySemanticLayout
from .gptcache import GPTCacheLayout
from .langchain_exact import LangChainExactLayout
from .langchain_semantic import LangChainSemanticLayout
from .litellm_exact import LiteLLMExactLayout
from .litellm_semantic import LiteLLMSemanticLayout
from .pickle_llm_cache import PickleLLMCacheLayout
from .pickle_smart_cache import PickleSmartCacheLayout
from .redisvl_embeddings import RedisVLEmbeddingsLayout
from .redisvl_semantic import RedisVLSemanticLayout

# Specific shapes first; the generic "<prefix>:<sha256>" STRING (LiteLLM exact) last. Each layout
# also checks content, so the order only decides between layouts that could both claim a value.
LAYOUTS: list[Layout] = [
    CacheopsOwnLayout(),
    LangChainExactLayout(),
    GPTCacheLayout(),
    CommunitySemanticLayout(),
    LangChainSemanticLayout(),
    LiteLLMSemanticLayout(),
    RedisVLSemanticLayout(),
    RedisVLEmbeddingsLayout(),
    CommunityExactLayout(),
    PickleLLMCacheLayout(),
    PickleSmartCacheLayout(),
    LiteLLMExactLayout(),
]

BY_ID = {layout.id: layout for layout in LAYOUTS}
_BY_TYPE: dict[str, list[Layout]] = {}  # TYPE -> the layouts that may claim it, in priority order
for _layout in LAYOUTS:
    for _type in _layout.types():
        _BY_TYPE.setdefault(_type, []).append(_layout)


def classify(rec: RawRecord, ctx: Context, full: bool = True) -> Entry | Infrastructure | None:
    """The decoded entry if some layout recognises both the key's shape and its content, else None.

    A key under a cache's prefix whose content is not that library's (a session key, a counter,
    another cache's document) is unknown: it is never listed, counted or deleted as an entry.
    full=False decodes for a listing (see Layout.decode)."""
    for layout in _BY_TYPE.get(rec.type, ()):
        cache = layout.cache_of(rec)
        if cache is not None:
            entry = layout.decode(rec, cache, ctx, full)
            if entry is not None:
                return entry
    return None


__all__ = [
    "LAYOUTS",
    "BY_ID",
    "UNREACHABLE_REASONS",
    "classify",
    "Context",
    "Entry",
    "Infrastructure",
    "Layout",
    "Message",
    "PromptQuery",
    "VectorInfo",
]
