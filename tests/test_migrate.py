"""migrate-embeddings: caches written by the real libraries with one embedding (the demo's hashing
embedding, 64 dims) are re-embedded with the real all-MiniLM-L6-v2 (384 dims), and the real libraries,
configured with the target name and the new model, serve the original answers from the new cache."""

from __future__ import annotations

import json

import pytest
import redis
import writers
from writers import MINILM, llm_cache, minilm_embeddings

from cacheops.ops import migrate
from cacheops.server.connection import connect, resolve_spec
from cacheops.server.indexes import parse_ft_info

QA = [
    ("What is the capital of France?", "Paris is the capital of France."),
    ("How do I reset my password?", "Click 'Forgot password' on the sign-in page."),
    ("Can I get a refund?", "Yes, within 30 days of purchase."),
    ("Which payment methods do you accept?", "Visa, Mastercard and PayPal."),
    ("Do you have a mobile app?", "Yes, for iOS and Android."),
    ("Is there an API?", "Yes, a REST API."),
    ("How secure is my data?", "Encrypted at rest and in transit."),
]
DEFAULT_TARGET = "all-minilm-l6-v2-llmcache"
MODEL_CALLED = "THE MODEL WAS CALLED"


def snapshot(client: redis.Redis, prefix: str) -> dict:
    """Every key under prefix: (all fields, PTTL)."""
    out = {}
    for key in client.scan_iter(match=prefix + ":*", count=1000):
        value = client.hgetall(key) if client.type(key) == b"hash" else client.get(key)
        out[key] = (value, client.pttl(key))
    return out


def same_except_ttl_drift(before: dict, after: dict, tolerance_ms: int = 120_000) -> bool:
    if before.keys() != after.keys():
        return False
    for key, (fields, pttl) in before.items():
        fields2, pttl2 = after[key]
        if fields != fields2:
            return False
        if (pttl < 0) != (pttl2 < 0) or (pttl >= 0 and not 0 <= pttl - pttl2 < tolerance_ms):
            return False
    return True


def app_answers(url: str, name: str, prompts: list[str], threshold: float = 0.05) -> list[str]:
    """The app after the switch: RedisSemanticCache(name=target, embeddings=MiniLM); the chat model
    would answer MODEL_CALLED, so any other answer came from the cache."""
    from langchain_redis import RedisSemanticCache

    from cacheops.demo import demo_chat_model

    out = []
    with llm_cache(
        RedisSemanticCache(name=name, embeddings=minilm_embeddings(), redis_url=url, distance_threshold=threshold)
    ):
        chat = demo_chat_model("gpt-4o-mini")
        for prompt in prompts:
            out.append(chat.answer(prompt, MODEL_CALLED).content)
    return out


