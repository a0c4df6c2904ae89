"""The one interface every cache layout implements, and the decoded Entry they all produce.

A layout knows one library's Redis shapes and nothing else: how its keys look, how to decode a
value, how to find the keys for a user's prompt, which companion keys belong to an entry. The rest of
cacheops only talks to this interface, so adding a cache library means adding one module.
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import redis

from ..errors import ConfigError
from ..server.indexes import IndexInfo
from ..server.keyspace import RawRecord
from .langchain_format import md5_hex

HEX32 = "[0-9a-f]{32}"
KNOWN_HASHES_MAX = 100_000  # bound on the hash -> text maps a Context learns (flat memory)
HEX64 = "[0-9a-f]{64}"
_HEX_RUN = re.compile(rb"[0-9a-f]+")


def hex_tail(key: bytes, *widths: int) -> int:
    """Length of a key's tail ":<hex>[:<hex>...]" of these widths (lowercase hex digits), 0 if the key
    does not end so. A cheap shape check run for every key of a scan before any regex: the tail is
    ASCII, so it is also the last that many characters of the key's text."""
    end = len(key)
    for width in reversed(widths):
        start = end - width
        if start < 1 or key[start - 1] != 0x3A or not _HEX_RUN.fullmatch(key, start, end):
            return 0
        end = start - 1
    return len(key) - end


def matched(pattern: re.Pattern, text: str) -> re.Match:
    """The match of a key pattern that cache_of already checked the key against (decode's second look)."""
    m = pattern.match(text)
    if m is None:
        raise ValueError(f"{text!r} does not match {pattern.pattern!r}, which cache_of checked")
    return m


@dataclass
class Message:
    role: str  # human, system, ai, tool, ...
    content: str


@dataclass(slots=True, frozen=True)  # frozen: the entries of one cache share one (vector_info)
class VectorInfo:
    field: str
    dims: int | None
    dtype: str | None
    nbytes: int
    matches_index: bool | None = None  # None: no index to compare with


@dataclass(slots=True)
class Entry:
    """One cache entry, decoded. Fields a layout cannot know stay None."""

    key: str
    layout: str  # layout id, e.g. "langchain_exact"
    library: str  # e.g. "langchain-redis RedisCache"
    kind: str  # exact | semantic | embeddings
    cache: str  # the cache's name: its key prefix
    index: str | None = None
    prompt: str | None = None  # the user's text (last human message), or raw LLM prompt
    messages: list[Message] | None = None
    prompt_hash: str | None = None  # the hash the layout keys on (md5 / sha256 of the prompt)
    model: str | None = None
    llm_string: str | None = None
    model_params: dict | None = None
    answer: str | None = None
    generations: list[dict] | None = None  # decoded generation dicts (show; a listing: why each stopped)
    usage: dict | None = None
    ttl_ms: int | None = None  # None: no expiry
    bytes: int | None = None
    inserted_at: float | None = None
    updated_at: float | None = None
    tags: dict[str, str] = field(default_factory=dict)
    metadata: dict | None = None
    vector: VectorInfo | None = None
    truncated: bool = False
    notes: list[str] = field(default_factory=list)
    # Why no lookup can ever return this entry (a key of UNREACHABLE_REASONS), or None. Evicting
    # by `entry.unreachable is not None` removes only memory that no app can hit.
    unreachable: str | None = None
    # How the value is serialised when that matters to the reader: "pickle" (never loaded: loading
    # a pickle runs code), "python-repr" (read with ast.literal_eval), None for JSON/hash fields.
    value_format: str | None = None
    # Other keys that are part of this entry and go with it (shown and deleted together).
    companions: list[str] = field(default_factory=list)
    # What the app-side hit tracker recorded (inspect/hits.attach_hits), None when untracked.
    hits: dict | None = None

    @property
    def expires_at(self) -> float | None:
        return None if self.ttl_ms is None else time.time() + self.ttl_ms / 1000

    def has_model(self, name: str) -> bool:
        """This entry's model is `name`: its model name, or the model as a whole quoted value in the
        llm_string ('gpt-4o' must not select gpt-4o-mini)."""
        if self.model == name:
            return True
        llm_string = self.llm_string or ""
        return f"'{name}'" in llm_string or f'"{name}"' in llm_string

    def to_dict(self, full: bool = False) -> dict:
        out = listing_row(
            self.key,
            self.layout,
            self.library,
            self.kind,
            self.cache,
            self.index,
            self.prompt,
            self.prompt_hash,
            self.model,
            self.answer,
            self.ttl_ms,
            self.bytes,
            self.inserted_at,
            self.updated_at,
            self.tags or {},
            self.truncated,
            self.unreachable,
            self.vector,
            time.time(),
        )
        if self.value_format:
            out["value_format"] = self.value_format
        if self.companions:
            out["companion_keys"] = list(self.companions)
        if self.hits is not None:
            out["hits"] = self.hits
        if full:
            out["messages"] = [{"role": m.role, "content": m.content} for m in self.messages or []]
            out["llm_string"] = self.llm_string
            out["model_params"] = self.model_params
            out["generations"] = self.generations
            out["usage"] = self.usage
            out["metadata"] = self.metadata
            out["notes"] = self.notes
        return out


