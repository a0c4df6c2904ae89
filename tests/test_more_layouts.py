"""LiteLLM, legacy LangChain, GPTCache, hand-rolled pickle caches, old library versions and
unreachable entries, each written by its real library (in its own venv where its dependencies
conflict with ours, see venvs.py)."""

import time

import orjson
import writers
from langchain_core.messages import HumanMessage, SystemMessage

from cacheops.layouts import langchain_format as lc

Q = "What is the capital of France?"


def by_key(rows):
    return {r["key"]: r for r in rows}


def cache_of(catalog, name):
    return next(c for c in catalog["caches"] if c["name"] == name)


def test_langchain_community_exact_and_semantic(run, redis_url, venv_writers):
    legacy = venv_writers["legacy_langchain"]
    assert legacy(
        redis_url,
        "community_semantic",
        qa=[[Q, "Paris (sem)"], [{"text": "hi", "id": "msg-1"}, "hello"]],
        model="gpt-4o",
    )["hits"] == ["Paris (sem)", "hello"]
    assert legacy(redis_url, "community_exact", qa=[[Q, "Paris (0.3)"]], model="gpt-4o", ttl=90)["hits"] == [
        "Paris (0.3)"
    ]
    writers.community_exact(redis_url, [("Current stack?", "community 0.4")], model="gpt-4o")
    rows = run.json_lines("scan")
    exact = [r for r in rows if r["layout"] == "community_exact"]
    assert {r["answer"] for r in exact} == {"Paris (0.3)", "community 0.4"}
    assert all(r["cache"] == "langchain_community.RedisCache" and len(r["key"]) == 32 for r in exact)
    assert next(r for r in exact if r["answer"] == "Paris (0.3)")["ttl_seconds"] <= 90
    sem = {r["prompt"]: r for r in rows if r["layout"] == "community_semantic"}
    assert set(sem) == {Q, "hi"} and all(r["model"] == "gpt-4o" for r in sem.values())
    assert sem[Q]["index"].startswith("cache:") and sem[Q]["cache"] == "doc:" + sem[Q]["index"]
    assert sem[Q]["unreachable"] is None and sem["hi"]["unreachable"] == "message_ids"
    assert sem[Q]["vector"] == {
        "field": "content_vector",
        "dims": 8,
        "dtype": "FLOAT32",
        "bytes": 32,
        "matches_index": True,
    }
    # The exact entry is found from text alone: its llm_string is learned from the semantic index.
    found = run.json("show", "--prompt", Q)
    assert sorted(e["layout"] for e in found) == ["community_exact", "community_semantic"]
    caches = run.json("caches")
    unreachable = cache_of(caches, sem[Q]["cache"])["unreachable"]
    assert unreachable["message_ids"]["entries"] == 1 and unreachable["message_ids"]["bytes"] > 0
    assert "1.2.7" in unreachable["message_ids"]["how"]
    assert caches["unreachable"]["message_ids"]["entries"] == 1
    assert len(run.json_lines("scan", "--cache", "langchain_community.RedisCache")) == 2


def test_litellm_exact_sync_async_and_namespaces(run, redis_url, venv_writers):
    user = [{"role": "user", "content": Q}]
    venv_writers["litellm"](
        redis_url,
        "exact",
        calls=[
            {"messages": user, "answer": "Paris (sync)"},
            {"messages": [{"role": "user", "content": "async q"}], "answer": "Paris (async)", "async": True},
            {"messages": [{"role": "user", "content": "tenant q"}], "answer": "Paris (tenant)", "namespace": "tenantA"},
        ],
        cache={"namespace": "litellm.caching", "ttl": 600},
    )
    venv_writers["litellm"](redis_url, "exact", calls=[{"messages": user, "answer": "bare", "model": "gpt-4o"}])
    rows = {r["answer"]: r for r in run.json_lines("scan")}
    assert set(rows) == {"Paris (sync)", "Paris (async)", "Paris (tenant)", "bare"}
    assert all(r["layout"] == "litellm_exact" and r["model"] in ("gpt-4o-mini", "gpt-4o") for r in rows.values())
    assert rows["Paris (sync)"]["value_format"] == "python-repr" and rows["Paris (async)"]["value_format"] == "json"
    sync_key = "model: gpt-4o-minimessages: [{'role': 'user', 'content': 'What is the capital of France?'}]"
    assert rows["Paris (sync)"]["key"] == "litellm.caching:" + lc.sha256_hex(sync_key)
    assert rows["Paris (tenant)"]["cache"] == "litellm.caching:tenantA"
    assert rows["bare"]["cache"] == "litellm" and 50 < rows["bare"]["ttl_seconds"] <= 60  # LiteLLM's default
    assert rows["Paris (sync)"]["inserted_at"] > 0
    assert [r["answer"] for r in run.json_lines("scan", "--cache", "litellm")] == ["bare"]


