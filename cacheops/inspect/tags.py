"""Reading cacheops' own tag index (cacheops:tags:<entry key> hashes; see ownkeys.py)."""

from __future__ import annotations

import redis

from ..ownkeys import tag_key


def read_tags(client: redis.Redis, keys: list[bytes]) -> list[dict[str, str]]:
    """cacheops tags of each key (empty dicts for untagged keys), in one pipeline."""
    if not keys:
        return []
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(tag_key(key))
    out = []
    for reply in pipe.execute(raise_on_error=False):
        if isinstance(reply, dict):
            out.append({k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in reply.items()})
        else:
            out.append({})
    return out
