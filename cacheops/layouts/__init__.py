"""The registry of cache layouts. Order matters: more specific layouts claim a record first."""

from __future__ import annotations

import re

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
# classify's claims remembered by key shape: (type, key head, whether each hex run is all digits)
# -> every (layout, cache) whose cache_of claims such a key, in priority order; False where a
# cache name is cut from the hex run (not the same for every key of the head). A scan's keys share
# a few heads ("llmcache:", "redis:"), so most keys cost one lookup instead of a cache_of per
# layout. As for NameShapes: no layout's shape depends on which hex digits a run has, only on where
# the runs are, except whether a run is all digits (GPTCache ids are decimal): that is in the key.
_CLAIMS: dict[tuple, tuple[tuple[Layout, str], ...] | bool] = {}


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
    _CLAIMS.clear()
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
    for layout, cache in _claims(rec):
        entry = layout.decode(rec, cache, ctx, full)
        if entry is not None:
            return entry
    return None


def list_row(rec: RawRecord, ctx: Context, now: float) -> dict | Infrastructure | None:
    """classify's answer as a listing prints it: the entry's row (Entry.to_dict(), built by the
    layout's list_row), the Infrastructure, or None when no layout recognises the record."""
    for layout, cache in _claims(rec):
        row = layout.list_row(rec, cache, ctx, now)
        if row is not None:
            return row
    return None


def _claims(rec: RawRecord) -> tuple[tuple[Layout, str], ...]:
    key = rec.key
    n = len(key)
    # The tail checks of _MD5_PAIR and _SHA256 without a regex (half the cost): deleting the hex
    # digits leaves only the colon between two md5s, or nothing of a sha256.
    if n > 66 and key[n - 66] == 58 and key[n - 33] == 58 and key[n - 65 :].translate(None, _HEX_DIGITS) == b":":
        shape: tuple = (rec.type, key[: n - 65], key[n - 65 : n - 33].isdigit(), key[n - 32 :].isdigit())
        tail = 65
    elif n > 65 and key[n - 65] == 58 and not key[n - 64 :].translate(None, _HEX_DIGITS):
        shape, tail = (rec.type, key[: n - 64], key[n - 64 :].isdigit()), 64
    else:
        return _claims_of(rec)
    known = _CLAIMS.get(shape)
    if isinstance(known, tuple):
        return known
    claims = _claims_of(rec)
    if known is None and len(_CLAIMS) < _MEMO_MAX:
        head = rec.key_text[:-tail]  # the tail is ASCII: the same characters in the text
        _CLAIMS[shape] = claims if all(cache == head[: len(cache)] for _layout, cache in claims) else False
    return claims


def _claims_of(rec: RawRecord) -> tuple[tuple[Layout, str], ...]:
    """Every (layout, cache) whose cache_of claims this record, in priority order."""
    out = []
    for layout in _BY_TYPE.get(rec.type, ()):
        cache = layout.cache_of(rec)
        if cache is not None:
            out.append((layout, cache))
    return tuple(out)


_HEX = re.compile(rb"[0-9a-f]+")
_HEX_DIGITS = b"0123456789abcdef"
_MD5_PAIR = re.compile(rb":[0-9a-f]{32}:[0-9a-f]{32}")  # the commonest tails, checked in one call each
_SHA256 = re.compile(rb":[0-9a-f]{64}")
_MEMO_MAX = 100_000  # key heads remembered by a NameShapes (flat memory)


class NameShapes:
    """The caches a key could belong to, told from its name alone (no TYPE, no value): every cache
    some layout's cache_of names for it under any of the types that layout lists. The quick catalog
    groups a names-only scan by this and reads only a sample of each group.

    Per key it must cost little more than receiving the name, so the answer is remembered per key
    head: a key ending in one or two ':'-separated lowercase hex runs of 32 or 64 (an md5, a sha256:
    every hashed-prompt layout's shape) is looked up by what precedes them and their widths; keys of
    one head differ only in those hex digits, and no layout's shape depends on which digits they
    are, only on where the runs are. A cache named by part of a run (community semantic caches are
    "doc:cache:<md5 of llm_string>") is kept as a length and cut from each key."""

    def __init__(self) -> None:
        self._memo: dict[tuple[int, ...], dict[bytes, tuple]] = {(32, 32): {}, (64,): {}}
        self._md5_pairs = self._memo[(32, 32)]
        self._sha256s = self._memo[(64,)]
        self._types = sorted(_BY_TYPE)
        # cache name (as _probe found it) -> the kind of the first layout claiming it: a running count
        # can show a cache's kind before any value is read
        self.kinds: dict[str, str] = {}

    def caches_of(self, key: bytes) -> tuple[str, ...]:
        """Sorted distinct cache names layouts would claim this key for; () when none would."""
        n = len(key)
        if n > 66 and _MD5_PAIR.fullmatch(key, n - 66):
            head = key[: n - 65]
            memo = self._md5_pairs.get(head)
            if memo is None:
                memo = self._remember(key, head, (32, 32))
        elif n > 65 and _SHA256.fullmatch(key, n - 65):
            head = key[: n - 64]
            memo = self._sha256s.get(head)
            if memo is None:
                memo = self._remember(key, head, (64,))
        else:
            end = n
            widths: tuple[int, ...] = ()
            while len(widths) < 2:
                colon = key.rfind(b":", 0, end)
                width = end - colon - 1
                if (width != 32 and width != 64) or not _HEX.fullmatch(key, colon + 1, end):
                    break
                widths = (width, *widths)
                end = colon
                if colon < 0:
                    break
            if not widths:
                return self._probe(key)
            head = key[: end + 1] if end >= 0 else b""
            memo = self._memo.setdefault(widths, {}).get(head)
            if memo is None:
                memo = self._remember(key, head, widths)
        caches, cuts = memo
        if cuts is None:
            return caches
        text = key.decode("utf-8", "backslashreplace")
        return tuple(sorted({c if n is None else text[:n] for c, n in zip(caches, cuts)}))

    def _remember(self, key: bytes, head: bytes, widths: tuple[int, ...]) -> tuple:
        caches = self._probe(key)
        text = key.decode("utf-8", "backslashreplace")
        within = len(head.decode("utf-8", "backslashreplace"))
        # A cache name longer than the head is cut from each key's text; else it is every key's.
        cuts = tuple(len(c) if len(c) > within and text.startswith(c) else None for c in caches)
        memo = (caches, cuts if any(n is not None for n in cuts) else None)
        table = self._memo[widths]
        if len(table) < _MEMO_MAX:
            table[head] = memo
        return memo

    def _probe(self, key: bytes) -> tuple[str, ...]:
        found = set()
        rec = RawRecord(key, "", -1, None)
        for type_ in self._types:
            rec.type = type_
            for layout in _BY_TYPE[type_]:
                cache = layout.cache_of(rec)
                if cache is not None:
                    found.add(cache)
                    self.kinds.setdefault(cache, layout.kind)
        return tuple(sorted(found))

    def kind_of(self, cache: str) -> str:
        """The kind of the layout that named this cache ("" for a name cut from a key, not probed)."""
        return self.kinds.get(cache, "")


__all__ = [
    "NameShapes",
    "LAYOUTS",
    "BY_ID",
    "UNREACHABLE_REASONS",
    "classify",
    "list_row",
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