def test_litellm_semantic_and_isolated_fallback(run, redis_url, venv_writers):
    # An index already named litellm_semantic_cache_index with another schema (no litellm_cache_key
    # tag): LiteLLM falls back to "<name>_isolated", which that index's prefix also covers (bleed).
    writers.redisvl_semantic(
        redis_url, [{"prompt": "plain redisvl", "response": "rvl"}], name="litellm_semantic_cache_index"
    )
    venv_writers["litellm"](
        redis_url,
        "semantic",
        calls=[
            {
                "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": Q}],
                "answer": "Paris (semantic)",
            }
        ],
    )
    rows = by_key(run.json_lines("scan"))
    lite = next(r for r in rows.values() if r["layout"] == "litellm_semantic")
    assert lite["cache"] == "litellm_semantic_cache_index_isolated"
    assert lite["index"] == "litellm_semantic_cache_index_isolated"
    assert lite["prompt"] == "You are terse." + Q and lite["answer"] == "Paris (semantic)"
    assert lite["tags"]["litellm_cache_key"] == lc.sha256_hex("model: gpt-4o-mini")
    assert lite["model"] == "gpt-4o-mini" and lite["unreachable"] is None
    rvl = next(r for r in rows.values() if r["layout"] == "redisvl_semantic")
    assert rvl["cache"] == "litellm_semantic_cache_index"
    found = run.json("show", "--prompt", Q, "--system", "You are terse.")
    assert [e["answer"] for e in found] == ["Paris (semantic)"]


def test_gptcache_entry_is_question_plus_vector_and_orphans(run, redis_url, client, venv_writers):
    gpt = venv_writers["gptcache"]
    gpt(redis_url, "qa", qa=[["Expiring question", "gone soon"]], ttl=1)
    assert gpt(redis_url, "qa", qa=[[Q, "Paris"]], lookups=[Q])["hits"] == ["Paris"]
    deadline = time.time() + 10
    while client.exists("gptcache:questions:1") and time.time() < deadline:
        time.sleep(0.2)
    assert not client.exists("gptcache:questions:1") and client.exists("doc:1")
    rows = by_key(run.json_lines("scan"))
    assert set(rows) == {"gptcache:questions:2", "doc:1"}
    entry = rows["gptcache:questions:2"]
    assert entry["layout"] == "gptcache" and entry["cache"] == "gptcache" and entry["index"] == "gptcache"
    assert entry["prompt"] == Q and entry["answer"] == "Paris" and entry["companion_keys"] == ["doc:2"]
    assert entry["vector"]["dims"] == 8 and entry["vector"]["matches_index"] is True and entry["unreachable"] is None
    orphan = rows["doc:1"]
    assert orphan["unreachable"] == "orphan_vector" and orphan["cache"] == "gptcache"
    # infrastructure is recognised, never listed as an entry
    infra = {r["key"]: r for r in run.json_lines("scan", "--unknown") if r.get("infrastructure")}
    assert {"gptcache:counter", "doc:2", "gptcache:questions:index:hash"} <= set(infra)
    assert any(k.startswith("gptcache:report:") for k in infra)
    assert infra["doc:2"]["infrastructure"] == "vector of gptcache:questions:2"
    caches = run.json("caches")
    g = cache_of(caches, "gptcache")
    assert g["entries"] == 2 and g["unreachable"]["orphan_vector"]["entries"] == 1
    assert g["infrastructure"]["roles"]["id counter"] == 1 and g["infrastructure"]["roles"]["hit report"] == 1
    assert caches["unknown_keys"] == 0
    stats = run.json("stats")
    assert cache_of(stats, "gptcache")["unreachable"]["orphan_vector"]["bytes"] > 0
    assert {r["key"] for r in run.json_lines("scan", "--cache", "gptcache")} == {"gptcache:questions:2", "doc:1"}
    assert [e["key"] for e in run.json("show", "--prompt", Q)] == ["gptcache:questions:2"]


