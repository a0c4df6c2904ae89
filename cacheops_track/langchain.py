"""track() for LangChain caches: a BaseCache that records each lookup and update of the one it wraps.

Exact caches with a `_key(prompt, llm_string)` (langchain-redis RedisCache, langchain_community
RedisCache) are credited per entry by the key that method builds; langchain-redis
RedisSemanticCache per matched entry, with its distance, read from the RedisVL check() it makes
(hooked on its inner SemanticCache); any other BaseCache is counted per cache and model only.
"""

from __future__ import annotations

from time import perf_counter_ns

from langchain_core.caches import BaseCache

from . import redisvl as vl
from .prompts import estimate_tokens, model_of, prompt_fields, split_prompt, text_of, usage_of
from .recorder import HIT, MISS, WRITE, Event, Recorder, Source


class LangChainSource(Source):
    def __init__(self, cache, name: str | None, record_prompts: str):
        self.record_prompts = record_prompts
        self.semantic = vl.is_semantic_cache(getattr(cache, "cache", None))
        self.key_of = getattr(cache, "_key", None) if not self.semantic else None
        self.library = f"{type(cache).__module__.split('.')[0]} {type(cache).__name__}"
        if self.semantic:
            self.kind = "semantic"
            self.cache_name = name or vl.cache_name(cache.cache)
        else:
            self.kind = "exact" if self.key_of is not None else "other"
            self.cache_name = name or _exact_cache_name(cache)

    def group(self, raw: tuple) -> tuple[object, object]:
        kind, prompt, llm_string = raw[1], raw[4], raw[5]
        if kind == MISS:
            return (MISS, llm_string), None  # a miss records only its model
        if self.semantic:
            return None, None  # each hit has its own matched entry and distance
        if kind == WRITE:
            return None, (prompt, llm_string)
        # Hits of one entry: the same key and model; the same usage unless the entry was rewritten
        # (by this app: a write starts a new group; by another: its answer differs, mostly)
        value = raw[6]
        first = value[0] if value else None
        return (HIT, prompt, llm_string, len(value or ()), getattr(first, "text", None)), (prompt, llm_string)

    def resolve(self, raw: tuple) -> Event:
        _, kind, ts, latency_ns, prompt, llm_string, value, matched = raw
        model = model_of(llm_string)
        if kind == WRITE:
            text, system, digest = prompt_fields(prompt, self.record_prompts)
            usage = usage_of(value)
            key = matched if self.semantic else self._key(prompt, llm_string)
            return Event(
                WRITE,
                self.cache_name,
                ts,
                key=key,
                model=model,
                prompt=text,
                system=system,
                prompt_sha256=digest,
                input_tokens=usage[0] if usage else 0,
                output_tokens=usage[1] if usage else 0,
            )
        event = Event(kind, self.cache_name, ts, model=model, latency_us=latency_ns / 1000)
        if kind == HIT:
            if self.semantic:
                event.key, event.distance = vl.matched_entry(matched, llm_string)
            else:
                event.key = self._key(prompt, llm_string)
            usage = usage_of(value)
            if usage is None:
                event.input_tokens = estimate_tokens("\n".join(filter(None, split_prompt(prompt))))
                event.output_tokens = estimate_tokens(text_of(value))
                event.estimated = True
            else:
                event.input_tokens, event.output_tokens = usage
        return event

    def _key(self, prompt: str, llm_string: str) -> str | None:
        return self.key_of(prompt, llm_string) if self.key_of is not None else None


def _exact_cache_name(cache) -> str:
    prefix = getattr(cache, "prefix", None)
    if isinstance(prefix, str):
        return prefix  # langchain-redis RedisCache: the key prefix is the cache's name
    module = type(cache).__module__.split(".")[0]
    return f"{module}.{type(cache).__name__}"  # e.g. langchain_community.RedisCache


class TrackedCache(BaseCache):
    """A LangChain BaseCache that records what the cache it wraps does (cacheops_track.track)."""

    def __init__(self, cache: BaseCache, recorder: Recorder, source: LangChainSource):
        self.cache = cache
        self.recorder = recorder
        self.source = source
        self._semantic = source.semantic
        if self._semantic:
            vl.hook(cache.cache)  # type: ignore[attr-defined]  # RedisSemanticCache's RedisVL cache

    def lookup(self, prompt: str, llm_string: str):
        if self._semantic:
            vl.LAST_CHECK.set(None)
        start = perf_counter_ns()
        value = self.cache.lookup(prompt, llm_string)
        elapsed = perf_counter_ns() - start
        matched = vl.LAST_CHECK.get() if self._semantic else None
        self.recorder.push(self.source, HIT if value is not None else MISS, elapsed, prompt, llm_string, value, matched)
        return value

    async def alookup(self, prompt: str, llm_string: str):
        if self._semantic:
            vl.LAST_CHECK.set(None)
        start = perf_counter_ns()
        value = await self.cache.alookup(prompt, llm_string)
        elapsed = perf_counter_ns() - start
        matched = vl.LAST_CHECK.get() if self._semantic else None
        self.recorder.push(self.source, HIT if value is not None else MISS, elapsed, prompt, llm_string, value, matched)
        return value

    def update(self, prompt: str, llm_string: str, return_val) -> None:
        if self._semantic:
            vl.LAST_STORE.set(None)
        self.cache.update(prompt, llm_string, return_val)
        stored = vl.LAST_STORE.get() if self._semantic else None
        self.recorder.push(self.source, WRITE, 0, prompt, llm_string, return_val, stored)

    async def aupdate(self, prompt: str, llm_string: str, return_val) -> None:
        if self._semantic:
            vl.LAST_STORE.set(None)
        await self.cache.aupdate(prompt, llm_string, return_val)
        stored = vl.LAST_STORE.get() if self._semantic else None
        self.recorder.push(self.source, WRITE, 0, prompt, llm_string, return_val, stored)

    def clear(self, **kwargs) -> None:
        self.cache.clear(**kwargs)

    async def aclear(self, **kwargs) -> None:
        await self.cache.aclear(**kwargs)

    def __getattr__(self, name):
        # Anything else (name(), ttl, prefix, redis, ...) is the wrapped cache's.
        if name in ("cache", "recorder", "source", "_semantic"):
            raise AttributeError(name)
        return getattr(self.cache, name)
