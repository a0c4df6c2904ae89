"""A LiteLLM logging callback that records cache hits per cache_key, and misses.

LiteLLM passes every success callback a `standard_logging_object` with `cache_hit` and, on a hit,
`cache_key` (the Redis key, namespace included; also in the response's hidden params, where it
is always set). Misses carry neither key nor namespace: they count per model under the
callback's `name` (default "litellm", the cache cacheops lists bare LiteLLM keys under), so a
namespaced cache shows its hits under its namespace and its misses under that name. A hit saves the usage of the cached response (its prompt and completion tokens).
Imported only by litellm_callback(): LiteLLM is needed only by apps that use it.
"""

from __future__ import annotations

from litellm.integrations.custom_logger import CustomLogger

from .recorder import HIT, MISS, Event, Recorder, Source


class LiteLLMSource(Source):
    kind = "exact"
    library = "litellm Cache"

    def __init__(self, recorder: Recorder, name: str):
        self.recorder = recorder
        self.cache_name = name  # bare keys (no namespace) form this cache, as cacheops lists them

    def resolve(self, raw: tuple) -> Event:
        _, kind, ts, _latency_ns, key, model, namespace, tokens = raw
        if key:
            cache = key.rpartition(":")[0] or self.cache_name
        else:
            cache = namespace or self.cache_name
        self.recorder._sources.setdefault(cache, self)
        # a hit reports "openai/gpt-4o-mini" where the miss said "gpt-4o-mini": one name per model
        event = Event(kind, cache, ts, key=key, model=model.rpartition("/")[2] if model else None)
        if kind == HIT:
            event.input_tokens, event.output_tokens = tokens
        return event


def _cache_key(payload: dict, response_obj) -> str | None:
    # The response's hidden params carry the key on every hit; the logging payload not always.
    hidden = getattr(response_obj, "_hidden_params", None)
    key = hidden.get("cache_key") if isinstance(hidden, dict) else None
    return key or payload.get("cache_key")


class LiteLLMTracker(CustomLogger):
    def __init__(self, recorder: Recorder, name: str = "litellm"):
        super().__init__()
        self.recorder = recorder
        self.source = LiteLLMSource(recorder, name)

    def _record(self, kwargs, response_obj) -> None:
        try:
            payload = kwargs.get("standard_logging_object") or {}
            if payload.get("call_type") not in (None, "", "completion", "acompletion"):
                return
            hit = bool(payload.get("cache_hit") or kwargs.get("cache_hit"))
            call_cache = kwargs.get("cache") if isinstance(kwargs.get("cache"), dict) else {}
            # read now: LiteLLM reuses these objects after the callback returns
            tokens = (int(payload.get("prompt_tokens") or 0), int(payload.get("completion_tokens") or 0))
            self.recorder.push(
                self.source,
                HIT if hit else MISS,
                0,
                _cache_key(payload, response_obj) if hit else None,
                kwargs.get("model") or payload.get("model"),
                call_cache.get("namespace"),
                tokens,
            )
        except Exception:
            self.recorder.dropped += 1

    def log_success_event(self, kwargs, response_obj, start_time, end_time):
        self._record(kwargs, response_obj)

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        self._record(kwargs, response_obj)