def listing_row(
    key: str,
    layout: str,
    library: str,
    kind: str,
    cache: str,
    index: str | None,
    prompt: str | None,
    prompt_hash: str | None,
    model: str | None,
    answer: str | None,
    ttl_ms: int | None,
    nbytes: int | None,
    inserted_at: float | None,
    updated_at: float | None,
    tags: dict,
    truncated: bool,
    unreachable: str | None,
    vector: VectorInfo | None,
    now: float,
) -> dict:
    """An entry as a listing prints it (`scan --json`'s line): the one definition of that shape, used
    by Entry.to_dict and by the layouts' list_row. The optional keys (value_format, companion_keys,
    hits) follow it; `now` is time.time(), for expires_at."""
    out: dict[str, object] = {
        "key": key,
        "layout": layout,
        "library": library,
        "kind": kind,
        "cache": cache,
        "index": index,
        "prompt": prompt,
        "prompt_hash": prompt_hash,
        "model": model,
        "answer": answer,
        "ttl_seconds": None if ttl_ms is None else _seconds(ttl_ms),
        "expires_at": None if ttl_ms is None else now + ttl_ms / 1000,
        "bytes": nbytes,
        "inserted_at": inserted_at,
        "updated_at": updated_at,
        "tags": tags,
        "truncated": truncated,
        "unreachable": unreachable,
    }
    if vector:
        out["vector"] = {
            "field": vector.field,
            "dims": vector.dims,
            "dtype": vector.dtype,
            "bytes": vector.nbytes,
            "matches_index": vector.matches_index,
        }
    return out


_EXACT_MS = 2**43  # below this, a whole number of ms / 1000 is already the double round(..., 3) gives


def _seconds(ms: int) -> float:
    """round(ms / 1000, 3), which formats and parses the float (about a microsecond a key). For a
    whole number of milliseconds under 2**43 (278 years) the quotient is within a microsecond of
    its three-decimal value (every other one is half a millisecond away), so rounding gives the same
    double back."""
    if type(ms) is int and 0 <= ms < _EXACT_MS:
        return ms / 1000
    return round(ms / 1000, 3)


# Why an entry can never be hit again, and how cacheops establishes it (shown with the counts).
UNREACHABLE_REASONS: dict[str, str] = {
    "message_ids": "the stored prompt's messages carry ids: langchain-core < 1.2.7 keyed on them, current "
    "versions strip ids before keying, so no current app computes this key (read from the "
    "serialised prompt; for exact caches only when the prompt text is known)",
    "orphan_vector": "GPTCache vector hash whose question document no longer exists (expired or deleted): "
    "GPTCache answers through the question document, so the vector only costs memory "
    "(checked against the question ids listed once per scan from the questions index)",
    "vector_mismatch": "the vector's byte length is not the index's dims x dtype width (FT.INFO): "
    "RediSearch could not index it, so no vector query returns it",
    "no_index": "no search index indexes this key's vector field under its prefix (FT._LIST/FT.INFO): "
    "vector lookups cannot reach it until an index over the prefix is created",
}


