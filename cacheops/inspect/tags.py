"""Reading cacheops' own tag index (cacheops:tags:<entry key> hashes; see ownkeys.py).

On a Redis Cluster an entry's tags live in its own hash slot (ownkeys.cluster_tag_key); tags an
earlier cacheops wrote there under the one-server name are read too, the newer name winning a field
both hold (tagging moves them over, evict removes both)."""

from __future__ import annotations

import redis

from ..ownkeys import cluster_tag_key, legacy_tag_key_on_cluster, tag_key
from ..server.topology import is_cluster


def tag_names(client, key: bytes) -> list[bytes]:
    """The names an entry's tags may live under, the one written now first."""
    if not is_cluster(client):
        return [tag_key(key)]
    legacy = legacy_tag_key_on_cluster(key)
    return [cluster_tag_key(key)] + ([legacy] if legacy is not None else [])


def read_tags(client: redis.Redis, keys: list[bytes]) -> list[dict[str, str]]:
    """cacheops tags of each key (empty dicts for untagged keys), in one pipeline."""
    if not keys:
        return []
    names = [tag_names(client, key) for key in keys]
    pipe = client.pipeline(transaction=False)
    for each in names:
        for name in each:
            pipe.hgetall(name)
    replies = iter(pipe.execute(raise_on_error=False))
    out = []
    for each in names:
        tags: dict[str, str] = {}
        for reply in reversed([next(replies) for _ in each]):  # the older name first: the newer wins
            if isinstance(reply, dict):
                tags.update({k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in reply.items()})
        out.append(tags)
    return out
