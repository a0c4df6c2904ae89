"""A LiteLLM logging callback that records cache hits per cache_key, and misses, per cache.

A cache is a namespace: LiteLLM's Redis key is `<namespace>:<hash>` (the namespace from the call's
`cache={"namespace": ...}`, its `metadata={"redis_namespace": ...}` or `Cache(namespace=...)`), or
a bare hash, which cacheops lists under the callback's `name` (default "litellm"). A hit and a miss
of the same call count under the same cache.

Where the key comes from: LiteLLM passes a success callback no key on a miss, and on a sync hit it
submits the callback to its logging threads *before* it sets `cache_key` in the response's hidden
params, so a callback that runs first (a loaded machine) sees none. So the callback also wraps
`Cache.get_cache_key` (once per process): LiteLLM computes every call's key there, before the
lookup, with the call's `litellm_call_id` among its arguments; the wrapper keeps the last
MAX_CALLS keys by call id and the callback takes its call's. A hit whose key is still unknown is
read from the response's hidden params at flush time, after LiteLLM has set it.

A hit saves the usage of the cached response (its prompt and completion tokens). Imported only by
litellm_callback(): LiteLLM is needed only by apps that use it.
"""

from __future__ import annotations

import litellm
from litellm.integrations.custom_logger import CustomLogger

from .recorder import HIT, MISS, Event, Recorder, Source

MAX_CALLS = 10_000  # call ids whose key is kept until their callback takes it
_keys_by_call: dict[str, str] = {}


def _wrap_get_cache_key() -> None:
    try:
        from litellm.caching.caching import Cache
    except Exception:  # another LiteLLM layout: hits keep the key LiteLLM reports, misses the name
        return
    original = Cache.get_cache_key
    if getattr(original, "_cacheops_track", False):
        return

    def get_cache_key(self, *args, **kwargs):
        key = original(self, *args, **kwargs)
        try:
            call_id = kwargs.get("litellm_call_id")
            if call_id and isinstance(key, str):
                if len(_keys_by_call) >= MAX_CALLS:
                    _keys_by_call.pop(next(iter(_keys_by_call)), None)  # the oldest: its callback never came
                _keys_by_call[call_id] = key
        except Exception:
            pass
        return key

    get_cache_key._cacheops_track = True  # type: ignore[attr-defined]
    get_cache_key.__wrapped__ = original  # type: ignore[attr-defined]
    Cache.get_cache_key = get_cache_key


def _namespace(key: str | None) -> str | None:
    return key.rpartition(":")[0] or None if key else None


def _call_namespace(kwargs: dict) -> str | None:
    """The namespace LiteLLM put in this call's key when the key itself was not seen: metadata's
    redis_namespace, else the global cache's (the per-call cache={"namespace"} never reaches a
    callback)."""
    params = kwargs.get("litellm_params")
    metadata = (params.get("metadata") if isinstance(params, dict) else None) or kwargs.get("metadata")
    if isinstance(metadata, dict) and metadata.get("redis_namespace"):
        return str(metadata["redis_namespace"])
    namespace = getattr(litellm.cache, "namespace", None)
    return namespace if isinstance(namespace, str) and namespace else None


def _reported_key(response_obj, payload: dict) -> str | None:
    hidden = getattr(response_obj, "_hidden_params", None)
    key = hidden.get("cache_key") if isinstance(hidden, dict) else None
    return key or payload.get("cache_key")


class LiteLLMSource(Source):
    kind = "exact"
    library = "litellm Cache"

    def __init__(self, recorder: Recorder, name: str):
        self.recorder = recorder
        self.cache_name = name  # bare keys (no namespace) form this cache, as cacheops lists them

    def group(self, raw: tuple) -> tuple[object, object]:
        _, kind, _ts, _latency_ns, key, model, namespace, (tokens, response) = raw
        if kind == HIT and key is None:
            return None, None  # its key is read at resolve time
        return (kind, key, model, namespace, tokens if kind == HIT else None), None

    def resolve(self, raw: tuple) -> Event:
        _, kind, ts, _latency_ns, key, model, namespace, (tokens, response) = raw
        if kind == HIT and key is None:
            key = _reported_key(response, {})
        cache = (_namespace(key) or self.cache_name) if key else (namespace or self.cache_name)
        self.recorder._sources.setdefault(cache, self)
        # a hit reports "openai/gpt-4o-mini" where the miss said "gpt-4o-mini": one name per model
        event = Event(
            kind, cache, ts, key=key if kind == HIT else None, model=model.rpartition("/")[2] if model else None
        )
        if kind == HIT:
            event.input_tokens, event.output_tokens = tokens
        return event


class LiteLLMTracker(CustomLogger):
    def __init__(self, recorder: Recorder, name: str = "litellm"):
        super().__init__()
        self.recorder = recorder
        self.source = LiteLLMSource(recorder, name)
        _wrap_get_cache_key()

    def _record(self, kwargs, response_obj) -> None:
        try:
            call_id = kwargs.get("litellm_call_id")
            key = _keys_by_call.pop(call_id, None) if call_id else None
            payload = kwargs.get("standard_logging_object") or {}
            if payload.get("call_type") not in (None, "", "completion", "acompletion"):
                return
            hit = bool(payload.get("cache_hit") or kwargs.get("cache_hit"))
            # read now: LiteLLM reuses these objects after the callback returns
            tokens = (int(payload.get("prompt_tokens") or 0), int(payload.get("completion_tokens") or 0))
            if hit:
                key = key or _reported_key(response_obj, payload)
                namespace = _namespace(key) if key else _call_namespace(kwargs)
            else:
                namespace, key = (_namespace(key) if key else _call_namespace(kwargs)), None
            self.recorder.push(
                self.source,
                HIT if hit else MISS,
                0,
                key,
                kwargs.get("model") or payload.get("model"),
                namespace,
                # the response is kept only while the key is unknown (read from it at flush time)
                (tokens, response_obj if hit and key is None else None),
            )
        except Exception:
            self.recorder.dropped += 1

    def log_success_event(self, kwargs, response_obj, start_time, end_time):
        self._record(kwargs, response_obj)

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        self._record(kwargs, response_obj)
