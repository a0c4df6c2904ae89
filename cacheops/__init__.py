"""cacheops: operations and admin for LLM response caches in Redis (LangChain, RedisVL).

The library does the work; the CLI (`cacheops`) and the TUI are thin layers over it:

    from cacheops import connect_url, build_context, iter_entries
    client = connect_url("redis://localhost:6379")
    for entry in iter_entries(client, build_context(client)):
        print(entry.cache, entry.model, entry.prompt, entry.answer)
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import CacheopsError  # noqa: E402
from .inspect.catalog import EntryFilter, UnknownKey, build_catalog, build_context, iter_entries  # noqa: E402
from .inspect.finder import find_by_prompt, read_entry  # noqa: E402
from .inspect.hits import attach_hits, hit_report  # noqa: E402
from .layouts import LAYOUTS, Entry, Layout, PromptQuery  # noqa: E402
from .ops.backup import restore  # noqa: E402
from .ops.evict import execute as execute_eviction  # noqa: E402
from .ops.evict import plan as plan_eviction
from .ops.playbook import load_playbook  # noqa: E402
from .ops.selection import Selection  # noqa: E402
from .ops.warm import warm as warm_caches  # noqa: E402
from .server.connection import connect, redact_url, resolve_spec  # noqa: E402


def track(cache, **options):
    """cacheops_track.track (the app-side hit tracker), for apps that import cacheops anyway. Apps
    that also use django-cacheops (which owns the name `cacheops`) import cacheops_track directly."""
    from cacheops_track import track as _track

    return _track(cache, **options)


def connect_url(url: str):
    """A connected, no-touch client for a Redis URL."""
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
