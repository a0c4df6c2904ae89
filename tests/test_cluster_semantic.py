"""Semantic caches on a Redis Cluster without a search coordinator (the 3+3 test cluster: redis-stack's
search module, each index on the node owning its name's slot, covering that node's documents only):
cacheops' own KNN work (audit, neighbours, evict --similar-to's search) reads every shard's vectors and
answers as one node holding the same entries does; migrate-embeddings re-embeds every shard's entries.
Entries are written by RedisVL SemanticCache, given a one-node URL and a cluster URL."""

from __future__ import annotations

import json

import numpy as np
import pytest
import redis
import writers
from conftest import Cli
from redis.cluster import RedisCluster

from cacheops import connect_url
from cacheops.errors import NotOnCluster
from cacheops.exit_codes import ExitCode
from cacheops.inspect.catalog import build_context
from cacheops.semantic.neighbours import iter_nearest, nearest_to, similar_to_text
from cacheops.server.indexes import parse_search
from cacheops.server.keyspace import read_records

# 12 groups of 3 prompts: in each, the first two are close with different answers (a collision), the
# third shares the first's answer and is farther; the groups are far apart.
ENTRIES = [
    item
    for g in range(12)
    for item in (
        {"prompt": f"topic{g} alpha{g} beta{g}", "response": f"answer {g}a"},
        {"prompt": f"topic{g} alpha{g} beta{g} please", "response": f"answer {g}b"},
        {"prompt": f"topic{g} alpha{g} gamma{g}", "response": f"answer {g}a"},
    )
]
AUDIT = ("audit", "--no-bare", "--threshold", "0.5", "--top", "100", "--json")


def index_nodes(cluster: RedisCluster, name: str) -> list[str]:
    return [
        n.name
        for n in cluster.get_primaries()
        if name.encode() in cluster.get_redis_connection(n).execute_command("FT._LIST")
    ]


def spread_over_every_shard(cluster: RedisCluster, count: int) -> None:
    per_node = [cluster.get_redis_connection(n).dbsize() for n in cluster.get_primaries()]
    assert all(n > 0 for n in per_node) and sum(per_node) == count, per_node


def pairs(cache: dict) -> dict:
    return {tuple(sorted((p["a"]["key"], p["b"]["key"]))): p["distance"] for p in cache["worst_pairs"]}


def audit_json(cli: Cli, *args: str) -> dict:
    result = cli(*AUDIT, *args)
    assert result.exit_code == ExitCode.COLLISIONS_FOUND, result.output
    (cache,) = json.loads(result.stdout)["caches"]
    return cache


def test_audit_on_a_cluster_finds_the_pairs_one_node_finds(run, redis_url, redis_cluster, cluster_client):
    writers.redisvl_semantic(redis_url, ENTRIES)
    writers.redisvl_semantic(redis_cluster.url + "?cluster=true", ENTRIES)
    spread_over_every_shard(cluster_client, len(ENTRIES))
    assert len(index_nodes(cluster_client, "llmcache")) == 1  # no coordinator: one shard's index
    on_cluster = Cli(redis_cluster.url)
    for method in ("auto", "knn"):
        single = audit_json(run, "--method", method)
        shards = audit_json(on_cluster, "--method", method)
        assert shards["entries"] == single["entries"] == len(ENTRIES)
        assert shards["colliding_pairs"] >= 24 and shards["colliding_pairs_exact"]
        for field in ("colliding_pairs", "colliding_entries", "scopes", "safe_threshold", "recommended_threshold"):
            assert shards[field] == single[field], (method, field)
        assert shards["closest_conflict"] == pytest.approx(single["closest_conflict"], abs=1e-5)
        assert shards["nn_distances"]["bins"] == single["nn_distances"]["bins"]
        assert pairs(shards).keys() == pairs(single).keys()
        assert list(pairs(shards).values()) == pytest.approx(list(pairs(single).values()), abs=1e-5)
    # --method knn: the index's KNN would answer from one shard, so the all-pairs engine ran instead
    assert shards["neighbour_search"]["method"] == "exact"
    assert any("no coordinator" in note and "every shard" in note for note in shards["notes"])
    with pytest.raises(NotOnCluster, match="covers one shard"):
        next(iter_nearest(connect_url(redis_cluster.url), build_context(connect_url(redis_cluster.url)), "llmcache"))


def test_the_library_is_told_when_the_index_shard_holds_no_entry(redis_cluster, cluster_client):
    """Which library writes a cache is told from a sample found through its index; on a cluster the
    index's shard may hold none of the cache's entries: the sample then comes from the scan."""
    qa = [(f"langchain question {i}", f"langchain answer {i}") for i in range(12)]
    writers.langchain_semantic(redis_cluster.url, qa, redis_client=RedisCluster.from_url(redis_cluster.url))
    index_node = cluster_client.get_redis_connection(cluster_client.get_node_from_key("llmcache"))
    for key in index_node.scan_iter(match="llmcache:*"):
        cluster_client.delete(key)  # test-only: leaves entries on the other shards only
    assert parse_search(index_node.execute_command("FT.SEARCH", "llmcache", "*")) == []
    left = len(list(cluster_client.scan_iter(match="llmcache:*")))
    result = Cli(redis_cluster.url)("audit", "--no-bare", "--json")
    (cache,) = json.loads(result.stdout)["caches"]
    assert cache["library"] == "langchain_semantic" and cache["wrapper_compresses"], cache
    assert cache["threshold_source"] == "langchain_semantic default" and cache["entries"] == left > 0