def test_langchain_semantic_cache_moves_to_minilm(run, client, redis_url):
    writers.langchain_semantic(redis_url, QA, ttl=3600)
    client.set("llmcache:not-a-cache-entry", "x")  # foreign keys under the prefix: never copied
    client.hset("llmcache:" + "0" * 64, "session", "not a cache entry, though shaped like one")
    before = snapshot(client, "llmcache")
    source_info = parse_ft_info(client.execute_command("FT.INFO", "llmcache"))

    doc = run.json("migrate-embeddings", "--cache", "llmcache", "--to", MINILM, "--batch", "3", "--yes")
    preview, result = doc["preview"], doc["result"]
    assert preview["target"] == DEFAULT_TARGET and preview["layout"] == "langchain_semantic"
    assert (preview["source_dims"], preview["target_dims"]) == (64, 384)
    assert result["migrated"] == len(QA) and result["skipped"] == 0 and result["created_index"]
    assert result["not_entries"] == 1

    # The new index: the source's schema, over the target's own prefix, 384 dims.
    target = parse_ft_info(client.execute_command("FT.INFO", DEFAULT_TARGET))
    assert target.prefixes == [DEFAULT_TARGET] and target.num_docs == len(QA)
    assert target.fields == source_info.fields
    assert (target.vector.dims, target.vector.dtype, target.vector.metric, target.vector.algorithm) == (
        384,
        "FLOAT32",
        source_info.vector.metric,
        source_info.vector.algorithm,
    )

    # Every entry: same id, every field but the vector byte for byte, TTL kept.
    for key, (fields, pttl) in before.items():
        if key in (b"llmcache:not-a-cache-entry", b"llmcache:" + b"0" * 64):
            assert not client.exists(DEFAULT_TARGET.encode() + key[len(b"llmcache") :])
            continue
        new_key = DEFAULT_TARGET.encode() + key[len(b"llmcache") :]
        copied = client.hgetall(new_key)
        assert {k: v for k, v in copied.items() if k != b"prompt_vector"} == {
            k: v for k, v in fields.items() if k != b"prompt_vector"
        }
        assert len(copied[b"prompt_vector"]) == 384 * 4
        assert 0 <= pttl - client.pttl(new_key) < 120_000

    # The source is untouched (fields byte for byte, TTL only ticking down, index as it was).
    assert same_except_ttl_drift(before, snapshot(client, "llmcache"))
    assert parse_ft_info(client.execute_command("FT.INFO", "llmcache")).vector.dims == 64

    # The switched app hits the migrated entries (and a paraphrase) without calling the model.
    paraphrase = "What's the capital city of France?"
    answers = app_answers(redis_url, DEFAULT_TARGET, [q for q, _ in QA] + [paraphrase])
    assert answers == [a for _, a in QA] + ["Paris is the capital of France."]
    assert app_answers(redis_url, DEFAULT_TARGET, ["Tell me a joke about penguins"]) == [MODEL_CALLED]

    # A re-run is a no-op.
    migrated = snapshot(client, DEFAULT_TARGET)
    again = run.json("migrate-embeddings", "--cache", "llmcache", "--to", MINILM, "--yes")
    assert again["preview"]["target_exists"] and again["result"]["migrated"] == 0
    assert (again["result"]["skipped"], again["result"]["not_entries"]) == (len(QA), 1)
    assert {k: v[0] for k, v in snapshot(client, DEFAULT_TARGET).items() if k in migrated} == {
        k: v[0] for k, v in migrated.items()
    }

    events = run.json_lines("history", "--action", "migrate-embeddings")
    assert [e["selectors"]["target"] for e in events] == [DEFAULT_TARGET] * 2
    assert [e["counts"]["migrated"] for e in events] == [0, len(QA)]  # newest first
    table = run("history", "--table")
    assert table.exit_code == 0 and "migrate-embeddings" in table.output and "migrated 7" in table.output


