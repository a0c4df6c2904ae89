"""The registry of cache layouts. Order matters: more specific layouts claim a record first."""

from __future__ import annotations

from ..server.keyspace import RawRecord
from .base import (
    UNREACHABLE_REASONS,
    Context,
    Entry,
    Infrastructure,
    Layout,
    Message,
    PromptQuery,
    SemanticLayout,
    VectorInfo,
)
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
LAYOUTS: list[Layout] = []
BY_ID: dict[str, Layout] = {}
_BY_TYPE: dict[str, list[Layout]] = {}  # TYPE -> the layouts that may claim it, in priority order


def register(layout: Layout, before: str | None = None) -> Layout:
    """Add a layout to the registry: last, or just before the layout with id `before` (a more
    specific layout must claim a shared shape first). Everything that asks the registry (classify,
    BY_ID, semantic_layouts) sees it from then on."""
    if layout.id in BY_ID:
        raise ValueError(f"a layout with id {layout.id!r} is already registered")
    at = len(LAYOUTS) if before is None else LAYOUTS.index(BY_ID[before])
    LAYOUTS.insert(at, layout)
    BY_ID[layout.id] = layout
    _rebuild_types()
    return layout


def unregister(layout_id: str) -> None:
    """Remove a registered layout (tests that register one of their own)."""
    LAYOUTS.remove(BY_ID.pop(layout_id))
    _rebuild_types()


def _rebuild_types() -> None:
    _BY_TYPE.clear()
    for layout in LAYOUTS:
        for type_ in layout.types():
            _BY_TYPE.setdefault(type_, []).append(layout)


for _layout in (
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
):
    register(_layout)

# The semantic layout a cache is taken for when no entry tells (an empty cache): RedisVL's
# SemanticCache, which the other semantic libraries wrap.
DEFAULT_SEMANTIC: SemanticLayout = BY_ID[RedisVLSemanticLayout.id]  # type: ignore[assignment]


def semantic_layout(layout_id: str | None) -> SemanticLayout | None:
    """The registered layout of that id if it implements the semantic interface, else None."""
    layout = BY_ID.get(layout_id or "")
    return layout if isinstance(layout, SemanticLayout) else None


def semantic_layouts() -> list[SemanticLayout]:
    """Every registered semantic layout, in priority order."""
    return [layout for layout in LAYOUTS if isinstance(layout, SemanticLayout)]


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


def claim_by_shape(rec: RawRecord) -> tuple[Layout, str] | None:
    """The first layout (in priority order) whose key shape and type claim this key, and its cache:
    what can be told without the value (the quick catalog). classify then confirms with the content."""
    for layout in _BY_TYPE.get(rec.type, ()):
        cache = layout.cache_of(rec)
        if cache is not None:
            return layout, cache
    return None


__all__ = [
    "LAYOUTS",
    "BY_ID",
    "UNREACHABLE_REASONS",
    "classify",
    "claim_by_shape",
    "Context",
    "Entry",
    "Infrastructure",
    "Layout",
    "Message",
    "PromptQuery",
    "SemanticLayout",
    "VectorInfo",
    "DEFAULT_SEMANTIC",
    "register",
    "unregister",
    "semantic_layout",
    "semantic_layouts",
]
