"""Writes caches the way an app on the legacy LangChain stack does (langchain-core 0.3.86,
langchain-community 0.3.31, langchain-redis 0.2.3, redis-py 5.3.1): set_llm_cache + invoke.

usage: python write_legacy_langchain.py REDIS_URL '{"op": ..., "qa": [[prompt, answer], ...], ...}'
A prompt is a str, or {"text", "system"?, "id"?, "system_id"?} for messages (ids as a chat app
or LangGraph sets them; langchain-core < 1.2.7 keeps them in the cache key)."""

import json
import sys

import redis
from _fakes import ask, chat_model, langchain_embeddings, result
from langchain_core.globals import set_llm_cache


def main(url, spec):
    op = spec["op"]
    if op == "community_exact":
        from langchain_community.cache import RedisCache

        cache = RedisCache(redis_=redis.Redis.from_url(url), ttl=spec.get("ttl"))
    elif op == "community_semantic":
        from langchain_community.cache import RedisSemanticCache

        cache = RedisSemanticCache(
            redis_url=url, embedding=langchain_embeddings(spec.get("dims", 8)), score_threshold=0.01
        )
    elif op == "langchain_redis_exact":
        from langchain_redis import RedisCache

        cache = RedisCache(redis_url=url, **spec.get("cache", {}))
    elif op == "langchain_redis_semantic":
        from langchain_redis import RedisSemanticCache

        cache = RedisSemanticCache(
            embeddings=langchain_embeddings(spec.get("dims", 8)),
            redis_url=url,
            distance_threshold=0.01,
            **spec.get("cache", {}),
        )
    else:
        raise SystemExit(f"unknown op {op}")
    set_llm_cache(cache)
    model = chat_model(spec.get("model", "gpt-4o-mini"))
    for prompt, answer in spec["qa"]:
        ask(model, prompt, answer)
    # A second call must be a hit: proves the entry is what the library itself reads back.
    hits = [ask(model, prompt, "MISS").content for prompt, _ in spec["qa"]] if spec.get("check", True) else []
    result({"hits": hits})


if __name__ == "__main__":
    main(sys.argv[1], json.loads(sys.argv[2]))