def test_neighbours_and_similar_to_on_a_cluster_match_one_node(client, redis_url, redis_cluster, cluster_client):
    """The TUI's neighbours (nearest_to) and evict --similar-to's search (similar_to_text) on every shard."""
    emb = writers.minilm_embeddings()
    qa = [{"prompt": f"What is the price of plan {i}?", "response": f"Plan {i} costs ${10 * i}."} for i in range(12)]
    qa += [{"prompt": q, "response": "Nine to five."} for q in ("What are your hours?", "When are you open?")]
    writers.redisvl_semantic(redis_url, qa, embeddings=emb)
    writers.redisvl_semantic(redis_cluster.url + "?cluster=true", qa, embeddings=emb)
    spread_over_every_shard(cluster_client, len(qa))
    one, shards = connect_url(redis_url), connect_url(redis_cluster.url)
    one_ctx, shards_ctx = build_context(one), build_context(shards)

    def found(client, ctx, text, threshold):
        hits = similar_to_text(client, ctx, text, threshold, embedding=writers.MINILM)
        return {n.entry.key: n.distance for n in hits}

    for text, threshold in (("What's the price of plan 7?", 0.3), ("what time do you open", 0.6)):
        want, got = found(one, one_ctx, text, threshold), found(shards, shards_ctx, text, threshold)
        assert want and got.keys() == want.keys()
        assert [got[k] for k in want] == pytest.approx(list(want.values()), abs=1e-5)
    big = found(shards, shards_ctx, "price of a plan", 2.0)
    assert len(big) == len(qa)  # every shard's entries, each once

    # the command itself: evict --similar-to deletes on the cluster what it deletes on one node
    hours = ("--similar-to", "what time do you open", "--threshold", "0.6", "--embedding", writers.MINILM)
    want = found(one, one_ctx, "what time do you open", 0.6)
    for url, keys_of in (
        (redis_url, lambda: set(one.scan_iter(match="llmcache:*"))),
        (redis_cluster.url, lambda: set(cluster_client.scan_iter(match="llmcache:*"))),
    ):
        before = keys_of()
        result = Cli(url)("evict", *hours, "--yes", "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["result"]["deleted"] == len(want)
        assert {k.decode() for k in before - keys_of()} == set(want)
        writers.redisvl_semantic(url + ("?cluster=true" if url != redis_url else ""), qa, embeddings=emb)

    keys = sorted(k.decode() for k in cluster_client.scan_iter(match="llmcache:*"))
    for key in keys[:5]:
        (entry,) = [e for e in _entries(one, one_ctx, key)]
        near_one = nearest_to(one, one_ctx, entry, k=4)
        near_shards = nearest_to(shards, shards_ctx, entry, k=4)
        assert [n.entry.key for n in near_shards.neighbours] == [n.entry.key for n in near_one.neighbours]
        assert [n.distance for n in near_shards.neighbours] == pytest.approx(
            [n.distance for n in near_one.neighbours], abs=1e-5
        )
        assert {n.entry.answer for n in near_shards.neighbours} and key not in {
            n.entry.key for n in near_shards.neighbours
        }


def _entries(client, ctx, key):
    from cacheops.inspect.catalog import decode_record

    for rec in read_records(client, [key.encode()]):
        yield decode_record(rec, ctx)


def test_migrate_embeddings_on_a_cluster_re_embeds_every_shard(run, redis_url, redis_cluster, cluster_client):
    entries = [{**e, "ttl": 3600} for e in ENTRIES]
    writers.redisvl_semantic(redis_url, entries)
    writers.redisvl_semantic(redis_cluster.url + "?cluster=true", entries)
    on_cluster = Cli(redis_cluster.url)
    args = ("migrate-embeddings", "--cache", "llmcache", "--to", writers.MINILM, "--batch", "16", "--yes", "--json")
    single = run(*args)
    assert single.exit_code == 0, single.output
    result = on_cluster(*args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["result"]["migrated"] == len(ENTRIES) and doc["result"]["created_index"]
    (note,) = doc["preview"]["notes"]
    assert "no coordinator" in note and "one shard's entries" in note
    target = doc["preview"]["target"]
    assert json.loads(single.stdout)["preview"]["notes"] == []

    # Every shard holds re-embedded entries; each is the one-node migration's copy, field for field,
    # and its vector is the model's embedding of its stored prompt.
    one = redis.Redis.from_url(redis_url)
    keys = sorted(cluster_client.scan_iter(match=f"{target}:*"))
    assert keys == sorted(one.scan_iter(match=f"{target}:*")) and len(keys) == len(ENTRIES)
    per_node = [
        len(list(cluster_client.get_redis_connection(n).scan_iter(match=f"{target}:*")))
        for n in cluster_client.get_primaries()
    ]
    assert all(n > 0 for n in per_node), per_node
    emb = writers.minilm_embeddings()
    for key in keys:
        mine, theirs = cluster_client.hgetall(key), one.hgetall(key)
        vector = np.frombuffer(mine.pop(b"prompt_vector"), dtype="<f4")
        assert vector.shape == (384,)
        assert np.allclose(vector, np.frombuffer(theirs.pop(b"prompt_vector"), dtype="<f4"), atol=1e-5)
        assert np.allclose(vector, emb.embed_query(mine[b"prompt"].decode()), atol=1e-4)
        source = cluster_client.hgetall(b"llmcache:" + key.split(b":", 1)[1])
        source.pop(b"prompt_vector")
        assert mine == source  # copied byte for byte from the cluster's own source entry
        clocks = (b"inserted_at", b"updated_at")  # the two writes of the entries differ only there
        assert {k: v for k, v in mine.items() if k not in clocks} == {
            k: v for k, v in theirs.items() if k not in clocks
        }
        assert 0 < cluster_client.pttl(key) <= 3600_000
    assert index_nodes(cluster_client, target) == [cluster_client.get_node_from_key(target).name]

    # The app (RedisVL SemanticCache on the cluster, the new model) starts on the target index: same schema.
    from redisvl.extensions.cache.llm import SemanticCache
    from redisvl.utils.vectorize import CustomVectorizer

    SemanticCache(
        name=target,
        redis_url=redis_cluster.url + "?cluster=true",
        vectorizer=CustomVectorizer(embed=emb.embed_query),
        overwrite=False,
    )

    again = json.loads(on_cluster(*args).stdout)["result"]
    assert (again["migrated"], again["skipped"]) == (0, len(ENTRIES))  # resumable: nothing left to do

    for extra in (("--to", writers.MINILM, "--in-place"), ("--flush",)):
        refused = on_cluster("migrate-embeddings", "--cache", "llmcache", "--yes", *extra)
        assert refused.exit_code == ExitCode.NOT_ON_CLUSTER, refused.output
        assert "does not run on a Redis Cluster yet" in refused.output and len(refused.output.splitlines()) == 1
    assert len(list(cluster_client.scan_iter(match="llmcache:*"))) == len(ENTRIES)  # untouched


def test_litellm_cluster_cache_entries_are_listed_as_on_one_node(
    run, redis_url, redis_cluster, cluster_client, venv_writers
):
    """LiteLLM's own Redis Cluster cache (Cache(type="redis", redis_startup_nodes=...)) as the writer."""
    from test_cluster import strip

    calls = [{"messages": [{"role": "user", "content": f"litellm question {i}"}], "answer": f"a{i}"} for i in range(12)]
    calls.append({"messages": [{"role": "user", "content": "tenant q"}], "answer": "t", "namespace": "tenantA"})
    settings = {"namespace": "litellm.caching", "ttl": 600}
    venv_writers["litellm"](redis_url, "exact", calls=calls, cache=settings)
    venv_writers["litellm"](redis_cluster.url, "exact", calls=calls, cache=settings, cluster=True)
    keys = sorted(cluster_client.scan_iter())
    assert len(keys) == len(calls) and len({cluster_client.get_node_from_key(k).name for k in keys}) > 1
    on_cluster = Cli(redis_cluster.url)
    listed = sorted(on_cluster.json_lines("scan"), key=lambda e: e["key"])
    assert sorted(e["key"].encode() for e in listed) == keys  # every entry, each once
    assert {e["layout"] for e in listed} == {"litellm_exact"}
    assert strip(listed) == strip(sorted(run.json_lines("scan"), key=lambda e: e["key"]))
    caches, one_node = on_cluster.json("caches"), run.json("caches")
    for doc in (caches, one_node):
        doc.pop("scan_path")
    assert strip(caches) == strip(one_node)


def test_the_tui_shows_neighbours_from_every_shard(client, redis_url, redis_cluster, cluster_client):
    import asyncio

    from test_tui import make_app, open_neighbours

    writers.redisvl_semantic(redis_url, ENTRIES)
    writers.redisvl_semantic(redis_cluster.url + "?cluster=true", ENTRIES)
    spread_over_every_shard(cluster_client, len(ENTRIES))

    async def scenario():
        app = make_app(redis_cluster.url)
        async with app.run_test(size=(160, 45)) as pilot:
            return await open_neighbours(app, pilot, "llmcache")

    hood = asyncio.run(scenario())
    one = connect_url(redis_url)
    one_ctx = build_context(one)
    (entry,) = _entries(one, one_ctx, hood.entry.key)
    want = nearest_to(one, one_ctx, entry, k=10).neighbours
    assert len(hood.neighbours) == 10  # the 10 nearest, whichever shard holds them: as on one node
    assert [n.distance for n in hood.neighbours] == pytest.approx([n.distance for n in want], abs=1e-5)
    # the same entries, up to the order of ties (many of these entries sit at exactly the same distance)
    last = want[-1].distance - 1e-5
    assert {n.entry.key for n in hood.neighbours if n.distance < last} == {
        n.entry.key for n in want if n.distance < last
    }
