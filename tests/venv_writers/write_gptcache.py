"""Writes a GPTCache 0.1.44 cache with Redis scalar + vector storage, the way an app does:
cache.init(...) then put()/get() through gptcache.adapter.api (redis-om 0.2.2, pydantic 1, redis-py 5.3.1).

usage: python write_gptcache.py REDIS_URL '{"op": "qa", "qa": [[question, answer], ...], "ttl"?: N,
       "global_key_prefix"?: ..., "collection_name"?: ..., "namespace"?: ..., "lookups"?: [question, ...]}'"""

import json
import sys
from urllib.parse import urlparse

import numpy as np
from _fakes import embed, result
from gptcache import Cache
from gptcache.adapter.api import get, put
from gptcache.manager import CacheBase, VectorBase, get_data_manager
from gptcache.processor.pre import get_prompt
from gptcache.similarity_evaluation.distance import SearchDistanceEvaluation

DIMS = 8


def main(url, spec):
    u = urlparse(url)
    scalar = CacheBase(
        "redis",
        redis_host=u.hostname,
        redis_port=u.port,
        ttl=spec.get("ttl"),
        global_key_prefix=spec.get("global_key_prefix", "gptcache"),
    )
    vector = VectorBase(
        "redis",
        host=u.hostname,
        port=str(u.port),
        dimension=DIMS,
        collection_name=spec.get("collection_name", "gptcache"),
        namespace=spec.get("namespace", ""),
    )
    cache = Cache()
    cache.init(
        pre_embedding_func=get_prompt,
        embedding_func=lambda text, **_: np.array(embed(text, DIMS), dtype="float32"),
        data_manager=get_data_manager(scalar, vector),
        similarity_evaluation=SearchDistanceEvaluation(),
    )
    for question, answer in spec.get("qa", []):
        put(question, answer, cache_obj=cache)
    hits = [get(q, cache_obj=cache) for q in spec.get("lookups", [])]  # hits write gptcache:report:* docs
    result({"hits": hits})


if __name__ == "__main__":
    main(sys.argv[1], json.loads(sys.argv[2]))
