"""track() for RedisVL SemanticCache used directly (check/acheck/store/astore), and the hook through
which a tracked LangChain RedisSemanticCache learns the entry its check() matched.

No RedisVL import: a SemanticCache is recognised by its class name and module.
"""

from __future__ import annotations

import contextvars
from time import perf_counter_ns

from .prompts import estimate_tokens, model_of
from .recorder import HIT, MISS, WRITE, Event, Recorder, Source, prompt_sha256

# What the last check()/store() of a hooked SemanticCache returned in this thread / task: the
# LangChain wrapper reads it right after the lookup it wrapped (a context variable, so concurrent
# async lookups each see their own).
LAST_CHECK: contextvars.ContextVar = contextvars.ContextVar("cacheops_track_last_check", default=None)
LAST_STORE: contextvars.ContextVar = contextvars.ContextVar("cacheops_track_last_store", default=None)


def is_semantic_cache(obj) -> bool:
    return obj is not None and any(
        c.__name__ == "SemanticCache" and c.__module__.startswith("redisvl.") for c in type(obj).__mro__
    )


def cache_name(cache) -> str:
    """The cache's name as cacheops lists it: the key prefix of its entries."""
    try:
        prefix = cache.index.prefix
        separator = cache.index.key_separator or ":"
    except Exception:
        return str(getattr(cache, "name", "semantic"))
    return prefix[: -len(separator)] if prefix.endswith(separator) else prefix


def matched_entry(hits, llm_string: str | None = None) -> tuple[str | None, float | None]:
    """(key, distance) of the hit a LangChain RedisSemanticCache returns: the first whose metadata
    carries the same llm_string (its own rule); the first hit when there is no llm_string."""
    for hit in hits or ():
        meta = hit.get("metadata")
        if llm_string is None or (isinstance(meta, dict) and meta.get("llm_string") == llm_string):
            distance = hit.get("vector_distance")
            try:
                distance = float(distance) if distance is not None else None
            except (TypeError, ValueError):
                distance = None
            return hit.get("key"), distance
    return None, None


def hook(cache) -> None:
    """Make `cache` (a RedisVL SemanticCache) report what its check()/store() return, once."""
    if getattr(cache, "_cacheops_track_hooked", False):
        return
    check, acheck, store, astore = cache.check, cache.acheck, cache.store, cache.astore

    def hooked_check(*args, **kwargs):
        hits = check(*args, **kwargs)
        LAST_CHECK.set(hits)
        return hits

    async def hooked_acheck(*args, **kwargs):
        hits = await acheck(*args, **kwargs)
        LAST_CHECK.set(hits)
        return hits

    def hooked_store(*args, **kwargs):
        key = store(*args, **kwargs)
        LAST_STORE.set(key)
        return key

    async def hooked_astore(*args, **kwargs):
        key = await astore(*args, **kwargs)
        LAST_STORE.set(key)
        return key

    cache.check, cache.acheck, cache.store, cache.astore = hooked_check, hooked_acheck, hooked_store, hooked_astore
    cache._cacheops_track_hooked = True


class RedisVLSource(Source):
    kind = "semantic"
    library = "redisvl SemanticCache"

    def __init__(self, cache, name: str | None, record_prompts: str):
        self.cache_name = name or cache_name(cache)
        self.record_prompts = record_prompts

    def group(self, raw: tuple) -> tuple[object, object]:
        # a miss records nothing but itself; a hit has its own matched entry and distance
        return ((MISS,) if raw[1] == MISS else None), None

    def resolve(self, raw: tuple) -> Event:
        _, kind, ts, latency_ns, prompt, metadata, value, key = raw
        if kind == WRITE:
            model = _model(metadata)
            text = prompt if self.record_prompts == "text" else None
            digest = prompt_sha256(prompt) if self.record_prompts != "off" and prompt else None
            return Event(WRITE, self.cache_name, ts, key=key, model=model, prompt=text, prompt_sha256=digest)
        event = Event(kind, self.cache_name, ts, latency_us=latency_ns / 1000)
        if kind == HIT:
            first = value[0]
            event.key, event.distance = matched_entry(value)
            event.model = _model(first.get("metadata"))
            event.input_tokens = estimate_tokens(prompt or first.get("prompt") or "")
            event.output_tokens = estimate_tokens(first.get("response") or "")
            event.estimated = True  # RedisVL stores no usage
        return event


def _model(metadata) -> str | None:
    if not isinstance(metadata, dict):
        return None
    model = metadata.get("model")
    return model if isinstance(model, str) else model_of(metadata.get("llm_string"))


class TrackedSemanticCache:
    """A RedisVL SemanticCache whose check/acheck/store/astore are recorded; everything else is
    the wrapped cache's."""

    def __init__(self, cache, recorder: Recorder, source: RedisVLSource):
        self.cache = cache
        self.recorder = recorder
        self.source = source

    def check(self, prompt=None, *args, **kwargs):
        start = perf_counter_ns()
        hits = self.cache.check(prompt, *args, **kwargs)
        self.recorder.push(self.source, HIT if hits else MISS, perf_counter_ns() - start, prompt, None, hits)
        return hits

    async def acheck(self, prompt=None, *args, **kwargs):
        start = perf_counter_ns()
        hits = await self.cache.acheck(prompt, *args, **kwargs)
        self.recorder.push(self.source, HIT if hits else MISS, perf_counter_ns() - start, prompt, None, hits)
        return hits

    def store(self, prompt, response, *args, **kwargs):
        key = self.cache.store(prompt, response, *args, **kwargs)
        self.recorder.push(self.source, WRITE, 0, prompt, _metadata(args, kwargs), response, key)
        return key

    async def astore(self, prompt, response, *args, **kwargs):
        key = await self.cache.astore(prompt, response, *args, **kwargs)
        self.recorder.push(self.source, WRITE, 0, prompt, _metadata(args, kwargs), response, key)
        return key

    def __getattr__(self, name):
        if name in ("cache", "recorder", "source"):
            raise AttributeError(name)
        return getattr(self.cache, name)


def _metadata(args: tuple, kwargs: dict):
    # store(prompt, response, vector=None, metadata=None, ...)
    return kwargs.get("metadata", args[1] if len(args) > 1 else None)
