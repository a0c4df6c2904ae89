"""expire and the hit statistics on a Redis Cluster (3 primaries + 3 replicas, started by the suite),
compared with one node holding the same entries: the same entries written by the real libraries
with their cluster clients, a tracked LangChain app (cacheops_track) writing through a RedisCluster."""

from __future__ import annotations

import time

import pytest
import redis
import writers
from conftest import Cli
from langchain_core.globals import set_llm_cache
from langchain_redis import RedisCache
from redis.cluster import RedisCluster
from test_cluster import fill
from test_hits import UsageChatModel, ask

import cacheops_track
from cacheops.ownkeys import cluster_tag_key, tag_key
from cacheops_track import keys as K

DAY_MS = 86400 * 1000
OPLOG = b"cacheops:oplog"
QUESTIONS = [f"tracked question {i}?" for i in range(12)]


def expiries(client) -> dict[bytes, int]:
    """Every key's absolute expiry (ms, -1 none) but the operations log's (every primary on a cluster)."""
    return {k: client.execute_command("PEXPIRETIME", k) for k in client.scan_iter(count=1000) if k != OPLOG}


def now_ms(client) -> int:
    seconds, micros = (
        client.time() if isinstance(client, redis.Redis) else client.get_primaries()[0].redis_connection.time()
    )
    return int(seconds) * 1000 + int(micros) // 1000


@pytest.fixture
def tracked():
    """Fresh recorders per test (the module shares one per stats Redis per process)."""
    cacheops_track._recorders.clear()
    yield
    set_llm_cache(None)
    for recorder in list(cacheops_track._recorders.values()):
        recorder.close()
    cacheops_track._recorders.clear()


def tracked_app(server: str, cluster: bool, **track_kwargs):
    """A LangChain app behind a tracked langchain-redis RedisCache (a RedisCluster client on the
    cluster; the stats go to the cache's own Redis unless told otherwise): every question asked once
    (a miss), the first four again (hits), the first one a third time."""
    cache_client = RedisCluster.from_url(server) if cluster else redis.Redis.from_url(server)
    cache = cacheops_track.track(RedisCache(redis_client=cache_client, prefix="tracked"), **track_kwargs)
    set_llm_cache(cache)
    chat = UsageChatModel()
    for text in QUESTIONS + QUESTIONS[:4] + QUESTIONS[:1]:
        ask(chat, text)
    assert chat.calls == len(QUESTIONS)
    cache.recorder.flush()
    assert cache.recorder.failed_flushes == 0 and cache.recorder.dropped == 0
    set_llm_cache(None)
    return cache


def both(run, redis_url, redis_cluster):
    """The same entries on one node and on the cluster: the libraries' caches, a tracked app's
    entries with their hit records, and a tag on two of them."""
    for url, cluster in ((redis_url, False), (redis_cluster.url, True)):
        fill(url, cluster=cluster)
        tracked_app(url, cluster)
        cacheops_track._recorders.clear()
    on_cluster = Cli(redis_cluster.url)
    for cli in (run, on_cluster):
        keys = sorted(e["key"] for e in cli.json_lines("scan", "--cache", "tracked"))
        for key in keys[:2]:
            cli.json("tag", key, "batch=b")
    return on_cluster