def test_dry_run_writes_nothing(run, client, redis_url):
    writers.langchain_semantic(redis_url, QA[:3])
    keys_before = sorted(client.scan_iter(count=1000))
    indexes_before = sorted(client.execute_command("FT._LIST"))
    result = run("migrate-embeddings", "--cache", "llmcache", "--to", MINILM, "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["dry_run"] and "result" not in doc
    assert doc["preview"]["entries"] == 3 and doc["preview"]["index_fields"]["prompt_vector"].endswith("COSINE")
    assert sorted(client.scan_iter(count=1000)) == keys_before
    assert sorted(client.execute_command("FT._LIST")) == indexes_before
    # Off a terminal, without --yes, nothing happens either.
    refused = run("migrate-embeddings", "--cache", "llmcache", "--to", MINILM)
    assert refused.exit_code == 2 and "--yes" in refused.output
    assert sorted(client.scan_iter(count=1000)) == keys_before


def test_redisvl_cache_with_filters_and_ttls(run, client, redis_url):
    from redisvl.extensions.cache.llm import SemanticCache
    from redisvl.query.filter import Tag

    from cacheops.semantic.vectorizers import load_vectorizer

    fields = [{"name": "tier", "type": "tag"}, {"name": "model", "type": "tag"}]
    entries = [
        {
            "prompt": "What is the capital of France?",
            "response": "Paris (pro)",
            "filters": {"tier": "pro", "model": "a"},
            "metadata": {"source": "faq"},
            "ttl": 600,
        },
        {
            "prompt": "What is the capital of France?",
            "response": "Paris (free)",
            "filters": {"tier": "free", "model": "a"},
        },
        {
            "prompt": "How do I reset my password?",
            "response": "Use the link (pro)",
            "filters": {"tier": "pro", "model": "b"},
            "ttl": 900,
        },
    ]
    writers.redisvl_semantic(redis_url, entries, name="support", filterable_fields=fields)
    before = snapshot(client, "support")

    doc = run.json("migrate-embeddings", "--cache", "support", "--to", MINILM, "--target", "minilm_support", "--yes")
    assert doc["preview"]["layout"] == "redisvl_semantic"
    assert doc["preview"]["filterable_fields"] == ["tier", "model"]
    assert doc["result"]["migrated"] == 3
    for key, (_fields, pttl) in before.items():
        new_pttl = client.pttl(b"minilm_support" + key[len(b"support") :])
        assert (new_pttl == -1) if pttl == -1 else 0 <= pttl - new_pttl < 120_000
    assert same_except_ttl_drift(before, snapshot(client, "support"))

    # The app after the switch: the same filterable fields, the new model; the schema matches.
    cache = SemanticCache(
        name="minilm_support",
        redis_url=redis_url,
        vectorizer=load_vectorizer(MINILM),
        filterable_fields=fields,
        distance_threshold=0.1,
    )
    pro = cache.check("What is the capital of France?", filter_expression=Tag("tier") == "pro")
    free = cache.check("What is the capital of France?", filter_expression=Tag("tier") == "free")
    assert [h["response"] for h in pro] == ["Paris (pro)"] and [h["response"] for h in free] == ["Paris (free)"]
    assert cache.check("How do I reset my password?", filter_expression=Tag("tier") == "free") == []
    hit = cache.check("How can I reset my password?", filter_expression=Tag("model") == "b")
    assert [h["response"] for h in hit] == ["Use the link (pro)"]

    # The app (still on the old cache) rewrites an entry: a re-run copies just that one.
    writers.redisvl_semantic(
        redis_url,
        [
            {
                "prompt": "How do I reset my password?",
                "response": "New link (pro)",
                "filters": {"tier": "pro", "model": "b"},
            }
        ],
        name="support",
        filterable_fields=fields,
    )
    again = run.json("migrate-embeddings", "--cache", "support", "--to", MINILM, "--target", "minilm_support", "--yes")
    assert (again["result"]["migrated"], again["result"]["refreshed"], again["result"]["skipped"]) == (1, 1, 2)
    hit = cache.check("How do I reset my password?", filter_expression=Tag("tier") == "pro")
    assert [h["response"] for h in hit] == ["New link (pro)"]


def test_interrupted_migration_resumes(client, redis_url):
    writers.langchain_semantic(redis_url, QA)
    conn = connect(resolve_spec(redis_url))

    class Stop(Exception):
        pass

    def stop_after_first_batch(n):
        raise Stop

    plan = migrate.plan(conn, "llmcache", MINILM)
    with pytest.raises(Stop):
        migrate.execute(conn, plan, batch=2, on_progress=stop_after_first_batch)
    done = sum(1 for _ in client.scan_iter(match=DEFAULT_TARGET + ":*"))
    assert 0 < done < len(QA)

    plan = migrate.plan(conn, "llmcache", MINILM)
    assert plan.target_exists
    result = migrate.execute(conn, plan, batch=2)
    assert (result.migrated, result.skipped) == (len(QA) - done, done)
    assert app_answers(redis_url, DEFAULT_TARGET, [q for q, _ in QA]) == [a for _, a in QA]


def test_errors_are_one_line_with_their_exit_code(run, client, redis_url):
    writers.langchain_semantic(redis_url, QA[:2])
    writers.langchain_exact(redis_url, QA[:1], prefix="exactcache")
    writers.redisvl_semantic(redis_url, [{"prompt": "hello", "response": "hi"}], name="other64")

    def fails(code: int, *args: str, says: str):
        result = run("migrate-embeddings", *args, "--yes")
        assert result.exit_code == code, result.output
        assert says in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output

    fails(7, "--cache", "nosuch", "--to", MINILM, says="no cache named 'nosuch'")
    fails(2, "--cache", "exactcache", "--to", MINILM, says="not a semantic cache")
    fails(2, "--cache", "llmcache", "--to", "nonsense", says="PROVIDER:MODEL")
    fails(12, "--cache", "llmcache", "--to", "hf:no-such-org/no-such-model", says="cannot load the model")
    fails(13, "--cache", "llmcache", "--to", MINILM, "--target", "llmcache_v2", says="prefix bleed")
    fails(13, "--cache", "llmcache", "--to", MINILM, "--target", "other", says="overlaps index 'other64'")
    fails(13, "--cache", "llmcache", "--to", MINILM, "--target", "other64", says="already exists with another schema")
    assert not any(k.startswith(b"all-minilm") for k in client.scan_iter(count=1000))
