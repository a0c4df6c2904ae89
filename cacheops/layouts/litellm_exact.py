"""LiteLLM exact cache: litellm.Cache(type="redis"). One STRING per request.

Key   [<namespace>:][<per-call namespace>:]sha256(pre_hash), pre_hash = "model: ...messages: [...]..."
      in the caller's kwarg order (docs/layouts.md F1). The request is not stored: only the response.
Value {"timestamp", "response": ModelResponse JSON} as a Python repr (sync) or JSON (async).
TTL   60 s by default.
"""

from __future__ import annotations

import re

from ..server.keyspace import RawRecord
from .base import HEX64, Context, Entry, Layout, PromptQuery, matched
from .litellm_format import decode_into, looks_like_wrapper

CACHE_NAME = "litellm"  # keys without a namespace are bare sha256 hex


class LiteLLMExactLayout(Layout):
    id = "litellm_exact"
    library = "LiteLLM Cache (redis)"
    kind = "exact"
    redis_type = "string"
    key_re = re.compile(rf"^(?:(?P<prefix>.+):)?(?P<id>{HEX64})$", re.S)

    def cache_of(self, rec: RawRecord) -> str | None:
        key = rec.key
        if rec.type != "string" or len(key) < 64 or (len(key) > 64 and key[-65:-64] != b":"):
            return None  # cheap shape check first: this runs for every STRING key of a scan
        m = self.key_re.match(rec.key_text)
        if not m:
            return None
        return m.group("prefix") if m.group("prefix") is not None else CACHE_NAME

    def scan_match(self, cache: str, ctx=None) -> str | None:
        return "?" * 64 if cache == CACHE_NAME else None

    def decode(self, rec: RawRecord, cache: str, ctx: Context, full: bool = True) -> Entry | None:
        raw = rec.value if isinstance(rec.value, bytes) else b""
        encoding = looks_like_wrapper(raw)
        if encoding is None:
            return None
        entry = self.new_entry(rec, cache, prompt_hash=matched(self.key_re, rec.key_text).group("id"))
        if not decode_into(entry, raw, encoding):
            return None
        entry.notes.append(
            f"value written as {'JSON (async path)' if encoding == 'json' else 'a Python repr (sync path)'}"
            "; key = sha256 of the request kwargs in call order: the prompt is not stored"
        )
        return entry

    def locate(self, client, query: PromptQuery, ctx: Context, cache=None):
        return []  # the key hashes the model and every kwarg in call order: not computable from text

    def matches(self, entry: Entry, query: PromptQuery, ctx: Context | None = None) -> bool:
        return False