@dataclass
class Infrastructure:
    """A key a cache library keeps beside its entries (counter, schema hash, hit report, tag set,
    an entry's vector stored apart). Recognised, so it is not 'unknown', but never an entry:
    it is not listed, counted or deleted as one."""

    key: str
    layout: str
    library: str
    cache: str
    role: str  # e.g. "id counter", "hit report", "vector of gptcache:questions:3"
    type: str
    bytes: int | None
    ttl_ms: int | None
    kind: str = ""  # the kind of its layout's caches (exact, semantic, ...): its cache's kind in summaries

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "layout": self.layout,
            "infrastructure": self.role,
            "cache": self.cache,
            "library": self.library,
            "type": self.type,
            "bytes": self.bytes,
            "ttl_seconds": None if self.ttl_ms is None else self.ttl_ms / 1000,
        }


@dataclass
class Context:
    """What a layout may need beyond the record itself: the server's search indexes."""

    indexes: list[IndexInfo] = field(default_factory=list)
    # Hash -> text learned from other caches, so exact entries (which store only hashes) can show
    # their prompt and model: md5(prompt string) -> prompt string, md5(llm_string) -> llm_string.
    known_prompts: dict[str, str] = field(default_factory=dict)
    known_llm_strings: dict[str, str] = field(default_factory=dict)
    # Whether layouts may sample caches in prepare() to learn those hashes (off where nothing is
    # shown that needs them, e.g. doctor).
    learn: bool = True
    # Per-layout state a layout's prepare() read from the server once (never per key).
    extras: dict[str, Any] = field(default_factory=dict)
    _index_of: dict = field(default_factory=dict, repr=False, compare=False)  # index_for_prefix answers

    def learn_prompt(self, prompt: bytes | str) -> None:
        """Remember md5(prompt) -> prompt (bounded: memory stays flat)."""
        text = prompt.decode("utf-8", "replace") if isinstance(prompt, bytes) else prompt
        if len(self.known_prompts) < KNOWN_HASHES_MAX:
            self.known_prompts.setdefault(md5_hex(text), text)

    def learn_llm_string(self, llm_string: bytes | str) -> None:
        """Remember md5(llm_string) -> llm_string (bounded)."""
        text = llm_string.decode("utf-8", "replace") if isinstance(llm_string, bytes) else llm_string
        if len(self.known_llm_strings) < KNOWN_HASHES_MAX:
            self.known_llm_strings.setdefault(md5_hex(text), text)

    def index_for_prefix(self, prefix: str, key_type: str = "HASH") -> IndexInfo | None:
        """The index whose prefix is exactly `prefix` (with or without a trailing colon).

        Exact, not startswith: index "llmcache" also covers "llmcache_v2:*" keys, but those entries
        belong to cache "llmcache_v2", not to it."""
        memo = (prefix, key_type, id(self.indexes), len(self.indexes))  # asked once per entry: remembered
        if memo in self._index_of:
            return self._index_of[memo]
        found = None
        for idx in self.indexes:
            if idx.key_type == key_type and any(p.rstrip(":") == prefix for p in idx.prefixes):
                found = idx
                break
        if len(self._index_of) < 10_000:
            self._index_of[memo] = found
        return found

    def searchable_by(self, key: str, vector_field: str) -> IndexInfo | None:
        """An index that really indexes this HASH key's vector: its prefix covers the key (plain
        string prefix, as RediSearch does) and it declares the field as a VECTOR."""
        for idx in self.indexes:
            if idx.key_type == "HASH" and idx.fields.get(vector_field) == "VECTOR" and idx.covers(key):
                return idx
        return None


@dataclass
class PromptQuery:
    """A user's prompt, as LangChain would serialise it (see langchain_format)."""

    text: str
    system: str | None = None


