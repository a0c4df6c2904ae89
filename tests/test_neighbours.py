"""The shared neighbour search, against a real LangChain RedisSemanticCache filled through a fake chat
model with the real all-MiniLM-L6-v2 embeddings."""

from __future__ import annotations

import pytest
from writers import MINILM, langchain_semantic, minilm_embeddings

from cacheops.errors import CacheopsError, ConfigError, UsageError
from cacheops.inspect.catalog import build_context
from cacheops.layouts import langchain_format as lc
from cacheops.semantic.neighbours import iter_nearest, semantic_caches, similar_to_text
from cacheops.semantic.vectorizers import library_text, load_vectorizer, parse_spec, spec_for_cache

HOURS = "What are your business hours?"
QA = [
    (HOURS, "Nine to five, Monday to Friday."),
    ("what are your business hours", "Nine to five, Monday to Friday."),
    ("Can I get a refund?", "Yes, within 30 days."),
    ("What is the price of plan 3?", "Plan 3 costs $30."),
    ("What is the price of plan 4?", "Plan 4 costs $40."),
]


@pytest.fixture
def filled(client, redis_url):
    # A near-zero threshold while filling, so every prompt is stored as its own entry.
    cache = langchain_semantic(redis_url, QA, embeddings=minilm_embeddings(), distance_threshold=0.0001)
    return cache


def test_library_text_is_what_each_library_embeds():
    assert library_text("langchain_semantic", "hi") == lc.chat_prompt("hi")
    assert library_text("langchain_semantic", "hi", "be terse") == lc.chat_prompt("hi", "be terse")
    assert library_text("langchain_semantic", "hi", chat=False) == "hi"
    assert library_text("redisvl_semantic", "hi") == "hi"
    with pytest.raises(UsageError):
        library_text("redisvl_semantic", "hi", "be terse")


def test_specs_resolve_or_fail_with_one_line():
    assert parse_spec("hf:sentence-transformers/all-MiniLM-L6-v2").provider == "hf"
    assert parse_spec("huggingface:x/y").provider == "hf"
    for bad in ("nope", "foo:bar", "hf:"):
        with pytest.raises(UsageError, match="PROVIDER:MODEL"):
            parse_spec(bad)
    with pytest.raises(ConfigError, match="--embedding"):
        spec_for_cache("llmcache")
    with pytest.raises(CacheopsError, match="offline"):
        load_vectorizer("hf:no-such-org/no-such-model-xyz")


def test_similar_to_text_matches_redisvl_check(client, filled):
    ctx = build_context(client)
    (sc,) = semantic_caches(client, ctx)
    assert (sc.name, sc.layout, sc.chat) == ("llmcache", "langchain_semantic", True)
    found = similar_to_text(client, ctx, HOURS, 0.05, embedding=MINILM)
    prompts = [n.entry.prompt for n in found]
    assert prompts[:2] == [HOURS, "what are your business hours"]
    assert "Can I get a refund?" not in prompts  # 0.11 away: outside 0.05
    # The distances are the ones RedisVL's own check() returns for the same lookup.
    vector = filled.cache._vectorize_prompt(lc.chat_prompt(HOURS))
    checked = {
        r["key"]: float(r["vector_distance"])
        for r in filled.cache.check(vector=vector, num_results=10, distance_threshold=0.05)
    }
    assert {n.entry.key: pytest.approx(n.distance, abs=1e-6) for n in found} == checked


def test_iter_nearest_uses_stored_vectors(client, filled):
    ctx = build_context(client)
    lists = {nl.entry.prompt: nl for nl in iter_nearest(client, ctx, "llmcache", k=3, batch=2)}
    assert len(lists) == len(QA)
    for nl in lists.values():
        assert nl.entry.key not in [n.entry.key for n in nl.neighbours]
        assert [n.distance for n in nl.neighbours] == sorted(n.distance for n in nl.neighbours)
        assert len(nl.neighbours) == 3
    nearest = lists["What is the price of plan 3?"].neighbours[0]
    assert nearest.entry.prompt == "What is the price of plan 4?" and nearest.distance < 0.005
    # Same distance as a text lookup (query vector computed by cacheops) gives.
    via_text = {
        n.entry.prompt: n.distance
        for n in similar_to_text(client, ctx, "What is the price of plan 3?", 0.01, embedding=MINILM)
    }
    assert via_text["What is the price of plan 4?"] == pytest.approx(nearest.distance, abs=1e-5)
