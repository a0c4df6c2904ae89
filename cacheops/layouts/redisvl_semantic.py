"""RedisVL SemanticCache used directly: one HASH per entry, indexed for vector search.

Key    <name>:<sha256(prompt + filters)>   (default name "llmcache"; index prefix = name, no colon)
Fields entry_id, prompt, response, prompt_vector, inserted_at, updated_at [, metadata] [, filter fields]
(docs/layouts.md C). The same hash shape is written by langchain-redis RedisSemanticCache, which has
its own layout (langchain_semantic) that claims entries carrying metadata.llm_string first.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

import orjson

from ..errors import UsageError
from ..server.indexes import DTYPE_BYTES, IndexInfo, parse_search
from ..server.keyspace import RawRecord
from . import langchain_format as lc
from .base import HEX64, Context, Entry, Message, PromptQuery, SemanticLayout, VectorInfo, hex_tail

CORE_FIELDS = {"entry_id", "prompt", "response", "prompt_vector", "inserted_at", "updated_at", "metadata"}
_CORE_FIELD_NAMES = frozenset(name.encode() for name in CORE_FIELDS)
_STOPWORDS = {
    "a",
    "an",
    "and",
    "are",
    "as",
    "at",
    "be",
    "but",
    "by",
    "for",
    "if",
    "in",
    "into",
    "is",
    "it",
    "no",
    "not",
    "of",
    "on",
    "or",
    "such",
    "that",
    "the",
    "their",
    "then",
    "there",
    "these",
    "they",
    "this",
    "to",
    "was",
    "will",
    "with",
}


def text(value) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return None if value is None else str(value)


def fields_of(rec: RawRecord) -> dict[bytes, object]:
    """A HASH record's fields, keyed by the field names as stored (bytes): no per-key decoding."""
    return rec.value if isinstance(rec.value, dict) else {}


def as_float(value) -> float | None:
    try:
        return float(value)  # float() reads bytes and str alike
    except (TypeError, ValueError):
        return None


def json_field(value):
    try:
        return orjson.loads(value) if isinstance(value, bytes) and value else None
    except orjson.JSONDecodeError:
        return None


_VECTORS: dict[tuple, VectorInfo] = {}  # vector_info's answers: one per (field, length, index vector shape)


