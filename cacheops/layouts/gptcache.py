"""GPTCache 0.1.x with Redis scalar storage (redis-om) and Redis vector storage.

One entry = the question document plus its vector, shown and deleted together (docs/layouts.md G):
  <p>:questions:<n>   JSON (redis-om): pk, question, answers[], create_on, last_access, deleted, embedding
  <ns>doc:<n>         HASH {vector}: float32 bytes, indexed by the vector index (name = collection)
Infrastructure (recognised, never an entry): <p>:counter (id counter), <p>:report:<ULID> (hit
reports), <p>:sessions:<pk>, and redis-om's "<p>:<model>:index:hash" schema hashes.
TTL applies to the question only: when it expires the vector stays, an orphan no lookup can use;
those are entries with unreachable = "orphan_vector", so they can be evicted as debris.
Ids are sequential integers; the vector index prefix "doc:" also covers langchain_community's
"doc:cache:*" keys, so keys are attributed by exact shape, never by index membership.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

import orjson
import redis

from ..server.indexes import IndexInfo, parse_search
from ..server.keyspace import RawRecord, glob_escape
from .base import Context, Entry, Infrastructure, Layout, PromptQuery, VectorInfo, matched

_QUESTION_RE = re.compile(r"^(?P<prefix>.+):questions:(?P<id>\d+)$", re.S)
_REPORT_RE = re.compile(r"^(?P<prefix>.+):report:(?P<id>[0-9A-Z]{26})$", re.S)
_SESSION_RE = re.compile(r"^(?P<prefix>.+):sessions:(?P<id>.+)$", re.S)
_VECTOR_RE = re.compile(r"^(?P<ns>.*)doc:(?P<id>\d+)$", re.S)
_SCHEMA_RE = re.compile(r"^(?P<prefix>.*):(?P<model>[^:]+):index:hash$", re.S)
_ANSWERS_MODEL = "gptcache.manager.scalar_data.redis_storage.Answers"  # shared by every GPTCache
DEFAULT_NAME = "gptcache"


@dataclass
class GPTCacheState:
    """What the indexes say about the GPTCaches on this server, plus question ids read lazily once."""

    client: redis.Redis | None
    prefixes: set[str] = field(default_factory=set)  # global_key_prefix values with redis-om indexes
    vector_indexes: dict[str, IndexInfo] = field(default_factory=dict)  # namespace -> index
    ns_of: dict[str, str] = field(default_factory=dict)  # prefix -> vector namespace
    prefix_of: dict[str, str] = field(default_factory=dict)  # vector namespace -> prefix
    _live: dict[str, tuple[bytearray, int] | None] = field(default_factory=dict)

    def live_ids(self, prefix: str) -> tuple[bytearray, int] | None:
        """(bitmap of question ids that exist, highest id issued when read), read once per command
        with SCAN MATCH "<p>:questions:*" (keys only). None if it could not be read."""
        if prefix not in self._live:
            self._live[prefix] = self._read_live(prefix)
        return self._live[prefix]

    def _read_live(self, prefix: str):
        if self.client is None:
            return None
        try:
            issued = int(self.client.get(f"{prefix}:counter") or 0)
            bits = bytearray(issued // 8 + 1)
            for key in self.client.scan_iter(match=f"{glob_escape(prefix)}:questions:*", count=5000, _type="ReJSON-RL"):
                tail = key.rsplit(b":", 1)[-1]
                if tail.isdigit():
                    n = int(tail)
                    if n // 8 >= len(bits):
                        bits.extend(bytearray(n // 8 + 1 - len(bits)))
                    bits[n // 8] |= 1 << (n % 8)
            return bits, issued
        except redis.RedisError:
            return None


def _state(ctx: Context) -> GPTCacheState:
    state = ctx.extras.get("gptcache")
    if state is None:  # a Context built without prepare(): no server knowledge, no orphan checks
        state = ctx.extras["gptcache"] = GPTCacheState(None)
    return state


class GPTCacheLayout(Layout):
    id = "gptcache"
    library = "GPTCache (redis)"
    kind = "semantic"
    redis_type = "ReJSON-RL"
    redis_types = ("ReJSON-RL", "hash", "string")  # questions; vectors; counter and schema hashes
    key_re = _QUESTION_RE

    def prepare(self, client: redis.Redis, ctx: Context) -> None:
        state = GPTCacheState(client)
        for idx in ctx.indexes:
            for model in ("questions", "report", "sessions"):
                suffix = f":{model}:index"
                if idx.key_type == "JSON" and idx.name.endswith(suffix):
                    state.prefixes.add(idx.name[: -len(suffix)])
            if idx.key_type == "HASH" and idx.fields.get("vector") == "VECTOR" and set(idx.fields) <= {"vector", "tag"}:
                for p in idx.prefixes:
                    if p.endswith("doc:"):
                        state.vector_indexes[p[:-4]] = idx
        # Which vector namespace serves which question prefix: the only one, or the one whose index
        # name (collection_name) equals the prefix (both default to "gptcache").
        for prefix in state.prefixes:
            if len(state.vector_indexes) == 1:
                state.ns_of[prefix] = next(iter(state.vector_indexes))
            else:
                for ns, idx in state.vector_indexes.items():
                    if idx.name == prefix:
                        state.ns_of[prefix] = ns
        for prefix, ns in state.ns_of.items():
            if list(state.ns_of.values()).count(ns) == 1:
                state.prefix_of[ns] = prefix
        ctx.extras["gptcache"] = state

    def scan_match(self, cache: str, ctx: Context | None = None) -> str | None:
        # its entries (questions) and orphan vectors ("<ns>doc:<n>") share no prefix
        state = ctx.extras.get("gptcache") if ctx else None
        return "*" if state is not None and cache in state.ns_of else None

    def cache_of(self, rec: RawRecord) -> str | None:
        kind, key = rec.type, rec.key
        if kind == "ReJSON-RL":
            if b":questions:" in key or b":report:" in key or b":sessions:" in key:
                text = rec.key_text
                m = _QUESTION_RE.match(text) or _REPORT_RE.match(text) or _SESSION_RE.match(text)
                return m.group("prefix") if m else None
        elif kind == "hash":
            if b"doc:" in key and key[-1:].isdigit():
                m = _VECTOR_RE.match(rec.key_text)
                return m.group("ns") if m else None
        elif kind == "string":
            if key.endswith(b":counter"):
                return rec.key_text[: -len(":counter")]
            if key.endswith(b":index:hash"):
                m = _SCHEMA_RE.match(rec.key_text)
                return m.group("prefix") if m else None
        return None

    def decode(self, rec: RawRecord, cache: str, ctx: Context, full: bool = True) -> Entry | Infrastructure | None:
        state = _state(ctx)
        text = rec.key_text
        if rec.type == "hash":
            return self._vector(rec, cache, state)
        if rec.type == "string":
            if text.endswith(":counter"):
                value = rec.value if isinstance(rec.value, bytes) else b""
                if cache in state.prefixes and value.isdigit():
                    return self.infrastructure(rec, cache, "id counter")
                return None
            model = matched(_SCHEMA_RE, text).group("model")
            if model == _ANSWERS_MODEL and cache == "":
                return self.infrastructure(rec, DEFAULT_NAME, "redis-om schema hash (shared by every GPTCache)")
            if cache in state.prefixes and model in ("questions", "report", "sessions"):
                return self.infrastructure(rec, cache, f"redis-om schema hash of {model}")
            return None
        if _QUESTION_RE.match(text):
            return self._question(rec, cache, state)
        if cache not in state.prefixes:
            return None  # reports/sessions only under a prefix whose redis-om indexes exist
        return self.infrastructure(rec, cache, "hit report" if _REPORT_RE.match(text) else "session")

    def _question(self, rec: RawRecord, cache: str, state: GPTCacheState) -> Entry | None:
        raw = rec.value if isinstance(rec.value, bytes) else b""
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            doc = None
        if doc is None and rec.truncated and raw.startswith(b'{"pk":') and b'"question":' in raw[:4096]:
            doc = {"question": _preview(raw, b'"question":"'), "answers": [{"answer": _preview(raw, b'"answer":"')}]}
        if not (isinstance(doc, dict) and "question" in doc and isinstance(doc.get("answers"), list)):
            return None
        m = matched(_QUESTION_RE, rec.key_text)
        entry = self.new_entry(rec, cache, prompt_hash=None)
        entry.prompt = doc.get("question") if isinstance(doc.get("question"), str) else None
        answers: list[str] = [
            a["answer"] for a in doc["answers"] if isinstance(a, dict) and isinstance(a.get("answer"), str)
        ]
        entry.answer = "\n".join(answers) if answers else None
        entry.inserted_at = _when(doc.get("create_on"))
        entry.updated_at = _when(doc.get("last_access"))
        ns = state.ns_of.get(cache)
        index = state.vector_indexes.get(ns) if ns is not None else None
        entry.index = index.name if index else None
        embedding = doc.get("embedding")
        if isinstance(embedding, str):
            nbytes = len(embedding)  # float32 bytes stored as latin-1 text: one char per byte
            vec = index.vector if index else None
            entry.vector = VectorInfo(
                "embedding",
                nbytes // 4 if nbytes % 4 == 0 else None,
                "FLOAT32",
                nbytes,
                matches_index=(nbytes == vec.nbytes) if vec else None,
            )
        if ns is not None:
            entry.companions = [f"{ns}doc:{m.group('id')}"]
        else:
            entry.notes.append("vector key unknown: no single GPTCache vector index pairs with this prefix")
        if doc.get("deleted"):
            entry.notes.append("soft-deleted by GPTCache (deleted=1): it no longer answers lookups")
        entry.notes.append("GPTCache ids are sequential: the same question put twice is two entries")
        return entry

    def _vector(self, rec: RawRecord, ns: str, state: GPTCacheState) -> Entry | Infrastructure | None:
        fields = rec.value if isinstance(rec.value, dict) else {}
        if set(fields) != {b"vector"} or ns not in state.vector_indexes:
            return None
        index = state.vector_indexes[ns]
        n = int(matched(_VECTOR_RE, rec.key_text).group("id"))
        prefix = state.prefix_of.get(ns)
        if prefix is None:
            return self.infrastructure(rec, index.name, "vector (question prefix not paired: orphans not checked)")
        live = state.live_ids(prefix)
        question = f"{prefix}:questions:{n}"
        if live is None:
            return self.infrastructure(rec, prefix, f"vector of {question} (not checked)")
        bits, issued = live
        exists = n // 8 < len(bits) and bits[n // 8] >> (n % 8) & 1
        if exists or n > issued:  # an id above the counter read was issued after it: still being written
            return self.infrastructure(rec, prefix, f"vector of {question}")
        raw = fields[b"vector"]
        nbytes = raw if isinstance(raw, int) else len(raw)
        vec = index.vector
        entry = self.new_entry(rec, prefix, index=index.name, prompt_hash=None, unreachable="orphan_vector")
        entry.vector = VectorInfo(
            "vector",
            nbytes // 4 if nbytes % 4 == 0 else None,
            vec.dtype if vec else "FLOAT32",
            nbytes,
            matches_index=(nbytes == vec.nbytes) if vec else None,
        )
        entry.notes.append(
            f"orphan vector: question document {question} no longer exists (expired or deleted); "
            "GPTCache vectors never expire, so this only costs memory"
        )
        return entry

    def locate(self, client, query: PromptQuery, ctx: Context, cache=None):
        if query.system is not None:
            return []
        tag = re.sub(r"([^A-Za-z0-9_])", r"\\\1", query.text)
        out: list[bytes] = []
        for prefix in sorted(_state(ctx).prefixes):
            if cache is not None and cache != prefix:
                continue
            try:
                reply = client.execute_command(
                    "FT.SEARCH",
                    f"{prefix}:questions:index",
                    f"@question:{{{tag}}}",
                    "NOCONTENT",
                    "LIMIT",
                    0,
                    100,
                    "DIALECT",
                    2,
                )
            except redis.ResponseError:
                continue
            out.extend(key for key, _ in parse_search(reply, nocontent=True))
        return out

    def matches(self, entry: Entry, query: PromptQuery, ctx=None) -> bool:
        return query.system is None and entry.prompt == query.text and entry.unreachable is None


def _when(value) -> float | None:
    try:
        return datetime.fromisoformat(value).timestamp() if isinstance(value, str) else None
    except ValueError:
        return None


def _preview(raw: bytes, marker: bytes) -> str | None:
    start = raw.find(marker)
    if start < 0:
        return None
    start += len(marker)
    end = raw.find(b'"', start)
    return raw[start : end if end > 0 else start + 400].decode("utf-8", "replace")