def test_expire_on_a_cluster_as_on_one_node_and_restore_undoes_it(
    run, client, redis_url, redis_cluster, cluster_client, tracked, tmp_path
):
    on_cluster = both(run, redis_url, redis_cluster)
    tracked_keys = sorted(k for k in cluster_client.scan_iter(match="tracked:*"))
    older = tracked_keys[5]  # tags an earlier cacheops left under the one-server name (another slot)
    cluster_client.hset(tag_key(older), "owner", "ops")
    client.hset(tag_key(older), "owner", "ops")
    before = {"one": expiries(client), "cluster": expiries(cluster_client)}

    for cli in (run, on_cluster):  # a dry run changes nothing
        cli.json("expire", "--cache", "tracked", "--ttl", "7d", "--dry-run")
    assert expiries(client) == before["one"] and expiries(cluster_client) == before["cluster"]
    docs = {}
    for name, cli in (("one", run), ("cluster", on_cluster)):
        docs[name] = cli.json("expire", "--cache", "tracked", "--ttl", "7d", "--yes", "--backup", str(tmp_path / name))
    for doc in docs.values():
        for volatile in ("sample", "bytes", "seconds"):
            doc["preview"].pop(volatile, None)
    assert docs["cluster"]["preview"] == docs["one"]["preview"]
    assert docs["cluster"]["preview"]["ttl_changes"]["add_ttl"] == len(QUESTIONS)
    counts = ("selected", "changed", "changed_meanwhile", "gone", "unchanged", "per_cache")
    assert {k: docs["cluster"]["result"][k] for k in counts} == {k: docs["one"]["result"][k] for k in counts}
    assert docs["cluster"]["result"]["changed"] == len(QUESTIONS)

    after = expiries(cluster_client)
    now = now_ms(cluster_client)
    assert len({cluster_client.get_node_from_key(k).name for k in tracked_keys}) == 3  # every shard
    companions = set()
    for key in tracked_keys:
        assert 7 * DAY_MS - 120_000 < after[key] - now <= 7 * DAY_MS, key
        record = K.entry_record_key(key)
        assert after[record] == after[key]  # the hit record (another slot) follows its entry
        companions.add(record)
    for key in tracked_keys[:2]:
        assert after[cluster_tag_key(key)] == after[key]  # the tag hash, in the entry's slot
        companions.add(cluster_tag_key(key))
    assert after[tag_key(older)] == after[older]  # the older tag name too
    companions.add(tag_key(older))
    changed = {k for k in before["cluster"] if after.get(k) != before["cluster"][k]}
    assert changed == set(tracked_keys) | companions  # and nothing else
    # one node: the same keys changed, under its own names
    one_after = expiries(client)
    one_changed = {k for k in before["one"] if one_after.get(k) != before["one"][k]}
    assert len(one_changed) == len(changed)
    for key in client.scan_iter(match="tracked:*"):
        assert one_after[K.entry_record_key(key)] == one_after[key]

    restored = on_cluster.json("restore", docs["cluster"]["result"]["backup"])
    assert restored["ttls_restored"] == len(QUESTIONS) and restored["ttls_kept"] == 0
    assert expiries(cluster_client) == before["cluster"]

    # --persist: entries and tags lose their TTL; hit records get the tracker's idle expiry
    on_cluster.json("expire", "--cache", "tracked", "--ttl", "1h", "--yes")
    on_cluster.json("expire", "--cache", "tracked", "--persist", "--yes")
    final = expiries(cluster_client)
    assert all(final[k] == -1 for k in tracked_keys) and final[cluster_tag_key(tracked_keys[0])] == -1
    idle = K.ENTRY_IDLE_SECONDS * 1000
    assert all(idle - 120_000 < final[K.entry_record_key(k)] - now_ms(cluster_client) <= idle for k in tracked_keys)


def test_a_ttl_the_app_set_since_the_preview_is_respected_on_a_cluster(redis_cluster, cluster_client, tmp_path):
    from cacheops import connect_url
    from cacheops.ops import expire as expire_lib
    from cacheops.ops.selection import Selection

    url = redis_cluster.url
    writers.langchain_exact(url, [(f"q{i}?", f"a{i}") for i in range(6)], redis_client=RedisCluster.from_url(url))
    keys = sorted(cluster_client.scan_iter(match="redis:*"))
    client = connect_url(url)
    plan = expire_lib.plan(client, Selection(cache="redis"), expire_lib.TtlChange(expire_lib.SET, 60.0, "60s"))
    try:
        assert plan.total == 6
        cluster_client.expire(keys[0], 5000)  # the app set its TTL after the preview
        result = expire_lib.execute(client, plan, backup_path=tmp_path / "b.jsonl")
    finally:
        plan.close()
    assert (result.changed, result.changed_meanwhile) == (5, 1)
    assert 4990 <= cluster_client.ttl(keys[0]) <= 5000 and all(50 <= cluster_client.ttl(k) <= 60 for k in keys[1:])


HIT_VOLATILE = ("last_event", "last_hit", "written", "lookup_latency", "series", "bytes")