class Layout(ABC):
    """One cache library's layout in Redis."""

    id: ClassVar[str]
    library: ClassVar[str]
    kind: ClassVar[str]
    redis_type: ClassVar[str]  # the TYPE its entries have
    # Every TYPE cache_of may accept (entries and the library's other keys); default (redis_type,).
    # classify offers a record only to the layouts that list its type.
    redis_types: ClassVar[tuple[str, ...]] = ()
    key_re: ClassVar[re.Pattern]  # must define a group "prefix"
    # The playbook `type:` of caches `cacheops warm` writes through this library's own update/store
    # (ops/playbook.py takes the Literal from the layout's module), or None: warm cannot write them.
    warm_type: ClassVar[str | None] = None

    def prepare(self, client: redis.Redis, ctx: Context) -> None:  # noqa: B027  an optional hook, empty by default
        """Read once per command what decode needs from the server beyond the record (indexes are
        already in ctx). Must stay cheap or lazy: it runs before every scan and show."""

    def scan_match(self, cache: str, ctx: Context | None = None) -> str | None:
        """The SCAN MATCH glob for every key of this cache, if this layout names caches in a way
        other than "<prefix>:..." (unprefixed keys; "*" when its keys share no prefix); None
        leaves the default."""
        return None

    def cache_of(self, rec: RawRecord) -> str | None:
        """The cache (key prefix) this key would belong to, judged by key shape and type alone."""
        if rec.type != self.redis_type:
            return None
        m = self.key_re.match(rec.key_text)
        return m.group("prefix") if m else None

    def types(self) -> tuple[str, ...]:
        return self.redis_types or (self.redis_type,)

    @abstractmethod
    def decode(self, rec: RawRecord, cache: str, ctx: Context, full: bool = True) -> Entry | Infrastructure | None:
        """The decoded entry, Infrastructure for the library's own non-entry keys, or None when the
        content is not this library's (then: unknown).

        full=False is a listing (scan, caches, stats): everything Entry.to_dict() shows and the
        filters read (model, llm_string, unreachable) must be set exactly as with full=True, but
        what only `show` prints (messages, generations, usage, model_params, metadata, notes) may be
        left out. Whether an entry is recognised never depends on full."""

    def list_row(self, rec: RawRecord, cache: str, ctx: Context, now: float) -> dict | Infrastructure | None:
        """What a listing prints for this record: its Entry's to_dict() (or the Infrastructure, or
        None when the content is not this library's, as decode gives them); `now` is time.time().

        This default decodes. A layout whose entries fill big caches may build the row straight from
        the value instead (no Entry, no notes: a third of `scan --json`'s client work per key), from
        the same rule functions as its decode; it must give the same row for every value, which
        tests/test_listing_decode.py (every layout, real writers) and test_fuzz.py check."""
        item = self.decode(rec, cache, ctx, full=False)
        return item.to_dict() if isinstance(item, Entry) else item

    @abstractmethod
    def locate(
        self, client: redis.Redis, query: PromptQuery, ctx: Context, cache: str | None = None
    ) -> Iterable[bytes]:
        """Candidate keys for a prompt, computed the way the library keys it. Candidates are then
        read and classified like any other key, so a wrong guess is harmless."""

    @abstractmethod
    def matches(self, entry: Entry, query: PromptQuery, ctx: Context | None = None) -> bool:
        """Whether a decoded entry is the cached answer for exactly this prompt."""

    def companion_keys(self, entry: Entry) -> list[str]:
        """Keys that belong to the entry and go with it: what decode put in entry.companions."""
        return list(entry.companions)

    # -- helpers shared by layouts --
    @staticmethod
    def ttl_ms(rec: RawRecord) -> int | None:
        return None if rec.pttl < 0 else rec.pttl

    def new_entry(self, rec: RawRecord, cache: str, **kwargs) -> Entry:
        # Required fields positionally, the rest assigned: matching keyword arguments against
        # Entry's 29 parameters costs more than the assignments (this runs once per listed key).
        entry = Entry(rec.key_text, self.id, self.library, self.kind, cache)
        entry.ttl_ms = None if rec.pttl < 0 else rec.pttl
        entry.bytes = rec.memory
        entry.truncated = rec.truncated
        for name, value in kwargs.items():
            setattr(entry, name, value)
        return entry

    def new_row(
        self,
        rec: RawRecord,
        cache: str,
        now: float,
        index: str | None = None,
        prompt: str | None = None,
        prompt_hash: str | None = None,
        model: str | None = None,
        answer: str | None = None,
        inserted_at: float | None = None,
        updated_at: float | None = None,
        tags: dict | None = None,
        unreachable: str | None = None,
        vector: VectorInfo | None = None,
    ) -> dict:
        """A list_row's row: listing_row with what new_entry takes from the record (key, TTL, size,
        truncated) and this layout's names."""
        return listing_row(
            rec.key_text,
            self.id,
            self.library,
            self.kind,
            cache,
            index,
            prompt,
            prompt_hash,
            model,
            answer,
            self.ttl_ms(rec),
            rec.memory,
            inserted_at,
            updated_at,
            {} if tags is None else tags,
            rec.truncated,
            unreachable,
            vector,
            now,
        )

    def infrastructure(self, rec: RawRecord, cache: str, role: str) -> Infrastructure:
        return Infrastructure(
            rec.key_text, self.id, self.library, cache, role, rec.type, rec.memory, self.ttl_ms(rec), self.kind
        )


