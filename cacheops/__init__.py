"""cacheops: operations and admin for LLM response caches in Redis (LangChain, RedisVL).

The library does the work; the CLI (`cacheops`) and the TUI are thin layers over it:

    from cacheops import connect_url, build_context, iter_entries
    client = connect_url("redis://localhost:6379")
    for entry in iter_entries(client, build_context(client)):
        print(entry.cache, entry.model, entry.prompt, entry.answer)
"""

from __future__ import annotations

__version__ = "0.1.0"

import importlib

from .errors import CacheopsError

# The public API, imported on first use (PEP 562): `import cacheops` and the CLI's start-up stay
# cheap; each name is looked up in its module the first time it is asked for.
_LAZY = {
    "EntryFilter": ".inspect.catalog",
    "UnknownKey": ".inspect.catalog",
    "build_catalog": ".inspect.catalog",
    "build_context": ".inspect.catalog",
    "iter_entries": ".inspect.catalog",
    "find_by_prompt": ".inspect.finder",
    "attach_hits": ".inspect.hits",
    "hit_report": ".inspect.hits",
    "read_entry": ".inspect.finder",
    "find_suspects": ".inspect.suspects",
    "rule_set": ".inspect.suspects",
    "LAYOUTS": ".layouts",
    "Entry": ".layouts",
    "Layout": ".layouts",
    "PromptQuery": ".layouts",
    "restore": ".ops.backup",
    "execute_eviction": ".ops.evict:execute",
    "plan_eviction": ".ops.evict:plan",
    "load_playbook": ".ops.playbook",
    "Selection": ".ops.selection",
    "warm_caches": ".ops.warm:warm",
    "connect": ".server.connection",
    "redact_url": ".server.connection",
    "resolve_spec": ".server.connection",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, _, attr = _LAZY[name].partition(":")
    value = getattr(importlib.import_module(module, __name__), attr or name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


def track(cache, **options):
    """cacheops_track.track (the app-side hit tracker), for apps that import cacheops anyway. Apps
    that also use django-cacheops (which owns the name `cacheops`) import cacheops_track directly."""
    from cacheops_track import track as _track

    return _track(cache, **options)


def connect_url(url: str):
    """A connected, no-touch client for a Redis URL."""
    from .server.connection import connect, resolve_spec

    return connect(resolve_spec(url))


__all__ = [
    "EntryFilter",
    "UnknownKey",
    "build_catalog",
    "build_context",
    "iter_entries",
    "connect",
    "connect_url",
    "redact_url",
    "resolve_spec",
    "CacheopsError",
    "find_by_prompt",
    "read_entry",
    "find_suspects",
    "rule_set",
    "LAYOUTS",
    "Entry",
    "Layout",
    "PromptQuery",
    "Selection",
    "plan_eviction",
    "execute_eviction",
    "restore",
    "load_playbook",
    "warm_caches",
    "track",
    "hit_report",
    "attach_hits",
]
