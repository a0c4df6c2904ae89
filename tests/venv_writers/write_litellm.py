"""Writes LiteLLM 1.106.2 caches the way an app does: litellm.cache = Cache(...) then completion()
/ acompletion() with mock_response (no API). Embeddings for the semantic cache come from a
CustomLLM provider "fakeemb" (the hashing embedding in _fakes.py).

usage: python write_litellm.py REDIS_URL '{"op": "exact"|"semantic", "calls": [{"messages": [...],
       "answer": ..., "async"?: bool, "namespace"?: ..., "ttl"?: N, "model"?: ...}], "cache": {...},
       "cluster"?: true}'   (cluster: exact entries through LiteLLM's Redis Cluster cache)"""

import asyncio
import json
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import litellm
from _fakes import embed, result
from litellm import CustomLLM
from litellm.caching.caching import Cache
from litellm.types.utils import EmbeddingResponse


class FakeEmbeddings(CustomLLM):
    def embedding(self, model, input, model_response: EmbeddingResponse, *args, **kwargs):
        model_response.data = [
            {"object": "embedding", "index": i, "embedding": embed(t, 8)} for i, t in enumerate(input)
        ]
        model_response.model = model
        return model_response

    async def aembedding(self, model, input, model_response, *args, **kwargs):
        return self.embedding(model, input, model_response)


def track(url, spec):
    """An app with cacheops_track's LiteLLM callback (the package from this checkout: it imports
    nothing of cacheops, so it runs in this venv beside LiteLLM alone)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    import cacheops_track

    u = urlparse(url)
    callback = cacheops_track.litellm_callback(url)
    litellm.callbacks = [callback]
    litellm.cache = Cache(type="redis", host=u.hostname, port=str(u.port))
    for call in spec["calls"]:
        args = dict(model=call.get("model", "gpt-4o-mini"), messages=call["messages"], mock_response=call["answer"])
        if "namespace" in call:
            args["cache"] = {"namespace": call["namespace"]}
        litellm.completion(caching=True, **args)
    # success callbacks run on LiteLLM's logging thread pool: wait until each call reported
    deadline = time.time() + 30
    while time.time() < deadline and len(callback.recorder.queue) + callback.recorder.flushed_events < len(
        spec["calls"]
    ):
        time.sleep(0.05)
    callback.recorder.flush()
    result({"events": callback.recorder.flushed_events, "dropped": callback.recorder.dropped})


def main(url, spec):
    if spec["op"] == "track":
        return track(url, spec)
    u = urlparse(url)
    litellm.custom_provider_map = [{"provider": "fakeemb", "custom_handler": FakeEmbeddings()}]
    kwargs = dict(spec.get("cache", {}))
    if spec["op"] == "semantic":
        # no password on the test server: the semantic cache then needs the URL form
        kwargs.update(
            type="redis-semantic",
            redis_url=url,
            similarity_threshold=0.99,
            redis_semantic_cache_embedding_model="fakeemb/emb-8",
        )
    elif spec.get("cluster"):
        # LiteLLM's Redis Cluster cache (RedisClusterCache, a redis-py RedisCluster): the URL's node as the seed
        kwargs.update(type="redis", redis_startup_nodes=[{"host": u.hostname, "port": u.port}])
    else:
        kwargs.update(type="redis", host=u.hostname, port=str(u.port))
    litellm.cache = Cache(**kwargs)
    answers = []
    for call in spec["calls"]:
        args = dict(
            model=call.get("model", "gpt-4o-mini"),
            messages=call["messages"],
            mock_response=call["answer"],
            caching=True,
        )
        if "namespace" in call or "ttl" in call:
            args["cache"] = {k: call[k] for k in ("namespace", "ttl") if k in call}
        if call.get("async"):
            resp = asyncio.run(_acompletion(args))
        else:
            resp = litellm.completion(**args)
        answers.append(resp.choices[0].message.content)
    result({"answers": answers})


async def _acompletion(args):
    resp = await litellm.acompletion(**args)
    await asyncio.sleep(1.0)  # async cache writes are fire-and-forget (docs/layouts.md F2)
    return resp


if __name__ == "__main__":
    main(sys.argv[1], json.loads(sys.argv[2]))