class SemanticLayout(Layout):
    """A semantic cache library: one HASH per entry, found by a RediSearch vector index over the
    cache's prefix. Everything the neighbour search, the wrong-answer audit, migrate-embeddings and
    warm need to know about the library is said here, so a new semantic library is one module.

    Subclasses set the class attributes and implement embedded_text; the defaults describe RedisVL's
    SemanticCache, which most semantic libraries wrap.
    """

    kind = "semantic"
    redis_type = "hash"
    vector_field: ClassVar[str] = "prompt_vector"
    # The library's own default distance threshold (cosine distance, as RedisVL's check() uses),
    # or None when the library has none (the app always sets it): then --threshold or the config
    # file must say it.
    default_threshold: ClassVar[float | None] = None
    # How a lookup is scoped, in words: what must match besides the vector (see lookup_scope).
    scope: ClassVar[str] = "filter fields"
    # What cacheops can do with this library's caches:
    neighbours: ClassVar[bool] = True  # stored vectors searchable by the index's KNN (evict --similar-to, tui)
    audit: ClassVar[bool] = True  # the wrong-answer audit (built on the neighbour search)
    # migrate-embeddings: the stored `prompt` field is exactly the embedded text, and the entry id
    # does not depend on the cache name, so a copy under "<target>:<id>" is what the library finds.
    migration: ClassVar[bool] = True
    # The library embeds the user's text inside a serialised wrapper (for chat prompts): the audit
    # compares with the bare text to show how much the wrapper compresses distances.
    wraps_prompt: ClassVar[bool] = False

    @abstractmethod
    def embedded_text(self, text: str, system: str | None = None, chat: bool = True) -> str:
        """The exact string the library embeds when the app asks `text` (with an optional system
        message; chat: a chat model rather than a plain LLM). UsageError when a system message
        cannot be part of what this library embeds."""

    def lookup_scope(self, entry: Entry) -> tuple:
        """What a lookup must share with `entry` to be served it (besides the vector): by default the
        filter field values (RedisVL's filter_expression)."""
        return tuple(sorted(entry.tags.items()))

    def threshold(self) -> tuple[float, str]:
        """(the library's default distance threshold, where it came from); ConfigError when it has none."""
        if self.default_threshold is None:
            raise ConfigError(
                f"{self.library} has no default distance threshold (the app sets it): pass --threshold "
                f"or set caches.<name>.distance_threshold in the config file"
            )
        return self.default_threshold, f"{self.id} default"

    def app_settings(self, name: str, embedding: str, filterable: bool) -> str:
        """How an app opens this library's cache under `name` with `embedding` (migrate-embeddings'
        advice after a migration). filterable: the cache has filter fields the app must declare again."""
        return (
            f'SemanticCache(name="{name}", vectorizer=<{embedding}>'
            + (", the same filterable_fields" if filterable else "")
            + ")"
        )