def strip_hits(value):
    if isinstance(value, dict):
        return {k: strip_hits(v) for k, v in value.items() if k not in HIT_VOLATILE}
    if isinstance(value, list):
        return [strip_hits(v) for v in value]
    return value


def metric_samples(cli: Cli) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    result = cli("metrics")
    assert result.exit_code == 0, result.output
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(result.output)
        for s in f.samples
        if not s.name.startswith(("cacheops_lookup_latency", "cacheops_bytes"))
    }


@pytest.mark.parametrize("stats_to", ["the cache's own client", "a cluster URL"])
def test_hit_stats_of_an_app_tracked_on_a_cluster_as_on_one_node(
    run, redis_url, redis_cluster, cluster_client, tracked, stats_to
):
    """The tracker given a RedisCluster cache (its stats beside it) or a plain cluster node URL writes
    its records and buckets on the cluster; stats, scan, show, metrics and evict --cold read them
    there as on one node."""
    tracked_app(redis_url, cluster=False)
    cacheops_track._recorders.clear()
    tracked_app(redis_cluster.url, cluster=True, **({"url": redis_cluster.url} if stats_to == "a cluster URL" else {}))
    on_cluster = Cli(redis_cluster.url)
    records = list(cluster_client.scan_iter(match="cacheops:hit:*"))
    assert len(records) == len(QUESTIONS)
    assert len({cluster_client.get_node_from_key(k).name for k in records}) == 3  # on every shard

    hits = {name: cli.json("stats", "--since", "1h")["hits"] for name, cli in (("one", run), ("cluster", on_cluster))}
    assert strip_hits(hits["cluster"]) == strip_hits(hits["one"])
    (cache,) = hits["cluster"]["caches"]
    assert (cache["window"]["hits"], cache["window"]["misses"]) == (5, len(QUESTIONS))
    assert hits["cluster"]["tracked_entries"] == len(QUESTIONS) and hits["cluster"]["top_entries"][0]["hits"] == 2

    rows = {
        name: {e["key"]: e for e in cli.json_lines("scan", "--cache", "tracked")}
        for name, cli in (("one", run), ("cluster", on_cluster))
    }
    assert rows["cluster"].keys() == rows["one"].keys()
    for key, entry in rows["cluster"].items():
        assert strip_hits(entry["hits"]) == strip_hits(rows["one"][key]["hits"]), key
    first = max(rows["cluster"], key=lambda k: rows["cluster"][k]["hits"]["hits"])
    shown = on_cluster.json("show", first)
    assert shown["hits"]["hits"] == 2 and strip_hits(shown["hits"]) == strip_hits(run.json("show", first)["hits"])

    assert metric_samples(on_cluster) == metric_samples(run)

    # evict --cold: records made cold by hand on both (hit, or written, ten days ago)
    old = int((time.time() - 10 * 86400) * 1000)
    keys = sorted(rows["one"])
    for store in (redis.Redis.from_url(redis_url), cluster_client):
        store.hset(K.entry_record_key(keys[0]), K.LAST_HIT, old)
        store.hset(K.entry_record_key(keys[1]), mapping={K.LAST_HIT: old, K.WRITTEN: old})
        for key in keys[2:4]:
            record = K.entry_record_key(key)
            if not store.hget(record, K.LAST_HIT):
                store.hset(record, K.WRITTEN, old)
    previews = {
        name: cli.json("evict", "--cold", "7d", "--dry-run")["preview"]
        for name, cli in (("one", run), ("cluster", on_cluster))
    }
    assert {r["key"] for r in previews["cluster"]["sample"]} == {r["key"] for r in previews["one"]["sample"]}
    assert previews["cluster"]["matched"] == previews["one"]["matched"] >= 2
    before = {k: cluster_client.dump(k) for k in cluster_client.scan_iter() if k != OPLOG}
    doc = on_cluster.json("evict", "--cold", "7d", "--yes")
    cold = {r["key"].encode() for r in previews["cluster"]["sample"]}
    assert doc["result"]["deleted"] == len(cold) and doc["result"]["companions_deleted"] == len(cold)
    for key in cold:
        assert not cluster_client.exists(key) and not cluster_client.exists(K.entry_record_key(key))
    assert on_cluster.json("stats", "--cold-after", "7d")["hits"]["cold"]["entries"] == 0
    restored = on_cluster.json("restore", doc["result"]["backup"])
    assert restored["restored"] == len(cold) and restored["companions_restored"] == len(cold)
    assert {k for k in cluster_client.scan_iter() if k != OPLOG} == set(before)