def test_pickle_caches_are_never_unpickled(run, redis_url, client, tmp_path):
    writers.pickle_llm_cache(redis_url, [(Q, "Paris (pickled)")])
    writers.pickle_smart_cache(
        redis_url, [("faq:hours", {"question": "Hours?", "answer": "9-5"}, ["faq", "hours"])], version=2
    )
    proof = tmp_path / "unpickled"

    class Exploit:  # what an attacker who can write to Redis plants: loading it creates a file
        def __reduce__(self):
            return (open, (str(proof), "w"))

    import pickle

    client.set("llm_cache:" + lc.sha256_hex("evil"), pickle.dumps(Exploit()), ex=3600)
    rows = by_key(run.json_lines("scan"))
    run.json("caches")
    run.json("stats")
    evil = run.json("show", "llm_cache:" + lc.sha256_hex("evil"))
    for key in rows:
        run.json("show", key)
    assert not proof.exists()
    assert evil["value_format"] == "pickle" and "io.open" in evil["metadata"]["pickle"]["imports_that_run_code"]
    assert any("would import and call io.open" in n for n in evil["notes"])
    good = next(r for r in rows.values() if r["answer"] == "Paris (pickled)")
    assert good["layout"] == "pickle_llm_cache" and good["prompt"] == Q and good["model"] == "gpt-4o-mini"
    smart = rows["smart_cache:v2:faq:hours"]
    assert smart["layout"] == "pickle_smart_cache" and smart["cache"] == "smart_cache"
    assert smart["prompt"] == "Hours?" and smart["answer"] == "9-5" and smart["tags"] == {"version": "v2"}
    assert "smart_cache:tag:faq" not in rows
    caches = run.json("caches")
    assert cache_of(caches, "smart_cache")["infrastructure"]["roles"] == {"tag set": 2}
    assert cache_of(caches, "llm_cache")["entries"] == 2


def test_old_langchain_redis_semantic_prefix_mappings(run, redis_url, venv_writers):
    venv_writers["langchain_redis_01"](
        redis_url,
        "langchain_redis_semantic",
        qa=[[Q, "Paris (0.1.2)"]],
        cache={"name": "tenantidx01", "prefix": "tenant01"},
    )
    venv_writers["legacy_langchain"](
        redis_url,
        "langchain_redis_semantic",
        qa=[[Q, "Paris (0.2.3)"]],
        cache={"name": "tenantidx", "prefix": "tenant42"},
    )
    rows = {r["answer"]: r for r in run.json_lines("scan")}
    sha = lc.sha256_hex(lc.chat_prompt(Q))
    # 0.1.x: index = name over keys "<prefix>:"; 0.2.1-0.2.3: the prefix is ignored, keys "<name>:"
    assert rows["Paris (0.1.2)"]["key"] == f"tenant01:{sha}" and rows["Paris (0.1.2)"]["index"] == "tenantidx01"
    assert rows["Paris (0.2.3)"]["key"] == f"tenantidx:{sha}" and rows["Paris (0.2.3)"]["index"] == "tenantidx"
    assert all(r["layout"] == "langchain_semantic" and r["unreachable"] is None for r in rows.values())
    assert len(run.json("show", "--prompt", Q)) == 2


