"""cacheops_track: record what an app's LLM cache serves, for cacheops to show.

    from cacheops_track import track
    set_llm_cache(track(RedisCache(redis_url=url)))          # any LangChain BaseCache
    cache = track(SemanticCache(name="llmcache", ...))        # RedisVL SemanticCache used directly

A package of its own beside `cacheops` (whose import name django-cacheops also uses): it imports
nothing of cacheops. What it writes, and the key names both sides read, are in keys.py.
"""

from __future__ import annotations

import threading

from . import keys
from .recorder import Event, Recorder

__all__ = ["track", "recorder_for", "litellm_callback", "Event", "Recorder", "keys", "RECORD_PROMPTS"]

RECORD_PROMPTS = ("text", "hash", "off")
DEFAULT_TIMEOUT = 0.5  # seconds a flush may wait on the stats Redis (connect, then each reply)
_recorders: dict[tuple, Recorder] = {}
_recorders_lock = threading.Lock()


def track(
    cache,
    *,
    url: str | None = None,
    client=None,
    name: str | None = None,
    record_prompts: str = "text",
    recorder: Recorder | None = None,
    **recorder_options,
):
    """Wrap `cache` so every lookup and write is recorded; returns a cache of the same kind.

    cache          a LangChain BaseCache (RedisCache, RedisSemanticCache, community caches, any
                   other) or a RedisVL SemanticCache
    url / client   where the stats go (default: the Redis the cache itself uses)
    name           the cache's name in cacheops (default: its key prefix, as cacheops lists it)
    record_prompts "text" (prompt and system text), "hash" (sha256 only) or "off"
    recorder_options  flush_interval, max_pending, minute_retention, hour_retention,
                   entry_idle_seconds, timeout (see Recorder)
    """
    if record_prompts not in RECORD_PROMPTS:
        raise ValueError(f"record_prompts must be one of {', '.join(RECORD_PROMPTS)}, not {record_prompts!r}")
    from . import redisvl

    if recorder is None:
        recorder = recorder_for(url=url, client=client, like=cache, **recorder_options)
    if redisvl.is_semantic_cache(cache):
        vl_source = redisvl.RedisVLSource(cache, name, record_prompts)
        recorder.register(vl_source)
        return redisvl.TrackedSemanticCache(cache, recorder, vl_source)
    from .langchain import LangChainSource, TrackedCache

    source = LangChainSource(cache, name, record_prompts)
    recorder.register(source)
    return TrackedCache(cache, recorder, source)


def recorder_for(*, url: str | None = None, client=None, like=None, timeout: float = DEFAULT_TIMEOUT, **options):
    """The recorder writing to `url` / `client` (default: the Redis that `like`, a cache, uses):
    one per stats Redis per process, shared by every cache tracked into it. A Redis Cluster (a
    cluster URL, or a cache whose own client is a RedisCluster) gets a cluster client
    (stats_redis.py)."""
    import redis
    from redis.cluster import RedisCluster

    from . import stats_redis

    ident: tuple
    if client is not None:
        ident = ("client", id(client))
    elif url is not None:
        ident = ("url", url)
    else:
        found = _client_of(like)
        if found is None:
            raise ValueError("track(): this cache's Redis client was not found; pass url= or client= for the stats")
        if isinstance(found, RedisCluster):
            conn = found.nodes_manager.connection_kwargs
            ident = ("same-cluster", tuple(sorted(found.nodes_manager.startup_nodes)), conn.get("username"))
        else:
            conn = found.connection_pool.connection_kwargs
            ident = ("same", conn.get("host"), conn.get("port"), conn.get("path"), conn.get("db"), conn.get("username"))
    with _recorders_lock:
        existing = _recorders.get(ident)
        if existing is not None:
            return existing
        if client is None:
            if url is not None:
                client = stats_redis.client_from_url(url, timeout)
            elif isinstance(found, RedisCluster):
                client = stats_redis.cluster_beside(found, timeout)
            else:
                kwargs = {**found.connection_pool.connection_kwargs, **stats_redis.settings(timeout)}
                kwargs.update(retry_on_timeout=False, retry=stats_redis.no_retry())
                pool = redis.ConnectionPool(connection_class=found.connection_pool.connection_class, **kwargs)
                client = redis.Redis(connection_pool=pool)
        recorder = _recorders[ident] = Recorder(client, **options)
        return recorder


def _client_of(cache):
    """The client a cache uses, redis.Redis or RedisCluster (langchain-redis: .redis; RedisVL: its
    index's client)."""
    import redis
    from redis.cluster import RedisCluster

    clients = (redis.Redis, RedisCluster)
    for candidate in (
        getattr(cache, "redis", None),
        getattr(getattr(cache, "cache", None), "_redis_client", None),
        getattr(cache, "_redis_client", None),
    ):
        if isinstance(candidate, clients):
            return candidate
    for holder in (cache, getattr(cache, "cache", None)):
        try:
            candidate = holder.index.client
        except Exception:
            continue
        if isinstance(candidate, clients):
            return candidate
    return None


def litellm_callback(url: str | None = None, *, client=None, name: str = "litellm", **options):
    """A LiteLLM logging callback recording hits per cache_key (and misses per cache and model):
    `litellm.callbacks = [litellm_callback("redis://...")]`. `name`: the cache of keys without a
    namespace (cacheops lists bare LiteLLM keys as cache "litellm")."""
    from .litellm_logger import LiteLLMTracker

    if url is None and client is None:
        raise ValueError("litellm_callback(): pass url= or client= for the stats Redis")
    return LiteLLMTracker(recorder_for(url=url, client=client, **options), name)
