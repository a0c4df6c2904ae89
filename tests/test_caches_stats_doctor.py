"""caches, stats, doctor and demo over caches written by the real libraries."""

import json

import writers

from cacheops.exit_codes import ExitCode

Q = "What is the capital of France?"


def fill_mixed(redis_url):
    writers.langchain_exact(redis_url, [(Q, "Paris."), ("Hi?", "Hello.")], model="gpt-4o-mini")
    writers.langchain_exact(redis_url, [(Q, "Paris!")], model="gpt-4o", prefix="app:exact", ttl=7200)
    writers.langchain_semantic(redis_url, [(Q, "Paris."), ("Bye?", "Goodbye.")], model="gpt-4o", ttl=86400 * 3)
    writers.redisvl_semantic(
        redis_url,
        [{"prompt": "p", "response": "r", "filters": {"tier": "pro"}}],
        name="tiered",
        filterable_fields=[{"name": "tier", "type": "tag"}],
        ttl=30,
    )
    writers.redisvl_embeddings(redis_url, [("text", "m1"), ("text", "m2")])


def test_caches_lists_every_cache(run, redis_url):
    fill_mixed(redis_url)
    doc = run.json("caches")
    by_name = {c["name"]: c for c in doc["caches"]}
    assert set(by_name) == {"redis", "app:exact", "llmcache", "tiered", "embedcache"}
    assert by_name["redis"]["entries"] == 2 and by_name["redis"]["ttl_policy"] == "no expiry"
    assert by_name["app:exact"]["kind"] == "exact" and by_name["app:exact"]["ttl_histogram"]["<1d"] == 1
    assert by_name["llmcache"]["index"] == "llmcache" and by_name["llmcache"]["models"] == {"gpt-4o": 2}
    assert by_name["llmcache"]["vector"] == {"64 FLOAT32": 2}
    assert by_name["tiered"]["libraries"] == {"RedisVL SemanticCache": 1}
    assert by_name["embedcache"]["entries"] == 2
    assert doc["unknown_keys"] == 0
    table = run("caches", "--table").output
    assert "llmcache" in table and "app:exact" in table


def test_empty_semantic_index_is_a_cache(run, redis_url):
    writers.redisvl_semantic(redis_url, [], name="empty_cache")
    by_name = {c["name"]: c for c in run.json("caches")["caches"]}
    assert by_name["empty_cache"]["entries"] == 0


def test_stats_histograms_and_access(run, client, redis_url):
    fill_mixed(redis_url)
    doc = run.json("stats")
    assert doc["server"]["version"].startswith("8.")
    assert doc["access"]["measure"] == "idle_seconds" and doc["access"]["sampled"] == 8
    by_name = {c["name"]: c for c in doc["caches"]}
    assert by_name["llmcache"]["ttl_histogram"] == {"none": 0, "<1h": 0, "<1d": 0, "<7d": 2, ">=7d": 0}
    assert by_name["tiered"]["ttl_histogram"]["<1h"] == 1
    assert by_name["llmcache"]["oldest"] <= by_name["llmcache"]["newest"]
    client.config_set("maxmemory-policy", "allkeys-lfu")
    doc = run.json("stats", "--cache", "llmcache")
    assert doc["access"]["measure"] == "lfu_frequency" and [c["name"] for c in doc["caches"]] == ["llmcache"]
    assert "hit ratio" in run("stats", "--table").output


def test_doctor_healthy_and_problems(run, client, redis_url):
    fill_mixed(redis_url)
    client.config_set("maxmemory", "0")
    result = run("doctor", "--json")
    report = json.loads(result.output)
    statuses = {c["area"]: c["status"] for c in report["checks"]}
    assert statuses["module search"] == "ok" and statuses["module json"] == "ok" and statuses["acl"] == "ok"
    assert statuses["no-touch"] == "ok"
    assert result.exit_code == 0, report
    client.config_set("maxmemory", "1gb")
    client.config_set("maxmemory-policy", "noeviction")
    result = run("doctor", "--json")
    assert result.exit_code == ExitCode.PROBLEMS_FOUND
    assert any(c["area"] == "memory" and c["status"] == "problem" for c in json.loads(result.output)["checks"])
    client.config_set("maxmemory", "0")