def test_the_tracker_tells_a_cluster_url_as_redisvl_does():
    from cacheops_track.stats_redis import cluster_flag

    assert cluster_flag("redis://h1:7000,h2:7001") is True  # several seeds
    assert cluster_flag("redis://:pw@h1:7000,h2:7001/0") is True
    assert cluster_flag("redis://h1:7000?cluster=true") is True
    assert cluster_flag("redis://h1:7000,h2:7001?cluster=false") is False
    assert cluster_flag("redis://h1:7000") is None  # asked: INFO cluster, at the first flush


def test_the_tracker_writes_to_a_cluster_through_several_seeds_one_of_them_dead(redis_cluster, cluster_client, tracked):
    seeds = redis_cluster.url + ",127.0.0.1:1"
    cache = tracked_app(redis_cluster.url, cluster=True, url=seeds)
    assert type(cache.recorder.client._client) is RedisCluster  # built by the flush, not the app
    assert len(list(cluster_client.scan_iter(match="cacheops:hit:*"))) == len(QUESTIONS)


def test_hits_follow_counts_semantic_hits_on_every_shard(redis_cluster, cluster_client):
    """Keyspace events are published by the node whose key changed: `hits --follow` subscribes on
    every primary (and --enable-events sets, then puts back, every primary's setting). The entries
    lie on all shards. A hit is what RedisVL's check() does to the entry it serves: EXPIRE it to the
    cache's TTL. On this cluster (no search coordinator) check() itself serves nothing: its index
    answers with documents it then cannot read, so the hits are that EXPIRE, sent as check() sends
    it, to entries on every shard. A store() during the follow is a write on whichever shard."""
    import json
    import threading

    from redisvl.extensions.cache.llm import SemanticCache
    from redisvl.utils.vectorize import CustomVectorizer

    from cacheops.demo import hashing_embeddings

    emb = hashing_embeddings()
    cache = SemanticCache(
        name="followed",
        redis_url=redis_cluster.url + "?cluster=true",
        vectorizer=CustomVectorizer(embed=emb.embed_query),
        distance_threshold=0.05,
        ttl=600,
    )
    prompts = [f"followed question {i}?" for i in range(12)]
    keys = [cache.store(prompt, f"followed answer {i}") for i, prompt in enumerate(prompts)]
    one_per_shard = {cluster_client.get_node_from_key(k).name: k for k in keys}
    assert len(one_per_shard) == 3  # the entries lie on every shard
    primaries = [cluster_client.get_redis_connection(n) for n in cluster_client.get_primaries()]
    flags = [next(iter(p.config_get("notify-keyspace-events").values())) for p in primaries]
    results: dict = {}
    worker = threading.Thread(
        target=lambda: results.update(
            out=Cli(redis_cluster.url)("hits", "--follow", "--for", "5s", "--enable-events", "--json")
        )
    )
    worker.start()
    deadline = time.time() + 4
    while time.time() < deadline and not all(
        "E" in str(next(iter(p.config_get("notify-keyspace-events").values()))) for p in primaries
    ):
        time.sleep(0.05)
    time.sleep(0.5)  # subscribed
    served = [*one_per_shard.values(), *list(one_per_shard.values())[:2]]  # five hits, on every shard
    for key in served:
        cluster_client.expire(key, 600)
    cache.store("A new followed question?", "A new answer.")  # a write: its EXPIRE is not a hit
    worker.join()
    out = results["out"]
    assert out.exit_code == 0, out.output
    summary = [json.loads(line) for line in out.output.splitlines() if line.startswith("{")][-1]
    assert summary["hits"] == len(served) and summary["writes"] == 1, summary
    assert {e["key"]: e["hits"] for e in summary["top_entries"]} == {k: served.count(k) for k in set(served)}
    assert [next(iter(p.config_get("notify-keyspace-events").values())) for p in primaries] == flags  # put back
