"""A listing (scan, caches, stats) decodes each entry with full=False: it must show exactly what a
full decode shows, for every layout, and `show` must still get the whole entry. `scan --json` builds
its rows with the layouts' list_row, straight from the values: they must be the rows decode gives."""

import time

import writers
from langchain_core.messages import HumanMessage, SystemMessage

from cacheops.inspect.catalog import build_context, decode_record
from cacheops.layouts import Entry, Infrastructure, list_row
from cacheops.server.keyspace import ScanOptions, iter_batches

Q = "What is the capital of France?"


def _listed(item) -> dict:
    row = item.to_dict()
    row.pop("expires_at", None)  # computed from the clock at each call
    return row


def assert_rows_are_decoded_rows(rec, ctx, decoded) -> None:
    """list_row (what `scan --json` prints) gives the row of decode's item: the Entry's to_dict(),
    the same Infrastructure, or None for an unknown key."""
    row = list_row(rec, ctx, time.time())
    if isinstance(decoded, Entry):
        assert isinstance(row, dict), rec.key
        row.pop("expires_at", None)
        assert row == _listed(decoded), rec.key
    elif isinstance(decoded, Infrastructure):
        assert row == decoded, rec.key
    else:
        assert row is None, rec.key


def test_listing_decode_shows_what_full_decode_shows_for_every_layout(redis_url, client, venv_writers):
    legacy, lite = venv_writers["legacy_langchain"], venv_writers["litellm"]
    writers.langchain_exact(
        redis_url, [(Q, "lc exact"), ([SystemMessage("Be terse."), HumanMessage("Hi")], "Hello")], ttl=600
    )
    writers.langchain_exact_llm(redis_url, [("Raw LLM prompt", "Raw answer")])
    writers.langchain_semantic(
        redis_url, [([SystemMessage("sys"), HumanMessage(Q)], "lc semantic"), ("Ça va? 日本", "Oui")]
    )
    # a prompt serialised with message ids (langchain-core < 1.2.7): unreachable, in both modes
    legacy(
        redis_url,
        "langchain_redis_semantic",
        qa=[[{"text": "hi", "id": "msg-1"}, "hello"]],
        cache={"name": "idcache"},
        check=False,
    )
    legacy(redis_url, "langchain_redis_exact", qa=[[{"text": "hi", "id": "msg-1"}, "hello"]], check=False)
    writers.redisvl_semantic(
        redis_url,
        [{"prompt": "Tagged", "response": "rvl", "metadata": {"model": "gpt-4o"}, "filters": {"user_id": "alice"}}],
        name="rvlcache",
        filterable_fields=[{"name": "user_id", "type": "tag"}],
    )
    writers.redisvl_embeddings(redis_url, [("hello", "mini")])
    writers.community_exact(redis_url, [(Q, "community exact")])
    legacy(redis_url, "community_semantic", qa=[[Q, "community semantic"]], check=False)
    legacy(redis_url, "langchain_redis_exact", qa=[["old shape?", "lc old"]], cache={"prefix": "old"}, check=False)
    # LiteLLM's default TTL is 60 s: a slow machine could see the entry expire before the scan
    lite(
        redis_url,
        "exact",
        calls=[{"messages": [{"role": "user", "content": Q}], "answer": "litellm exact", "ttl": 3600}],
    )
    lite(redis_url, "semantic", calls=[{"messages": [{"role": "user", "content": Q}], "answer": "litellm semantic"}])
    venv_writers["gptcache"](redis_url, "qa", qa=[[Q, "gptcache"]], lookups=[Q])
    writers.pickle_llm_cache(redis_url, [(Q, "pickle llm")])
    writers.pickle_smart_cache(redis_url, [("k", {"prompt": Q, "response": "pickle smart"}, ["t"])])
    client.hset("llmcache:" + "0" * 64, mapping={"foo": "bar"})  # foreign: unknown in both modes

    def metadata_of(key) -> bytes:  # a RedisSemanticCache entry's metadata names its llm_string
        return client.type(key) == b"hash" and client.hget(key, "metadata") or b""

    # a value cut at the read limit (its answer a preview), and a response that is not a list of
    # serialised generations: the odd branches of decode, which the listing rows must follow too
    writers.langchain_exact(redis_url, [("A long answer?", "long " * 20_000)])
    semantic_key = next(k for k in client.scan_iter(match="llmcache:*", count=1000) if b"llm_string" in metadata_of(k))
    broken = {**client.hgetall(semantic_key), b"response": b'["{\\"lc\\": 1, cut'}
    client.hset("llmcache:" + "f" * 64, mapping=broken)

    ctx = build_context(client)
    layouts, unreachable, notes = set(), 0, set()
    for batch in iter_batches(client, ScanOptions()):
        for rec in batch:
            listed, full = decode_record(rec, ctx, full=False), decode_record(rec, ctx, full=True)
            assert type(listed) is type(full), rec.key
            assert _listed(listed) == _listed(full), rec.key
            assert_rows_are_decoded_rows(rec, ctx, listed)
            if isinstance(full, Entry):
                layouts.add(full.layout)
                notes.update(full.notes)
                assert listed.model == full.model and listed.llm_string == full.llm_string, rec.key
                unreachable += full.unreachable == "message_ids"
    assert unreachable == 2  # the semantic entry, and the exact one once its prompt is learned
    assert {"value too large to decode fully; answer is a preview", "response is not a list of serialised "
            "generations (truncated?)"} <= notes  # fmt: skip
    assert layouts == {
        "langchain_exact",
        "langchain_semantic",
        "redisvl_semantic",
        "redisvl_embeddings",
        "community_exact",
        "community_semantic",
        "litellm_exact",
        "litellm_semantic",
        "gptcache",
        "pickle_llm_cache",
        "pickle_smart_cache",
    }