def test_doctor_prefix_bleed_and_acl(run, client, redis_url):
    writers.redisvl_semantic(redis_url, [{"prompt": "a", "response": "A"}], name="llmcache")
    writers.redisvl_semantic(redis_url, [{"prompt": "b", "response": "B"}], name="llmcache_v2")
    report = run.json("doctor") if False else json.loads(run("doctor", "--json").output)
    assert any("llmcache_v2" in c["message"] and c["status"] == "warn" for c in report["checks"])
    client.execute_command(
        "ACL",
        "SETUSER",
        "reader",
        "on",
        ">readerpw",
        "~*",
        "+@read",
        "+@connection",
        "+acl|whoami",
        "+acl|dryrun",
        "+info",
        "+client",
        "+ft._list",
        "+ft.info",
    )
    host = redis_url.split("//")[1]
    result = run("doctor", "--json", url=f"redis://reader:readerpw@{host}")
    acl = next(c for c in json.loads(result.output)["checks"] if c["area"] == "acl")
    assert acl["status"] == "problem" and "UNLINK" in acl["message"]
    assert "readerpw" not in result.output


def test_demo_fills_a_realistic_cache(run, client, redis_url):
    result = run("demo", "--into", redis_url)
    assert result.exit_code == 0, result.output
    by_name = {c["name"]: c for c in run.json("caches")["caches"]}
    assert {"redis", "support:exact", "llmcache", "support_cache", "embedcache"} <= set(by_name)
    assert len(by_name["redis"]["models"]) == 3
    assert by_name["llmcache"]["entries"] >= 20
    found = run.json("show", "--prompt", Q)
    assert len(found) >= 4 and all(e["prompt"] == Q for e in found)


def wait_indexed(client, index: str, timeout: float = 10.0) -> None:
    """RediSearch indexes existing documents of a new index in the background."""
    import time

    from cacheops.server.indexes import parse_ft_info

    deadline = time.monotonic() + timeout
    while parse_ft_info(client.execute_command("FT.INFO", index)).percent_indexed < 1:
        assert time.monotonic() < deadline, f"index {index} still indexing"
        time.sleep(0.05)


def test_doctor_finds_vectors_that_no_longer_match_the_index(run, client, redis_url):
    """The app switched embedding models and recreated the index (overwrite=True keeps the docs):
    the old 64-dim documents fail to index under the new 32-dim schema and can never be hit."""
    from redisvl.extensions.cache.llm import SemanticCache
    from redisvl.utils.vectorize import CustomVectorizer

    from cacheops.demo import hashing_embeddings

    writers.redisvl_semantic(redis_url, [{"prompt": "old q", "response": "old a"}], name="drifted")
    small = hashing_embeddings(32)
    cache = SemanticCache(
        name="drifted", redis_url=redis_url, vectorizer=CustomVectorizer(embed=small.embed_query), overwrite=True
    )
    cache.store("new q", "new a")
    wait_indexed(client, "drifted")
    result = run("doctor", "--json")
    assert result.exit_code == 8
    checks = json.loads(result.output)["checks"]
    assert any(
        c["area"] == "index drifted" and c["status"] == "problem" and "failed to index" in c["message"] for c in checks
    )
    rows = {r["prompt"]: r for r in run.json_lines("scan", "--cache", "drifted")}
    assert rows["old q"]["vector"]["matches_index"] is False and rows["new q"]["vector"]["matches_index"] is True
    summary = next(c for c in run.json("caches")["caches"] if c["name"] == "drifted")
    assert summary["vector_mismatches"] == 1


def test_cacheops_own_keys_are_infrastructure_not_unknown(run, client, redis_url):
    writers.langchain_exact(redis_url, [(Q, "Paris."), ("Hi?", "Hello.")])
    key = next(k.decode() for k in client.scan_iter(match="redis:*"))
    assert run("tag", key, "team=support").exit_code == 0
    assert run("evict", "--response-contains", "Hello", "--yes").exit_code == 0
    assert client.exists("cacheops:oplog")
    # an event an earlier version logged under the old key: still cacheops' own, still in the history
    client.xadd(
        "cacheops:audit",
        {"action": "restore", "at": "1700000000.000", "redis_user": "old", "counts": "{}"},
        id="1700000000000-0",
    )
    doc = run.json("caches")
    assert doc["unknown_keys"] == 0
    rows = run.json_lines("scan", "--unknown")
    roles = {r["key"]: r.get("infrastructure") for r in rows if r["layout"] == "cacheops"}
    assert roles["cacheops:oplog"] == roles["cacheops:audit"] == "cacheops operations log"
    assert all(r["layout"] != "unknown" for r in rows)
    events = run.json_lines("history")
    assert [e["action"] for e in events] == ["evict", "restore"]  # newest first, across both keys
    assert events[1]["redis_user"] == "old" and events[1]["at"] == 1700000000.0
    assert [e["action"] for e in run.json_lines("history", "--action", "restore")] == ["restore"]
