"""evict, restore and tag on a Redis Cluster (3 primaries + 3 replicas, started by the suite), entries
written by the real libraries with their cluster clients; a primary killed in the middle of an evict."""

from __future__ import annotations

import json
from pathlib import Path

import writers
from conftest import Cli
from langchain_redis import RedisCache
from redis.cluster import RedisCluster
from redis.crc import key_slot
from test_cluster import EXACT_QA, SEMANTIC, Q, fill

from cacheops import faults
from cacheops.demo import demo_chat_model
from cacheops.ops import evict as evict_lib
from cacheops.ownkeys import cluster_tag_key, legacy_tag_key_on_cluster, tag_key
from cacheops.server.embedded_cluster import EmbeddedCluster
from cacheops_track import track

OPLOG = b"cacheops:oplog"
FAQ = [{"prompt": Q, "response": "Paris (faq)."}] + [
    {"prompt": f"faq {i}", "response": f"faq answer {i}"} for i in range(20)
]


def snapshot(cluster: RedisCluster) -> dict[bytes, tuple[bytes, int]]:
    """Every key of every primary: its DUMP and PTTL (not the operations log)."""
    return {key: (cluster.dump(key), cluster.pttl(key)) for key in cluster.scan_iter(count=1000) if key != OPLOG}


def content(cluster: RedisCluster, key: bytes):
    """A key's value as the app reads it (a RESTOREd hash may DUMP its fields in another order)."""
    return cluster.hgetall(key) if cluster.type(key) == b"hash" else cluster.dump(key)


def assert_unchanged(before: dict, after: dict, keys) -> None:
    for key in keys:
        assert key in after, f"{key!r} was lost"
        assert after[key][0] == before[key][0], f"{key!r} changed"
        assert (after[key][1] < 0) == (before[key][1] < 0) and before[key][1] - after[key][1] < 60_000, key


def content_of_dump(cluster: RedisCluster, dump: bytes):
    """What a DUMP payload holds, read back through a scratch key."""
    scratch = b"cacheops-test:scratch"
    cluster.restore(scratch, 0, dump, replace=True)
    try:
        return content(cluster, scratch)
    finally:
        cluster.delete(scratch)


def assert_restored(cluster: RedisCluster, before: dict, keys) -> None:
    """Every key of `before` is there again; `keys` with the content and expiry time they had."""
    back = snapshot(cluster)
    assert set(back) == set(before)
    for key in keys:
        dump, pttl = before[key]
        assert content(cluster, key) == content_of_dump(cluster, dump), key
        assert (pttl < 0 and back[key][1] == pttl) or 0 <= pttl - back[key][1] < 60_000, key


def shards_of(cluster: RedisCluster, keys) -> set[str]:
    return {cluster.get_node_from_key(key).name for key in keys}


