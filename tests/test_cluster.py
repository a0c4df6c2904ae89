"""Redis Cluster (3 primaries + 3 replicas) and Sentinel, started by the suite from the same
redis-server binary; entries written by the real libraries with their cluster clients."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import redis
import writers
import yaml
from cluster_fixtures import wait_for_replicas
from conftest import Cli
from langchain_redis import RedisCache
from redis.cluster import RedisCluster

from cacheops import connect_url
from cacheops.demo import demo_chat_model
from cacheops.ownkeys import cluster_tag_key
from cacheops.server.connection import parse_target, redact_url
from cacheops.server.embedded_cluster import EmbeddedCluster
from cacheops.server.keyspace import ScanOptions, iter_batches

Q = "What is the capital of France?"
EXACT_QA = [(Q, "Paris."), ("Hi?", "Hello.")] + [(f"exact question {i}", f"exact answer {i}") for i in range(30)]
SEMANTIC = [{"prompt": f"semantic question {i}", "response": f"semantic answer {i}"} for i in range(40)]
# Fields that differ between two writes of the same entries (clocks; MEMORY USAGE, which depends on
# each server's allocator state), not between topologies.
VOLATILE = ("inserted_at", "updated_at", "oldest", "newest", "seconds", "ttl_seconds", "expires_at", "bytes")


def fill(url: str, cluster: bool) -> None:
    """The same entries, through each library's cluster client where it has one: langchain-redis
    RedisCache takes a RedisCluster client; RedisVL takes a cluster URL (several hosts or cluster=true)."""
    exact_kwargs = {"redis_client": RedisCluster.from_url(url)} if cluster else {}
    writers.langchain_exact(url, EXACT_QA, model="gpt-4o-mini", **exact_kwargs)
    writers.langchain_exact(url, [(Q, "Paris!")], model="gpt-4o", prefix="app:exact", ttl=7200, **exact_kwargs)
    writers.redisvl_semantic(url + ("?cluster=true" if cluster else ""), SEMANTIC, ttl=86400)
    writers.redisvl_embeddings(url + ("?cluster=true" if cluster else ""), [("text", "m1"), ("text", "m2")])


def strip(value):
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [strip(v) for v in value]
    return value


def test_cluster_lists_every_entry_once_as_one_node_does(run, redis_url, redis_cluster, cluster_client):
    fill(redis_url, cluster=False)
    fill(redis_cluster.url, cluster=True)
    on_cluster = Cli(redis_cluster.url)
    keys = sorted(cluster_client.scan_iter())
    assert len({cluster_client.keyslot(k) for k in keys}) > 30  # spread over the slots of every shard
    per_node = [cluster_client.get_redis_connection(n).dbsize() for n in cluster_client.get_primaries()]
    assert all(count > 0 for count in per_node) and sum(per_node) == len(keys)

    listed = on_cluster.json_lines("scan")
    assert sorted(e["key"].encode() for e in listed) == keys  # every entry, each once
    single = run.json_lines("scan")
    assert strip(sorted(listed, key=lambda e: e["key"])) == strip(sorted(single, key=lambda e: e["key"]))

    caches = on_cluster.json("caches")
    assert caches["scanned_keys"] == len(keys)
    one_node = run.json("caches")
    for doc in (caches, one_node):
        doc.pop("scan_path")
    assert strip(caches) == strip(one_node)

    stats = on_cluster.json("stats")
    assert {c["name"]: c["entries"] for c in stats["caches"]} == {
        "redis": 32,
        "app:exact": 1,
        "llmcache": 40,
        "embedcache": 2,
    }
    assert stats["access"]["sampled"] == len(keys)  # OBJECT IDLETIME of every entry, each on its own node

    key = next(e["key"] for e in listed if e["cache"] == "llmcache")
    shown = on_cluster.json("show", key)
    assert strip(shown) == strip(run.json("show", key))
    copies = on_cluster.json("show", "--prompt", Q)
    assert sorted(c["answer"] for c in copies) == ["Paris!", "Paris."]


def test_any_node_seeds_or_a_replica_reach_the_whole_cluster(redis_cluster, cluster_client):
    writers.redisvl_semantic(redis_cluster.url + "?cluster=true", SEMANTIC)
    wait_for_replicas(cluster_client)
    urls = [
        redis_cluster.seeds_url,
        f"redis://127.0.0.1:{redis_cluster.replica_nodes[1].port}",
        f"redis://127.0.0.1:{redis_cluster.nodes[2].port}/0?cluster=true",
    ]
    for url in urls:
        doc = Cli(url).json("caches")
        assert doc["scanned_keys"] == len(SEMANTIC), url
    config = Path(os.environ["CACHEOPS_CONFIG"])
    config.write_text(f"profiles:\n  shards:\n    url: {redis_cluster.seeds_url}\n    read_from_replicas: true\n")
    before = {n.port: _scripts_run(n.port) for n in redis_cluster.nodes}
    from_profile = Cli("").json_lines("--profile", "shards", "scan")
    assert len(from_profile) == len(SEMANTIC)
    assert all(_scripts_run(n.port) == before[n.port] for n in redis_cluster.primary_nodes)

    listed = Cli(redis_cluster.url).json_lines("--read-from-replicas", "scan")
    assert sorted(e["prompt"] for e in listed) == sorted(e["prompt"] for e in SEMANTIC)
    ran = {n.port: _scripts_run(n.port) - before[n.port] for n in redis_cluster.nodes}
    assert all(ran[n.port] > 0 for n in redis_cluster.replica_nodes)  # the scan script ran on every replica
    assert all(ran[n.port] == 0 for n in redis_cluster.primary_nodes)  # and never on a primary


def _scripts_run(port: int) -> int:
    stats = redis.Redis(port=port).info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if k.startswith("cmdstat_evalsha"))


def test_cluster_url_with_a_db_is_refused(redis_cluster):
    for url in (f"redis://127.0.0.1:{redis_cluster.nodes[0].port}/3", f"{redis_cluster.seeds_url}/3"):
        result = Cli(url)("caches")
        assert result.exit_code == 9 and "only db 0" in result.output and len(result.output.splitlines()) == 1


def test_urls_with_several_hosts_are_redacted():

    assert redact_url("redis://app:s3cret@h1:7000,h2:7001/0") == "redis://app:***@h1:7000,h2:7001/0"
    assert redact_url("rediss+sentinel://:s3cret@s1:26379,s2/cache/2") == "rediss+sentinel://:***@s1:26379,s2/cache/2"
    target = parse_target("rediss+sentinel://app:s%40cret@s1:26380,s2/cache/2")
    assert target.hosts == [("s1", 26380), ("s2", 26379)] and target.tls and target.sentinel
    assert (target.service, target.db, target.username, target.password) == ("cache", 2, "app", "s@cret")
    assert parse_target("redis+sentinel://s1").service == "mymaster"
    assert parse_target("redis://h:7000?cluster=true").cluster_flag() is True


def test_sentinel_url_follows_the_primary_through_a_failover(redis_sentinel, sentinel_primary):
    primary_url = f"redis://127.0.0.1:{redis_sentinel.current_primary_port()}"
    writers.redisvl_semantic(primary_url, SEMANTIC)
    writers.langchain_exact(primary_url, EXACT_QA)
    sentinel_primary.execute_command("WAIT", 1, 5000)
    expected = len(SEMANTIC) + len(EXACT_QA)
    for url in (redis_sentinel.url, redis_sentinel.url + "/0"):
        assert Cli(url).json("caches")["scanned_keys"] == expected
    assert len(Cli(redis_sentinel.url).json_lines("--read-from-replicas", "scan")) == expected
    checks = {c["area"]: c for c in Cli(redis_sentinel.url).json("doctor")["checks"]}
    assert checks["sentinel"]["status"] == "ok", checks["sentinel"]
    assert "3 of 3 sentinels answer (quorum 2); they name primary 127.0.0.1:" in checks["sentinel"]["message"]
    replica = f"replica 127.0.0.1:{redis_sentinel.replica_nodes[0].port}"
    assert checks[replica]["status"] == "ok", checks[replica]
    assert checks[replica]["message"] == "in sync" or checks[replica]["message"].endswith("bytes behind")

    # A failover in the middle of a scan: the scan finishes (the demoted primary still answers reads
    # as a replica) and lists every key; the next connection follows the sentinels to the new primary.
    client = connect_url(redis_sentinel.url)
    batches = iter_batches(client, ScanOptions(count=10))
    seen = [r.key for r in next(batches)]
    new_port = redis_sentinel.failover()
    seen += [r.key for batch in batches for r in batch]
    assert len(set(seen)) == expected
    assert Cli(redis_sentinel.url).json("caches")["scanned_keys"] == expected
    assert f":{new_port}" not in redis_sentinel.url and new_port != int(primary_url.rsplit(":", 1)[1])

    wrong = Cli(redis_sentinel.url.replace("mymaster", "nosuchservice"))("caches")
    assert wrong.exit_code != 0 and "nosuchservice" in wrong.output and len(wrong.output.splitlines()) == 1


def test_doctor_on_a_cluster(redis_cluster, cluster_client):
    fill(redis_cluster.url, cluster=True)
    primaries = cluster_client.get_primaries()
    cluster_client.get_redis_connection(primaries[1]).config_set("maxmemory-policy", "allkeys-lru")
    wait_for_replicas(cluster_client)
    doc = Cli(redis_cluster.url).json("doctor")
    checks = {c["area"]: c for c in doc["checks"]}
    assert (
        checks["cluster"]["status"] == "ok"
        and "16384 of 16384 slots served by 3 primaries" in checks["cluster"]["message"]
    )
    shards = [c for area, c in checks.items() if area.startswith("shard ")]
    assert len(shards) == 3 and all(c["status"] == "ok" and "in sync" in c["message"] for c in shards)
    assert sorted(c["message"].split(";")[0] for c in shards) == [
        "slots 0-5460",
        "slots 10922-16383",
        "slots 5461-10921",
    ]
    assert len([a for a in checks if a.startswith("memory 127.0.0.1:")]) == 3
    assert "disagree on maxmemory-policy" in checks["memory"]["message"]
    assert checks["acl"]["status"] == "ok" and "every primary (3)" in checks["acl"]["message"]
    assert checks["no-touch"]["status"] == "ok"
    coordinator = [c for c in doc["checks"] if "search coordinator" in c["message"]]
    assert len(coordinator) == 1 and "see one shard's entries" in coordinator[0]["message"]
    assert coordinator[0]["area"] == "cache llmcache" and coordinator[0]["status"] == "warn"


def test_inspection_does_not_touch_entries_on_any_node(redis_cluster, cluster_client):
    writers.redisvl_semantic(redis_cluster.url + "?cluster=true", SEMANTIC[:12])
    keys = list(cluster_client.scan_iter(match="llmcache:*"))
    time.sleep(2.1)
    on_cluster = Cli(redis_cluster.url)
    assert len(on_cluster.json_lines("scan")) == len(keys)
    on_cluster.json("stats")
    on_cluster.json("show", keys[0].decode())
    idle = [cluster_client.object("idletime", key) for key in keys]
    assert min(idle) >= 2, idle


def test_tag_and_history_work_and_unbuilt_commands_refuse_cleanly(redis_cluster, cluster_client):
    writers.langchain_exact(redis_cluster.url, EXACT_QA[:3], redis_client=RedisCluster.from_url(redis_cluster.url))
    on_cluster = Cli(redis_cluster.url)
    key = on_cluster.json_lines("scan")[0]["key"]
    assert on_cluster.json("tag", key, "source=warmup")["tags"] == {"source": "warmup"}
    assert on_cluster.json("tag", key)["tags"] == {"source": "warmup"}
    assert cluster_client.pttl(cluster_tag_key(key)) == -1  # as its entry: no expiry
    assert on_cluster("history").exit_code == 0
    before = sorted(cluster_client.scan_iter())
    for args in (("migrate-embeddings", "--cache", "llmcache", "--flush", "--yes"),):
        result = on_cluster(*args)
        assert result.exit_code == 24, (args, result.output)
        assert "does not run on a Redis Cluster yet" in result.output and len(result.output.splitlines()) == 1
    assert sorted(cluster_client.scan_iter()) == before  # nothing changed


def test_warm_an_exact_cache_on_a_cluster_and_refuse_a_semantic_one(redis_cluster, cluster_client, tmp_path):
    """The app (langchain-redis RedisCache with a RedisCluster client) hits what warm wrote; a semantic
    cache is not warmed without a search coordinator: its lookups would search one shard's index."""
    playbook = {
        "prompts": [{"prompt": f"warm question {i}", "answer": f"warm answer {i}"} for i in range(6)],
        "warm": {
            "name": "onboarding",
            "models": [{"import": "cacheops.demo:demo_chat_model", "kwargs": {"model_name": "gpt-4o-mini"}}],
            "caches": [
                {"type": "langchain_exact", "ttl": 600},
                {
                    "type": "redisvl_semantic",
                    "name": "llmcache",
                    "embedding": {"import": "cacheops.demo:hashing_embeddings"},
                },
            ],
        },
    }
    path = tmp_path / "playbook.yaml"
    path.write_text(yaml.safe_dump(playbook, sort_keys=False))
    result = Cli(redis_cluster.url)("warm", str(path), "--json")
    assert result.exit_code == 8, result.output  # the semantic cache's prompts failed
    doc = json.loads(result.stdout)
    assert doc["totals"]["written"] == 6 and doc["totals"]["failed"] == 6
    semantic = next(c for c in doc["caches"] if c["type"] == "redisvl_semantic")
    assert "no search coordinator" in semantic["error"]
    keys = list(cluster_client.scan_iter(match="redis:*"))
    assert len(keys) == 6 and len({cluster_client.keyslot(k) for k in keys}) > 1  # on several shards
    cache = RedisCache(redis_client=RedisCluster.from_url(redis_cluster.url))
    chat = demo_chat_model("gpt-4o-mini")
    with writers.llm_cache(cache):
        answers = [chat.invoke(f"warm question {i}").content for i in range(6)]
    assert answers == [f"warm answer {i}" for i in range(6)] and chat.i == 0  # every one a hit