def vector_info(fields: dict, name: str, index) -> VectorInfo | None:
    raw = fields.get(name.encode())
    if raw is None:
        return None
    nbytes = raw if isinstance(raw, int) else len(raw)
    vec = index.vector if index else None
    # Every entry of a cache has the same answer (VectorInfo is frozen, so entries share it).
    memo = (name, nbytes, vec.dtype, vec.dims) if vec else (name, nbytes)
    found = _VECTORS.get(memo)
    if found is not None:
        return found
    if vec:
        width = DTYPE_BYTES.get(vec.dtype, 4)
        dims = nbytes // width if nbytes % width == 0 else None
        found = VectorInfo(name, dims, vec.dtype, nbytes, matches_index=nbytes == vec.nbytes)
    else:
        found = VectorInfo(name, nbytes // 4 if nbytes % 4 == 0 else None, None, nbytes)
    if len(_VECTORS) < 1000:
        _VECTORS[memo] = found
    return found


# The playbook `type:` of these caches (warm writes them through the library: ops/warm.py).
PlaybookType = Literal["redisvl_semantic"]


class RedisVLSemanticLayout(SemanticLayout):
    id = "redisvl_semantic"
    warm_type: ClassVar[str | None] = "redisvl_semantic"
    library = "RedisVL SemanticCache"
    key_re = re.compile(rf"^(?P<prefix>.+):(?P<id>{HEX64})$", re.S)
    vector_field = "prompt_vector"
    default_threshold: ClassVar[float | None] = 0.1  # SemanticCache(distance_threshold=0.1) (docs/layouts.md C)
    scope = "filter fields"
    _required = frozenset((b"prompt", b"response", vector_field.encode()))  # the core fields decode needs

    def cache_of(self, rec: RawRecord) -> str | None:
        if rec.type != "hash" or len(rec.key) < 66 or not hex_tail(rec.key, 64):  # cheap check before any regex
            return None
        return rec.key_text[:-65]

    def claims(self, fields: dict, meta) -> bool:
        """Content check of a hash that has the core fields (claimed checks them first): nothing
        marks a more specific library. meta is the parsed metadata field (None if absent or not JSON)."""
        return not (isinstance(meta, dict) and "llm_string" in meta) and b"litellm_cache_key" not in fields

    def claimed(self, rec: RawRecord) -> tuple[dict, Any] | None:
        """(the hash's fields, its parsed metadata field) when this layout claims the record's
        content, else None: the first step of decode and of a listing row."""
        fields = fields_of(rec)
        if not self._required <= fields.keys():
            return None
        meta = json_field(fields.get(b"metadata"))
        return (fields, meta) if self.claims(fields, meta) else None

    def decode(self, rec: RawRecord, cache: str, ctx: Context, full: bool = True) -> Entry | None:
        claimed = self.claimed(rec)
        if claimed is None:
            return None
        fields, meta = claimed
        index = ctx.index_for_prefix(cache)
        entry = self.new_entry(rec, cache)
        entry.index = index.name if index else None
        entry.prompt_hash = rec.key_text[-64:]
        entry.inserted_at = as_float(fields.get(b"inserted_at"))
        entry.updated_at = as_float(fields.get(b"updated_at"))
        entry.metadata = meta
        entry.vector = vector_info(fields, self.vector_field, index)
        entry.tags = filter_tags(fields)
        mark_reachability(entry, ctx, index, cache, self.vector_field)
        self.decode_payload(entry, fields, full)
        return entry

    def decode_payload(self, entry: Entry, fields: dict, full: bool = True) -> None:
        """The library-specific fields (prompt, response, model) of a claimed entry."""
        entry.prompt = text(fields.get(b"prompt"))
        entry.answer = text(fields.get(b"response"))
        if isinstance(entry.metadata, dict):
            model = entry.metadata.get("model")
            entry.model = model if isinstance(model, str) else None
        entry.model = entry.model or entry.tags.get("model")

    def embedded_text(self, text: str, system: str | None = None, chat: bool = True) -> str:
        """The raw prompt: a system message is not part of what RedisVL embeds."""
        if system is not None:
            raise UsageError("--system only applies to LangChain caches; RedisVL SemanticCache embeds the raw prompt")
        return text

    def semantic_prefixes(self, ctx: Context, cache: str | None) -> list[tuple[str, IndexInfo]]:
        out = []
        for idx in ctx.indexes:
            if idx.key_type != "HASH" or self.vector_field not in idx.fields or "prompt" not in idx.fields:
                continue
            for prefix in idx.prefixes:
                name = prefix.rstrip(":")
                if cache is None or cache == name:
                    out.append((name, idx))
        return out

    def prompt_strings(self, query: PromptQuery) -> list[str]:
        return [query.text] if query.system is None else []

    def locate(self, client, query: PromptQuery, ctx: Context, cache=None):
        for prefix, idx in self.semantic_prefixes(ctx, cache):
            for prompt in self.prompt_strings(query):
                yield f"{prefix}:{lc.sha256_hex(prompt)}".encode()
            # Filtered caches hash the filter values into the id: find those by the indexed prompt text.
            yield from search_prompt_terms(client, idx.name, query.text)

    def matches(self, entry: Entry, query: PromptQuery, ctx=None) -> bool:
        if query.system is not None or entry.messages:
            return False
        return entry.prompt == query.text


def filter_tags(fields: dict) -> dict[str, str]:
    """The hash's filter fields (every field beside the core ones) as text: RedisVL's filterable
    fields, which scope a lookup. Rare: most caches have none."""
    if fields.keys() <= _CORE_FIELD_NAMES:
        return {}
    return {
        k.decode("utf-8", "replace"): v.decode("utf-8", "replace")
        for k, v in fields.items()
        if k not in _CORE_FIELD_NAMES and isinstance(v, bytes)
    }


def reachability(
    ctx: Context, key: str, index, cache: str, vector: VectorInfo | None, vector_field: str
) -> tuple[str | None, str | None]:
    """(why no vector query can return the document: a key of UNREACHABLE_REASONS or None, the note
    that explains it or the prefix bleed that makes it reachable, or None)."""
    if vector and vector.matches_index is False:
        return "vector_mismatch", (
            f"vector is {vector.nbytes} bytes but index {index.name} expects "
            f"{index.vector.nbytes} ({index.vector.dims} x {index.vector.dtype}): not searchable"
        )
    if index is None:
        other = ctx.searchable_by(key, vector_field)
        if other is None:
            return "no_index", f"no search index covers prefix {cache!r}: the cache cannot find this entry"
        return None, (
            f"only index {other.name!r} (prefix {other.prefixes}) covers this key, by prefix "
            f"bleed: its searches can return this entry"
        )
    return None, None


def mark_reachability(entry: Entry, ctx: Context, index, cache: str, vector_field: str) -> None:
    """Set entry.unreachable when no vector query can return the document (see UNREACHABLE_REASONS)."""
    reason, note = reachability(ctx, entry.key, index, cache, entry.vector, vector_field)
    if reason is not None:
        entry.unreachable = reason
    if note is not None:
        entry.notes.append(note)


def search_prompt_terms(client, index: str, text_: str, limit: int = 200) -> list[bytes]:
    """Keys of documents whose TEXT-indexed prompt contains every significant word of text_."""
    words = [w for w in re.findall(r"[^\W_]+", text_.lower()) if w not in _STOPWORDS]
    if not words:
        return []
    query = "@prompt:(" + " ".join(words[:12]) + ")"
    try:
        reply = client.execute_command("FT.SEARCH", index, query, "NOCONTENT", "LIMIT", 0, limit, "DIALECT", 2)
    except Exception:  # a query RediSearch rejects is just no candidates; exact keys were tried already
        return []
    return [key for key, _ in parse_search(reply, nocontent=True)]


def unreachable_by_ids(unreachable: str | None, ids: list[str]) -> str | None:
    """An entry's unreachable reason once its prompt's message ids are known: a chat prompt
    serialised with message ids (lc.read_prompt) was keyed by langchain-core < 1.2.7; current
    versions strip the ids first, so they never compute this entry's key again."""
    return "message_ids" if ids and unreachable is None else unreachable


def mark_message_ids(entry: Entry, ids: list[str]) -> None:
    """unreachable_by_ids on an entry, with the note that says why."""
    if ids:
        entry.unreachable = unreachable_by_ids(entry.unreachable, ids)
        entry.notes.append(
            f"prompt messages carry ids {ids[:3]}: keyed by langchain-core < 1.2.7; "
            f"an app on >= 1.2.7 strips ids and never looks this key up"
        )


def message_list(messages):
    return [Message(r, t) for r, t in messages] if messages is not None else None
