"""Writes LiteLLM 1.106.2 caches the way an app does: litellm.cache = Cache(...) then completion()
/ acompletion() with mock_response (no API). Embeddings for the semantic cache come from a
CustomLLM provider "fakeemb" (the hashing embedding in _fakes.py).

usage: python write_litellm.py REDIS_URL '{"op": "exact"|"semantic", "calls": [{"messages": [...],
       "answer": ..., "async"?: bool, "namespace"?: ..., "ttl"?: N, "model"?: ...}], "cache": {...},
       "cluster"?: true}'   (cluster: exact entries through LiteLLM's Redis Cluster cache)"""

import asyncio
import json
import sys
import threading
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
    nothing of cacheops, so it runs in this venv beside LiteLLM alone). spec["late_cache_key"]
    forces the schedule a loaded machine makes: LiteLLM sets a hit's cache_key in the response
    only after its logging threads have run the callback."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    import cacheops_track

    if spec.get("late_cache_key"):
        late_cache_key()
    u = urlparse(url)
    # a generous stats timeout: this test counts events, the timeout bound has tests of its own
    callback = cacheops_track.litellm_callback(url, timeout=10)
    litellm.callbacks = [callback]
    litellm.cache = Cache(type="redis", host=u.hostname, port=str(u.port))
    recorder = callback.recorder
    for call in spec["calls"]:
        args = dict(model=call.get("model", "gpt-4o-mini"), messages=call["messages"], mock_response=call["answer"])
        if "namespace" in call:
            args["cache"] = {"namespace": call["namespace"]}
        if "metadata" in call:
            args["metadata"] = call["metadata"]
        litellm.completion(caching=True, **args)
    # success callbacks run on LiteLLM's logging threads: wait until each call reported (queued,
    # written or dropped)
    deadline = time.time() + 120
    while time.time() < deadline and len(recorder.queue) + recorder.flushed_events + recorder.dropped < len(
        spec["calls"]
    ):
        time.sleep(0.05)
    recorder.flush()
    result({"events": recorder.flushed_events, "dropped": recorder.dropped})


def late_cache_key():
    """Make LiteLLM set a hit's hidden cache_key only once that call's logging callback has run."""
    from litellm.caching import caching_handler

    import cacheops_track.litellm_logger as logger

    set_param, record = caching_handler._set_cached_hidden_param, logger.LiteLLMTracker._record
    reported, changed = set(), threading.Condition()

    def set_late(response, key, value):
        if key == "cache_key":
            call_id = (getattr(response, "_hidden_params", None) or {}).get("litellm_call_id")
            with changed:
                changed.wait_for(lambda: call_id in reported, timeout=10)
        set_param(response, key, value)

    def record_and_tell(self, kwargs, response_obj):
        record(self, kwargs, response_obj)
        with changed:
            reported.add(kwargs.get("litellm_call_id"))
            changed.notify_all()

    caching_handler._set_cached_hidden_param = set_late
    logger.LiteLLMTracker._record = record_and_tell


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