def test_message_id_prompts_from_old_langchain_core_are_unreachable(run, redis_url, venv_writers):
    venv_writers["legacy_langchain"](
        redis_url, "langchain_redis_semantic", qa=[[{"text": "hi", "id": "msg-1"}, "hello"], ["no ids", "fine"]]
    )
    rows = {r["prompt"]: r for r in run.json_lines("scan")}
    assert rows["hi"]["unreachable"] == "message_ids" and rows["no ids"]["unreachable"] is None
    # the exact cache stores only md5(prompt): established once the prompt is known (from the semantic cache)
    venv_writers["legacy_langchain"](redis_url, "langchain_redis_exact", qa=[[{"text": "hi", "id": "msg-1"}, "hello"]])
    exact = next(r for r in run.json_lines("scan") if r["layout"] == "langchain_exact")
    assert exact["prompt"] == "hi" and exact["unreachable"] == "message_ids"


def test_float16_vectors_and_mismatched_or_unindexed_documents(run, redis_url, client):
    from redisvl.extensions.cache.llm import SemanticCache
    from redisvl.utils.vectorize import CustomVectorizer

    writers.redisvl_semantic(redis_url, [{"prompt": "half", "response": "f16"}], name="halfcache", dtype="float16")
    # The app switched embedding models and recreated the index (overwrite keeps the documents).
    writers.redisvl_semantic(redis_url, [{"prompt": "old dims", "response": "64"}], name="switched")
    SemanticCache(
        name="switched", redis_url=redis_url, overwrite=True, vectorizer=CustomVectorizer(embed=lambda t: [0.5] * 16)
    ).store(prompt="new dims", response="16")
    # An index dropped without its documents (FT.DROPINDEX without DD, as a migration does).
    writers.redisvl_semantic(redis_url, [{"prompt": "dropped", "response": "gone"}], name="dropped_cache")
    client.execute_command("FT.DROPINDEX", "dropped_cache")
    rows = {r["prompt"]: r for r in run.json_lines("scan")}
    assert rows["half"]["vector"] == {
        "field": "prompt_vector",
        "dims": 64,
        "dtype": "FLOAT16",
        "bytes": 128,
        "matches_index": True,
    }
    assert rows["half"]["unreachable"] is None
    assert rows["old dims"]["unreachable"] == "vector_mismatch" and rows["new dims"]["unreachable"] is None
    assert rows["dropped"]["unreachable"] == "no_index"
    caches = run.json("caches")
    assert (
        caches["unreachable"]["vector_mismatch"]["entries"] == 1 and caches["unreachable"]["no_index"]["entries"] == 1
    )
    assert "FT.INFO" in caches["unreachable"]["vector_mismatch"]["how"]
    table = run("caches", "--table").output
    assert "vector_mismatch" in table and "no_index" in table