def evict(cli: Cli, *args: str):
    result = cli("evict", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_cluster_tag_names_hash_to_their_entrys_slot():
    for entry in (b"llmcache:3f2a", b"redis:{tenant-a}:9c1e:77aa", b"odd}key", b"{}x}", b"a{b", b"{x}x", b"{x}"):
        name = cluster_tag_key(entry)
        assert key_slot(name) == key_slot(entry) and name.startswith(b"cacheops:tags:{"), entry
    assert cluster_tag_key(b"llmcache:3f2a") == b"cacheops:tags:{llmcache:3f2a}"
    assert cluster_tag_key(b"redis:{t}:1") == b"cacheops:tags:{t}redis:{t}:1"
    names = [cluster_tag_key(e) for e in (b"x", b"{x}", b"{x}x", b"x}", b"}x")]
    assert len(set(names)) == len(names)  # never two entries' tags under one name
    # the one-server name of `{x}` is the cluster name of `x`: it is not read as `{x}`'s old tags
    assert legacy_tag_key_on_cluster(b"{x}") is None and legacy_tag_key_on_cluster(b"x") == tag_key(b"x")


def test_evict_prompt_removes_every_copy_across_shards_and_restore_puts_them_back(
    run, redis_url, client, redis_cluster, cluster_client
):
    for url, cluster in ((redis_url, False), (redis_cluster.url, True)):
        fill(url, cluster=cluster)
        writers.redisvl_semantic(url + ("?cluster=true" if cluster else ""), FAQ, name="faq")
        for model in ("gpt-4.1", "claude-3-5-haiku"):  # more copies of the prompt, in other slots
            kwargs = {"redis_client": RedisCluster.from_url(url)} if cluster else {}
            writers.langchain_exact(url, [(Q, f"Paris ({model}).")], model=model, **kwargs)
    on_cluster = Cli(redis_cluster.url)
    before = snapshot(cluster_client)

    doc = evict(on_cluster, "--prompt", Q, "--yes")
    one_node = evict(run, "--prompt", Q, "--yes")
    for key in ("matched", "deleted", "per_cache", "gone_before_delete", "no_longer_matching", "kept_busy"):
        assert doc["result"][key] == one_node["result"][key], key
    assert doc["result"]["per_cache"] == {"redis": 3, "app:exact": 1, "faq": 1}
    after = snapshot(cluster_client)
    gone = set(before) - set(after)
    assert len(gone) == 5 and len(shards_of(cluster_client, gone)) > 1  # copies on several shards
    assert set(after) <= set(before)
    assert_unchanged(before, after, after)  # nothing else touched
    restored = on_cluster.json("restore", doc["result"]["backup"])
    assert restored["restored"] == 5 and restored["kept_newer"] == 0
    assert_restored(cluster_client, before, gone)
    # the app's own lookup finds the restored entry again (RedisCache with a cluster client)
    chat = demo_chat_model("gpt-4o-mini")
    with writers.llm_cache(RedisCache(redis_client=RedisCluster.from_url(redis_cluster.url))):
        assert chat.invoke(Q).content == "Paris." and chat.i == 0


def test_evict_a_cache_spread_over_every_slot_range_and_restore_it_exactly(redis_cluster, cluster_client):
    writers.redisvl_semantic(redis_cluster.url + "?cluster=true", SEMANTIC, ttl=86400)
    writers.langchain_exact(redis_cluster.url, EXACT_QA, redis_client=RedisCluster.from_url(redis_cluster.url))
    on_cluster = Cli(redis_cluster.url)
    before = snapshot(cluster_client)
    semantic = {k for k in before if k.startswith(b"llmcache:")}
    assert len(shards_of(cluster_client, semantic)) == 3

    preview = evict(on_cluster, "--cache", "llmcache", "--dry-run")
    assert preview["preview"]["matched"] == len(SEMANTIC) and snapshot(cluster_client).keys() == before.keys()
    doc = evict(on_cluster, "--cache", "llmcache", "--yes")
    assert doc["result"]["deleted"] == len(SEMANTIC)
    after = snapshot(cluster_client)
    assert set(before) - set(after) == semantic
    assert_unchanged(before, after, after)

    restored = on_cluster.json("restore", doc["result"]["backup"])
    assert restored["restored"] == len(SEMANTIC)
    assert_restored(cluster_client, before, semantic)
    again = on_cluster.json("restore", doc["result"]["backup"])
    assert again["identical"] == len(SEMANTIC) and again["restored"] == 0


def test_tag_and_evict_by_tag_with_hit_records_and_tags_an_older_cacheops_left(redis_cluster, cluster_client):
    """Tags land in their entry's slot; tags under the one-server name (an earlier cacheops on this
    cluster) are still read, moved by the next tag, and evicted with their entry; the hit tracker's
    records (cacheops_track with a cluster client, other slots) go and come back with their entries."""
    url = redis_cluster.url
    stats = RedisCluster.from_url(url)
    qa = [(f"tagged question {i}", f"tagged answer {i}") for i in range(12)]
    tracked = track(RedisCache(redis_client=RedisCluster.from_url(url)), client=stats)
    chat = demo_chat_model("gpt-4o-mini")
    with writers.llm_cache(tracked):
        for prompt, answer in qa:
            chat.answer(prompt, answer)
        assert chat.invoke(qa[0][0]).content == qa[0][1]  # a hit
    tracked.recorder.close()  # flushed: each entry's hit record is written, and nothing writes after
    assert tracked.recorder.failed_flushes == 0
    # an entry whose key has its own hash tag
    writers.langchain_exact(
        url,
        [("hash-tagged question", "hash-tagged answer")],
        prefix="{tenant}:cache",
        redis_client=RedisCluster.from_url(url),
    )
    on_cluster = Cli(url)
    entries = {e["answer"]: e["key"].encode() for e in on_cluster.json_lines("scan") if e["cache"] != "cacheops"}
    by_shard: dict[str, list[bytes]] = {}
    for _, answer in qa:
        by_shard.setdefault(cluster_client.get_node_from_key(entries[answer]).name, []).append(entries[answer])
    assert len(by_shard) == 3 and all(len(found) >= 2 for found in by_shard.values())
    keys = [key for found in by_shard.values() for key in found[:2]] + [entries["hash-tagged answer"]]
    for key in keys[:5] + keys[6:]:
        assert on_cluster.json("tag", key.decode(), "batch=bad")["tags"] == {"batch": "bad"}
        assert cluster_client.exists(cluster_tag_key(key)) and not cluster_client.exists(tag_key(key))
        assert cluster_client.keyslot(cluster_tag_key(key)) == cluster_client.keyslot(key)
    older = keys[5]  # tagged by an earlier cacheops: the one-server name, in another slot
    cluster_client.hset(tag_key(older), mapping={"batch": "bad", "owner": "ops"})
    assert cluster_client.keyslot(tag_key(older)) != cluster_client.keyslot(older)
    assert on_cluster.json("tag", older.decode())["tags"] == {"batch": "bad", "owner": "ops"}
    hits = [k for k in cluster_client.scan_iter(match="cacheops:hit:*")]
    assert len(hits) == len(qa)
    before = snapshot(cluster_client)

    doc = evict(on_cluster, "--tag", "batch=bad", "--yes")
    assert doc["result"]["deleted"] == 7
    # each entry's tag hash (the older one under its old name) and the 6 tracked ones' hit records
    assert doc["result"]["companions_deleted"] == 7 + 6
    after = snapshot(cluster_client)
    expected_gone = {*keys, *(cluster_tag_key(k) for k in keys[:5] + keys[6:]), tag_key(older)}
    expected_gone |= {b"cacheops:hit:" + k for k in keys[:6]}
    assert set(before) - set(after) == expected_gone
    assert_unchanged(before, after, after)

    restored = on_cluster.json("restore", doc["result"]["backup"])
    assert restored["restored"] == 7 and restored["companions_restored"] == 7 + 6
    assert_restored(cluster_client, before, expected_gone)
    assert on_cluster.json("tag", older.decode())["tags"] == {"batch": "bad", "owner": "ops"}
    # tagging it again moves the older hash into the entry's slot
    assert on_cluster.json("tag", older.decode(), "owner=sre")["tags"] == {"batch": "bad", "owner": "sre"}
    assert not cluster_client.exists(tag_key(older)) and cluster_client.exists(cluster_tag_key(older))


def test_a_primary_killed_mid_evict_loses_nothing_and_a_rerun_finishes(tmp_path, monkeypatch):
    """Its own cluster (the session's stays whole). The kill lands after a batch was backed up and
    before its deletes (CACHEOPS_FAULT's evict.backed_up point, armed in-process): the evict stops
    with one line naming the node and the backup; every entry deleted is in a backup; once the
    replica took over, the same evict finishes, and restoring both backups brings back every entry."""
    wrong = [(f"poisoned question {i}", f"WRONG answer {i}") for i in range(240)]
    good = [(f"good question {i}", f"good answer {i}") for i in range(60)]
    with EmbeddedCluster(primaries=3, replicas=1) as cluster:
        cluster_client = RedisCluster.from_url(cluster.url)
        writers.langchain_exact(cluster.url, wrong + good, redis_client=RedisCluster.from_url(cluster.url))
        for node in cluster_client.get_primaries():
            cluster_client.get_redis_connection(node).execute_command("WAIT", 1, 5000)
        before = snapshot(cluster_client)
        poisoned = {k for k in before if b"WRONG" in cluster_client.dump(k)}
        assert len(poisoned) == len(wrong)
        victim = cluster.primary_nodes[1]
        monkeypatch.setattr(evict_lib, "BATCH", 60)  # four batches: the kill lands after the first
        monkeypatch.setitem(faults.ARMED, "evict.backed_up", faults.on_nth(2, lambda: cluster.kill(victim)))
        on_cluster = Cli(cluster.url)

        first = on_cluster("evict", "--response-contains", "WRONG", "--yes", "--backup", str(tmp_path / "1.jsonl"))
        assert first.exit_code == 3, first.output
        error = first.stderr.strip().splitlines()
        assert len(error) == 1 and f"lost primary 127.0.0.1:{victim.port} in the middle of the evict" in error[0]
        assert str(tmp_path / "1.jsonl") in error[0] and "run the same evict again" in error[0]

        cluster.wait_for_failover(victim)
        monkeypatch.delitem(faults.ARMED, "evict.backed_up")
        survivor = RedisCluster.from_url(cluster.url)
        mid = snapshot(survivor)
        assert set(mid) - set(before) == set()  # nothing new, and
        for key in set(before) - set(mid):  # everything deleted so far is in the backup
            assert key in poisoned and key.decode() in (tmp_path / "1.jsonl").read_text()

        second = on_cluster("evict", "--response-contains", "WRONG", "--yes", "--backup", str(tmp_path / "2.jsonl"))
        assert second.exit_code == 0, second.output
        after = snapshot(survivor)
        assert set(before) - set(after) == poisoned  # every poisoned entry gone, nothing else
        assert_unchanged(before, after, after)

        for backup in ("1.jsonl", "2.jsonl"):
            assert on_cluster("restore", str(tmp_path / backup)).exit_code == 0
        assert_restored(survivor, before, poisoned)
        survivor.close()
        cluster_client.close()


def test_the_tui_evicts_on_a_cluster(redis_cluster, cluster_client):
    """The TUI's evict goes through the same library calls: the chosen entry goes, the rest stay."""
    from test_tui import QA, _evict_scenario

    writers.langchain_exact(
        redis_cluster.url, QA, prefix="exact", redis_client=RedisCluster.from_url(redis_cluster.url)
    )
    before = snapshot(cluster_client)
    app, chosen, rows, _note = _evict_scenario(redis_cluster.url, "y")
    after = snapshot(cluster_client)
    assert set(before) - set(after) == {chosen.encode()} and chosen not in rows
    assert app.last_result.deleted == 1 and f'"key":"{chosen}"' in Path(app.last_result.backup).read_text()
    assert_unchanged(before, after, after)


def test_a_write_between_backup_and_delete_is_caught_on_a_cluster(redis_cluster, cluster_client, tmp_path, monkeypatch):
    """No WATCH on a cluster: compare-and-unlink per slot deletes only the version backed up; an
    entry the app rewrote in between is re-read (in its slot) and re-checked."""
    from cacheops import connect_url
    from cacheops.inspect.catalog import build_context
    from cacheops.ops.backup import restore
    from cacheops.ops.selection import Selection

    url = redis_cluster.url
    wrong = [("Q1?", "never possible"), ("Q2?", "never possible"), ("Q3?", "never possible")]
    writers.langchain_exact(url, wrong, model="gpt-4o", redis_client=RedisCluster.from_url(url))
    client = connect_url(url)
    plan = evict_lib.plan(client, Selection(response_contains=["never possible"]), build_context(client))
    original = evict_lib._Deleter._backup
    calls = []

    def backup_then_app_writes(self, judged, now_ms):
        chosen = original(self, judged, now_ms)
        if not calls:
            app = {"redis_client": RedisCluster.from_url(url)}
            writers.langchain_exact_rewrite(url, "Q1?", "fixed", model="gpt-4o", **app)
            writers.langchain_exact_rewrite(url, "Q2?", "never possible, again", model="gpt-4o", **app)
        calls.append(len(chosen))
        return chosen

    monkeypatch.setattr(evict_lib._Deleter, "_backup", backup_then_app_writes)
    result = evict_lib.execute(client, plan, backup_path=tmp_path / "b.jsonl")
    assert result.deleted == 2 and result.no_longer_matching == 1 and calls == [3, 1]
    left = [e for e in Cli(url).json_lines("scan") if e["cache"] == "redis"]
    assert [e["answer"] for e in left] == ["fixed"]
    lines = [json.loads(line) for line in (tmp_path / "b.jsonl").read_text().splitlines()][1:]
    assert sorted(d["reason"] for d in lines if "not_deleted" in d) == ["changed", "changed"]
    cluster_client.delete(left[0]["key"])
    assert restore(client, tmp_path / "b.jsonl").restored == 2
    answers = sorted(e["answer"] for e in Cli(url).json_lines("scan") if e["cache"] == "redis")
    assert answers == ["never possible", "never possible, again"]


def test_permission_probes_leave_no_cluster_connection_in_a_transaction(redis_cluster, cluster_client):
    """The probes pair WATCH/UNWATCH and MULTI/DISCARD on one connection: a cluster pipeline sent them
    to different nodes and left a pooled connection in MULTI, queueing the next command sent on it."""
    from cacheops import connect_url
    from cacheops.server import permissions

    client = connect_url(redis_cluster.url)
    for _ in range(3):
        permissions.require(client, "evict", ["scripts", "transactions", "unlink", "oplog"], under=b"redis:")
        for node in client.get_primaries():
            assert client.get_redis_connection(node).execute_command("ECHO", "x") == b"x", node.name
        assert client.script_load("return 1") == "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"