def test_the_tui_lists_a_cluster(redis_cluster, cluster_client):
    import asyncio

    from test_tui import make_app, open_cache, settle

    from cacheops.tui.widgets.cache_list import CacheList

    writers.redisvl_semantic(redis_cluster.url + "?cluster=true", SEMANTIC[:12])

    async def scenario():
        app = make_app(redis_cluster.url)
        async with app.run_test(size=(160, 45)) as pilot:
            await settle(app, pilot, until=lambda: app.query_one(CacheList).row_count == 1)
            assert app.session.dbsize() == 12
            table = await open_cache(app, pilot, "llmcache")
            assert table.row_count == 12

    asyncio.run(scenario())


def test_a_password_cluster_a_dead_seed_and_a_wrong_password(tmp_path):
    """Its own small cluster (3 primaries, requirepass on every node)."""
    from cacheops.server.embedded import free_port

    with EmbeddedCluster(primaries=3, replicas=0, password="s3cret-pw") as cluster:
        writers.redisvl_semantic(cluster.url + "?cluster=true", SEMANTIC[:9])
        dead = free_port()
        ports = ",".join(f"127.0.0.1:{p}" for p in [dead] + [n.port for n in cluster.primary_nodes])
        for url in (cluster.url, f"redis://:s3cret-pw@{ports}"):
            assert Cli(url).json("caches")["scanned_keys"] == 9, url
        for url in (cluster.url.replace("s3cret-pw", "wrong-pw"), f"redis://:wrong-pw@{ports}"):
            result = Cli(url)("caches")
            assert result.exit_code == 4, result.output
            assert "wrong-pw" not in result.output and len(result.output.splitlines()) == 1
        bare = Cli(cluster.url.replace(":s3cret-pw@", ""))("caches")
        assert bare.exit_code == 4 and "authentication" in bare.output
