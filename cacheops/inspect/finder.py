"""Find entries: by key, or by the user's prompt text computed the way each library keys it."""

from __future__ import annotations

import redis

from ..errors import NotFound
from ..layouts import LAYOUTS, Context, Entry, Infrastructure, PromptQuery
from ..server.keyspace import SHOW_LIMIT, read_records
from .catalog import UnknownKey, decode_record


def read_entry(client: redis.Redis, ctx: Context, key: str | bytes) -> Entry | Infrastructure | UnknownKey:
    """One key, read in full (up to SHOW_LIMIT bytes) and decoded. NotFound if it does not exist."""
    raw = key.encode("utf-8") if isinstance(key, str) else key
    rec = read_records(client, [raw], limit=SHOW_LIMIT)[0]
    if rec.type == "none":
        raise NotFound(f"no key {rec.key_text!r}; list keys with `cacheops scan`")
    return decode_record(rec, ctx)


def find_by_prompt(client: redis.Redis, ctx: Context, query: PromptQuery, cache: str | None = None) -> list[Entry]:
    """Every cached entry for this exact prompt, in every cache and layout, for every model."""
    candidates: list[bytes] = []
    seen: set[bytes] = set()
    for layout in LAYOUTS:
        for key in layout.locate(client, query, ctx, cache):
            key = key.encode() if isinstance(key, str) else key
            if key not in seen:
                seen.add(key)
                candidates.append(key)
    found: list[Entry] = []
    for start in range(0, len(candidates), 500):
        for rec in read_records(client, candidates[start : start + 500], limit=SHOW_LIMIT):
            item = decode_record(rec, ctx)
            if isinstance(item, Entry) and (cache is None or item.cache == cache):
                layout = next(lay for lay in LAYOUTS if lay.id == item.layout)
                if layout.matches(item, query, ctx):
                    if item.prompt is None:
                        # exact caches store no text: the user's own words are the prompt
                        item.prompt = query.text
                        item.notes = [n for n in item.notes if "md5(prompt)" not in n]
                    found.append(item)
    return found