def test_mixed_keyspace_every_layout_and_no_foreign_key_claimed(run, redis_url, client, venv_writers):
    legacy, lite = venv_writers["legacy_langchain"], venv_writers["litellm"]
    writers.langchain_exact(redis_url, [(Q, "lc exact")])
    writers.langchain_semantic(redis_url, [([SystemMessage("sys"), HumanMessage(Q)], "lc semantic")])
    writers.redisvl_semantic(redis_url, [{"prompt": Q, "response": "rvl"}], name="rvlcache")
    writers.redisvl_semantic(redis_url, [{"prompt": "half", "response": "rvl16"}], name="half", dtype="float16")
    writers.redisvl_embeddings(redis_url, [("hello", "mini")])
    writers.community_exact(redis_url, [(Q, "community exact")])
    legacy(redis_url, "community_semantic", qa=[[Q, "community semantic"]], check=False)
    legacy(redis_url, "langchain_redis_exact", qa=[["old shape?", "lc old"]], cache={"prefix": "old"}, check=False)
    lite(
        redis_url,
        "exact",
        # LiteLLM's default TTL is 60 s: a slow machine could see the entry expire before the scan
        calls=[{"messages": [{"role": "user", "content": Q}], "answer": "litellm exact", "ttl": 3600}],
        cache={"namespace": "ll"},
    )
    lite(redis_url, "semantic", calls=[{"messages": [{"role": "user", "content": Q}], "answer": "litellm semantic"}])
    venv_writers["gptcache"](redis_url, "qa", qa=[[Q, "gptcache"]], lookups=[Q])
    writers.pickle_llm_cache(redis_url, [(Q, "pickle llm")])
    writers.pickle_smart_cache(redis_url, [("k", {"prompt": Q, "response": "pickle smart"}, ["t"])])
    expected = {
        "lc exact": "langchain_exact",
        "lc semantic": "langchain_semantic",
        "rvl": "redisvl_semantic",
        "rvl16": "redisvl_semantic",
        "embedding, 64 dims": "redisvl_embeddings",
        "community exact": "community_exact",
        "community semantic": "community_semantic",
        "lc old": "langchain_exact",
        "litellm exact": "litellm_exact",
        "litellm semantic": "litellm_semantic",
        "gptcache": "gptcache",
        "pickle llm": "pickle_llm_cache",
        "pickle smart": "pickle_smart_cache",
    }
    entry_keys = {r["key"] for r in run.json_lines("scan")}
    # Foreign keys shaped like cache keys (same prefixes, hash lengths, types or value openings).
    sha, md5 = lc.sha256_hex("foreign"), lc.md5_hex("foreign")
    foreign = {
        "redis:session:42": ("string", "user-42"),
        "llmcache:not-a-cache-entry": ("string", "x"),
        f"redis:{md5}:{md5}": ("json", {"user": "not langchain"}),
        md5: ("hash", {"0": "not a generation", "1": "x"}),
        sha: ("string", '{"timestamp": 1795295335.8, "user": "no response field"}'),
        f"ll:{lc.sha256_hex('f2')}": ("string", "{'timestamp': 1, 'note': 'repr without response'}"),
        f"rvlcache:{sha}": ("hash", {"prompt": "p", "note": "no vector or response"}),
        f"llm_cache:{lc.sha256_hex('f3')}": ("string", '{"response": "json, not a pickle"}'),
        "smart_cache:v1:plain": ("string", "plain text"),
        "smart_cache:tag:not-a-set": ("string", "x"),
        "app:counter": ("string", "5"),
        "gptcache:questions:99": ("json", {"pk": "99", "note": "no question"}),
        "myapp:report:01ARZ3NDEKTSV4RRFFQ69G5FAV": ("json", {"user_question": "q"}),
        "doc:7": ("hash", {"title": "a document"}),
        f"doc:cache:{md5}:{md5}": ("hash", {"prompt": "p"}),
        "embedcache:" + sha: ("hash", {"content": "c"}),
    }
    for key, (kind, value) in foreign.items():
        if kind == "string":
            client.set(key, value)
        elif kind == "hash":
            client.hset(key, mapping=value)
        else:
            client.execute_command("JSON.SET", key, "$", orjson.dumps(value))
    rows = run.json_lines("scan", "--unknown")
    entries = [r for r in rows if r["layout"] != "unknown" and not r.get("infrastructure")]
    got = {r["answer"]: r["layout"] for r in entries}
    assert got == expected
    assert {r["key"] for r in entries} == entry_keys  # the foreign keys changed nothing
    unknown = {r["key"] for r in rows if r["layout"] == "unknown"}
    assert set(foreign) <= unknown
    infra = {r["key"] for r in rows if r.get("infrastructure")}
    assert not infra & set(foreign) and "gptcache:counter" in infra and "smart_cache:tag:t" in infra
    caches = run.json("caches")
    assert caches["unknown_keys"] == len(unknown)
    assert sum(c["entries"] for c in caches["caches"]) == len(expected)
