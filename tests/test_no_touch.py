"""Inspection must not disturb the cache: no LRU/LFU bump (CLIENT NO-TOUCH), no TTL refresh."""

import time

import writers

from cacheops.layouts import langchain_format as lc

Q = "What is the capital of France?"


def fill(redis_url):
    writers.langchain_exact(redis_url, [(Q, "Paris."), ("Other?", "Yes.")], ttl=3600)
    writers.langchain_semantic(redis_url, [(Q, "Paris.")], ttl=3600)
    writers.redisvl_semantic(redis_url, [{"prompt": "rvl q", "response": "rvl a", "ttl": 600}], name="rvl")
    writers.redisvl_embeddings(redis_url, [("emb text", "m")], ttl=900)


def inspect_everything(run):
    assert run("scan", "--json").exit_code == 0
    assert run("scan", "--json", "--plain").exit_code == 0
    assert run("caches", "--json").exit_code == 0
    assert run("stats", "--json").exit_code == 0
    assert run("doctor", "--json").exit_code in (0, 8)
    assert run("show", "--prompt", Q, "--json").exit_code == 0
    assert run("show", f"llmcache:{lc.sha256_hex(lc.chat_prompt(Q))}", "--json").exit_code == 0


def entry_keys(client):
    return [k for k in client.scan_iter(count=1000)]


def test_idle_time_and_ttl_unchanged(run, client, redis_url):
    client.config_set("maxmemory-policy", "allkeys-lru")
    fill(redis_url)
    time.sleep(2.2)
    keys = entry_keys(client)
    before = {k: (client.object("idletime", k), client.pttl(k)) for k in keys}
    assert all(idle >= 2 for idle, _ in before.values())
    inspect_everything(run)
    for k in keys:
        idle, pttl = client.object("idletime", k), client.pttl(k)
        assert idle >= before[k][0], (k, "idle time was reset: the read touched the key")
        assert pttl <= before[k][1], (k, "TTL was refreshed")


def test_lfu_frequency_unchanged(run, client, redis_url):
    client.config_set("maxmemory-policy", "allkeys-lfu")
    fill(redis_url)
    keys = entry_keys(client)
    before = {k: client.object("freq", k) for k in keys}
    for _ in range(3):
        inspect_everything(run)
    after = {k: client.object("freq", k) for k in keys}
    assert after == before
