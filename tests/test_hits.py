"""The hit tracker end to end: a real LangChain app (a fake chat model that reports usage) behind
tracked langchain-redis caches, on the real server; what stats / scan / show then report."""

from __future__ import annotations

import time

import pytest
from langchain_core.globals import set_llm_cache
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult

import cacheops_track
from cacheops.demo import hashing_embeddings
from cacheops.pricing import shipped_prices
from cacheops.server.embedded import EmbeddedRedis
from cacheops_track import keys as K
from cacheops_track.recorder import Event, Recorder

SYSTEM = "You answer in one sentence."
USAGE = {"input_tokens": 120, "output_tokens": 30, "total_tokens": 150}


class UsageChatModel(BaseChatModel):
    """A fake chat model that answers from its prompt and reports usage like a provider's would."""

    model_name: str = "gpt-4o-mini"
    calls: int = 0

    @property
    def _llm_type(self) -> str:
        return "usage-fake-chat"

    @property
    def _identifying_params(self) -> dict:
        return {"model_name": self.model_name}

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        self.calls += 1
        message = AIMessage(
            content=f"answer to {messages[-1].content}",
            usage_metadata=dict(USAGE),
            response_metadata={"model_name": self.model_name},
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


def ask(chat, text: str, system: str | None = SYSTEM):
    messages = ([SystemMessage(system)] if system else []) + [HumanMessage(text)]
    return chat.invoke(messages).content


@pytest.fixture
def tracked(client, redis_url):
    """Fresh recorders per test (the module shares one per stats Redis per process)."""
    cacheops_track._recorders.clear()
    yield
    set_llm_cache(None)
    for recorder in list(cacheops_track._recorders.values()):
        recorder.close()
    cacheops_track._recorders.clear()


def exact_app(redis_url, **track_kwargs):
    from langchain_redis import RedisCache

    cache = cacheops_track.track(RedisCache(redis_url=redis_url, ttl=3600), **track_kwargs)
    set_llm_cache(cache)
    chat = UsageChatModel()
    # miss, hit, hit; miss, hit; a paraphrase is a miss for an exact cache
    for text in ["What is the capital of France?"] * 3 + ["How tall is Everest?"] * 2 + ["France's capital city?"]:
        ask(chat, text)
    assert chat.calls == 3
    cache.recorder.flush()
    return cache


def test_exact_cache_stats_scan_and_show_report_what_the_app_did(run, tracked, redis_url):
    cache = exact_app(redis_url)
    assert cache.recorder.dropped == 0 and cache.recorder.failed_flushes == 0

    doc = run.json("stats", "--since", "1h")["hits"]
    (redis_cache,) = [c for c in doc["caches"] if c["cache"] == "redis"]
    window = redis_cache["window"]
    assert (window["hits"], window["misses"]) == (3, 3)
    assert window["hit_rate"] == pytest.approx(0.5)
    assert (window["input_tokens_saved"], window["output_tokens_saved"]) == (3 * 120, 3 * 30)
    assert window["estimated_hits"] == 0
    money = shipped_prices().cost("gpt-4o-mini", 3 * 120, 3 * 30)
    assert window["money_saved"] == pytest.approx(money, rel=1e-6)
    assert redis_cache["per_model"]["gpt-4o-mini"]["hits"] == 3
    assert redis_cache["now"]["hits"] == 3
    assert redis_cache["total"]["hits"] == 3 and redis_cache["total"]["misses"] == 3
    assert redis_cache["lookup_latency"]["count"] == 6
    assert sum(c["money_saved"] for c in redis_cache["per_day"].values()) == pytest.approx(money, rel=1e-6)
    assert [e["hits"] for e in doc["top_entries"]] == [2, 1]
    assert doc["top_entries"][0]["prompt"] == "What is the capital of France?"
    assert doc["tracked_entries"] == 3

    rows = {r["prompt"]: r for r in run.json_lines("scan", "--cache", "redis")}
    assert set(rows) == {"What is the capital of France?", "How tall is Everest?", "France's capital city?"}
    assert {p: r["hits"]["hits"] for p, r in rows.items()} == {
        "What is the capital of France?": 2,
        "How tall is Everest?": 1,
        "France's capital city?": 0,
    }
    assert all(r["model"] == "gpt-4o-mini" for r in rows.values())
    assert rows["France's capital city?"]["hits"]["last_hit"] is None

    key = rows["What is the capital of France?"]["key"]
    shown = run.json("show", key)
    assert shown["prompt"] == "What is the capital of France?" and shown["model"] == "gpt-4o-mini"
    assert shown["hits"]["hits"] == 2 and shown["hits"]["system"] == SYSTEM
    assert shown["hits"]["input_tokens"] == 120 and shown["hits"]["output_tokens"] == 30
    table = run("show", key, "--table")
    assert "hits (tracked)" in table.output and "What is the capital of France?" in table.output
    stats_table = run("stats", "--since", "1h", "--table")
    assert stats_table.exit_code == 0 and "Tracked hits" in stats_table.output, stats_table.output


def test_record_prompts_hash_keeps_no_text(run, tracked, redis_url):
    exact_app(redis_url, record_prompts="hash")
    rows = run.json_lines("scan", "--cache", "redis")
    assert all(r["prompt"] is None and len(r["hits"]["prompt_sha256"]) == 64 for r in rows)


def test_semantic_cache_credits_the_matched_entry_with_its_distance(run, tracked, client, redis_url):
    from langchain_redis import RedisSemanticCache

    cache = cacheops_track.track(
        RedisSemanticCache(embeddings=hashing_embeddings(), redis_url=redis_url, distance_threshold=0.01, ttl=600)
    )
    set_llm_cache(cache)
    chat = UsageChatModel(model_name="claude-3-5-haiku")
    # a paraphrase with the same words hits; another question misses
    for text in ["What is the capital of France", "what is the capital of France?", "Tell me about whales"]:
        ask(chat, text, system=None)
    assert chat.calls == 2
    cache.recorder.flush()
    name = cache.source.cache_name
    doc = run.json("stats", "--since", "1h", "--cache", name)["hits"]
    (sem,) = doc["caches"]
    assert (sem["window"]["hits"], sem["window"]["misses"]) == (1, 2)
    assert sem["kind"] == "semantic"
    assert sem["window"]["money_saved"] == pytest.approx(shipped_prices().cost("claude-3-5-haiku", 120, 30))
    rows = {r["prompt"]: r for r in run.json_lines("scan", "--cache", name)}
    hit = rows["What is the capital of France"]["hits"]
    assert hit["hits"] == 1 and hit["last_distance"] < 0.01
    assert rows["Tell me about whales"]["hits"]["hits"] == 0
    # the record expires with its entry (RedisVL's check() refreshed the entry's TTL: so was the record's)
    key = rows["What is the capital of France"]["key"]
    assert abs(client.pttl(K.entry_record_key(key)) - client.pttl(key)) < 5000


def test_async_lookups_and_updates_are_recorded(tracked, client, redis_url):
    import asyncio

    from langchain_redis import RedisSemanticCache

    cache = cacheops_track.track(
        RedisSemanticCache(embeddings=hashing_embeddings(), redis_url=redis_url, distance_threshold=0.01)
    )
    set_llm_cache(cache)
    chat = UsageChatModel()

    async def app():
        for text in ["async question one", "async question one"]:
            await chat.ainvoke([HumanMessage(text)])

    asyncio.run(app())
    cache.recorder.flush()
    totals = client.hgetall(K.bucket_key(K.TOTALS_PREFIX, cache.source.cache_name))
    assert totals[b"gpt-4o-mini|hits"] == b"1" and totals[b"gpt-4o-mini|misses"] == b"1"
    (record,) = [k for k in client.scan_iter(match=K.ENTRY_PREFIX + b"*")]
    assert client.hget(record, K.HITS) == b"1" and client.hget(record, K.PROMPT) == b"async question one"


def test_redisvl_semantic_cache_used_directly(tracked, client, redis_url):
    from redisvl.extensions.cache.llm import SemanticCache
    from redisvl.utils.vectorize import CustomVectorizer

    emb = hashing_embeddings()
    cache = cacheops_track.track(
        SemanticCache(
            name="vlcache",
            redis_url=redis_url,
            vectorizer=CustomVectorizer(embed=emb.embed_query),
            distance_threshold=0.05,
        )
    )
    key = cache.store("How do I reset my password?", "Use the link.", metadata={"model": "gpt-4o"})
    assert cache.check("how do I reset my password")
    assert not cache.check("completely different words here")
    cache.recorder.flush()
    record = client.hgetall(K.entry_record_key(key))
    assert record[b"hits"] == b"1" and record[b"model"] == b"gpt-4o"
    assert record[b"prompt"] == b"How do I reset my password?"
    totals = client.hgetall(K.bucket_key(K.TOTALS_PREFIX, "vlcache"))
    assert totals[b"gpt-4o|hits"] == b"1" and totals[b"gpt-4o|estimated"] == b"1"
    assert totals[b"unknown|misses"] == b"1"


def test_an_unreachable_stats_redis_never_raises_or_stalls(tracked, redis_url):
    from langchain_redis import RedisCache

    cache = cacheops_track.track(RedisCache(redis_url=redis_url), url="redis://127.0.0.1:1", flush_interval=0.05)
    set_llm_cache(cache)
    chat = UsageChatModel()
    slowest = 0.0
    for i in range(40):
        start = time.perf_counter()
        ask(chat, f"question {i % 5}")
        slowest = max(slowest, time.perf_counter() - start)
    assert slowest < 0.25
    start = time.perf_counter()
    cache.recorder.flush()
    assert time.perf_counter() - start < 2 * cacheops_track.DEFAULT_TIMEOUT + 0.5
    assert cache.recorder.failed_flushes >= 1 and cache.recorder.dropped > 0


def test_a_stats_redis_that_goes_away_mid_run(tracked, redis_url):
    from langchain_redis import RedisCache

    stats_server = EmbeddedRedis().start()
    try:
        cache = cacheops_track.track(RedisCache(redis_url=redis_url), url=stats_server.url, flush_interval=0.05)
        set_llm_cache(cache)
        chat = UsageChatModel()
        for i in range(10):
            ask(chat, f"before {i % 3}")
        cache.recorder.flush()
        assert cache.recorder.flushed_events > 0
    finally:
        stats_server.stop()
    slowest = 0.0
    for i in range(40):
        start = time.perf_counter()
        ask(chat, f"after {i % 3}")
        slowest = max(slowest, time.perf_counter() - start)
        time.sleep(0.005)
    assert slowest < 0.25
    cache.recorder.flush()
    assert cache.recorder.failed_flushes >= 1


def test_one_flush_groups_hits_but_keeps_a_rewrite_between_them(tracked, client, redis_url):
    """The flush resolves hits of one entry once and counts them; hits before a rewrite of the
    entry in the same flush belong to its earlier life (its record restarts at the write)."""
    from langchain_core.outputs import ChatGeneration
    from langchain_redis import RedisCache

    cache = cacheops_track.track(RedisCache(redis_url=redis_url, ttl=600), flush_interval=3600)
    llm_string = UsageChatModel()._get_llm_string()
    prompt = '[{"lc": 1, "type": "constructor", "id": ["x", "HumanMessage"], "kwargs": {"content": "hi"}}]'

    def answer(tokens: int) -> list:
        usage = {"input_tokens": tokens, "output_tokens": 1, "total_tokens": tokens + 1}
        return [ChatGeneration(message=AIMessage(content="hello", usage_metadata=usage))]

    cache.update(prompt, llm_string, answer(100))
    for _ in range(3):
        assert cache.lookup(prompt, llm_string) is not None
    cache.update(prompt, llm_string, answer(7))  # rewritten: same text, other usage
    for _ in range(2):
        assert cache.lookup(prompt, llm_string) is not None
    assert cache.lookup("an absent prompt", llm_string) is None
    assert cache.recorder.flush() == 8 and cache.recorder.dropped == 0
    (record,) = list(client.scan_iter(match=K.ENTRY_PREFIX + b"*"))
    assert client.hget(record, K.HITS) == b"2" and client.hget(record, K.INPUT_TOKENS) == b"7"
    totals = client.hgetall(K.bucket_key(K.TOTALS_PREFIX, cache.source.cache_name))
    assert totals[b"gpt-4o-mini|hits"] == b"5" and totals[b"gpt-4o-mini|misses"] == b"1"
    assert totals[b"gpt-4o-mini|input_saved"] == str(3 * 100 + 2 * 7).encode()
    assert totals[K.LATENCY_FIELD.encode() + b"count"] == b"6"


def test_a_cluster_stats_client_gets_the_same_records(cluster_client):
    """A RedisCluster has no one connection pool: the flush's commands go through its pipeline."""
    cluster_client.set("redis:aaa", "x", ex=600)
    recorder = Recorder(cluster_client, flush_interval=3600)
    now = time.time()
    recorder.record(Event("write", "redis", now, key="redis:aaa", model="m", prompt="p"))
    for _ in range(3):
        recorder.record(Event("hit", "redis", now, key="redis:aaa", model="m", input_tokens=5, latency_us=300))
    recorder.record(Event("miss", "other", now, model="m"))
    assert recorder.flush() == 5 and recorder.failed_flushes == 0
    record = cluster_client.hgetall(K.entry_record_key("redis:aaa"))
    assert record[b"hits"] == b"3" and record[b"prompt"] == b"p"
    assert 0 < cluster_client.pttl(K.entry_record_key("redis:aaa")) <= 600_000
    totals = cluster_client.hgetall(K.bucket_key(K.TOTALS_PREFIX, "redis"))
    assert totals[b"m|hits"] == b"3" and totals[b"m|input_saved"] == b"15"
    assert cluster_client.hgetall(K.bucket_key(K.TOTALS_PREFIX, "other"))[b"m|misses"] == b"1"


def test_a_full_queue_drops_and_counts_instead_of_growing(tracked, client):
    recorder = Recorder(client, max_pending=10, flush_interval=3600)
    for _ in range(25):
        recorder.record(Event("miss", "c", time.time(), model="m"))
    assert len(recorder.queue) == 10 and recorder.dropped == 15
    assert recorder.flush() == 10


def test_buckets_expire_minutes_after_a_day_hours_after_ninety_days(tracked, client):
    """A long run simulated with explicit timestamps: memory stays bounded by the retention."""
    recorder = Recorder(client, flush_interval=3600)
    now = time.time()
    for age_days in (0, 2, 30, 91, 200):
        for _ in range(3):
            recorder.record(Event("hit", "longrun", now - age_days * 86400 - 30, model="gpt-4o", input_tokens=10))
    recorder.flush()
    minute = client.hgetall(K.bucket_key(K.MINUTE_PREFIX, "longrun"))
    hour = client.hgetall(K.bucket_key(K.HOUR_PREFIX, "longrun"))
    assert {int(f.split(b"|")[0]) // 86400 for f in minute} == {int(now - 30) // 86400}
    assert len(minute) == 2  # hits and input_saved of the one minute younger than a day
    ages = sorted(round((now - int(f.split(b"|")[0])) / 86400) for f in hour if f.endswith(b"|hits"))
    assert ages == [0, 2, 30]
    assert all(
        client.execute_command("HPTTL", K.bucket_key(K.HOUR_PREFIX, "longrun"), "FIELDS", 1, f)[0] > 0 for f in hour
    )


def test_evict_takes_an_entrys_hit_record_along_and_restore_puts_it_back(run, tracked, client, redis_url):
    exact_app(redis_url)
    rows = {r["prompt"]: r for r in run.json_lines("scan", "--cache", "redis")}
    key = rows["What is the capital of France?"]["key"]
    record = K.entry_record_key(key)
    before = client.hgetall(record)
    assert before[b"hits"] == b"2"
    doc = run.json("evict", "--key", key, "--yes")
    assert doc["result"]["companions_deleted"] == 1
    assert not client.exists(key) and not client.exists(record)
    assert client.exists(K.entry_record_key(rows["How tall is Everest?"]["key"]))  # only that entry's
    result = run("restore", doc["result"]["backup"])
    assert result.exit_code == 0, result.output
    assert client.exists(key) and client.hgetall(record) == before
    assert client.pttl(record) > 0
    assert run.json("show", key)["hits"]["hits"] == 2


def test_a_record_whose_entry_is_gone_goes_at_its_next_flush(tracked, client, redis_url):
    cache = exact_app(redis_url)
    entry = next(k for k in client.scan_iter(match="redis:*"))
    assert client.exists(K.entry_record_key(entry))
    client.delete(entry)  # the app's own clear(), or Redis evicting under maxmemory
    cache.recorder.record(Event("hit", "redis", time.time(), key=entry.decode(), model="gpt-4o-mini"))
    cache.recorder.flush()
    assert not client.exists(K.entry_record_key(entry))


def test_metrics_parse_with_prometheus_clients_parser(run, tracked, redis_url):
    from prometheus_client.parser import text_string_to_metric_families

    exact_app(redis_url)
    result = run("metrics")
    assert result.exit_code == 0, result.output
    families = {f.name: f for f in text_string_to_metric_families(result.output)}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    base = (("cache", "redis"), ("model", "gpt-4o-mini"))
    assert samples[("cacheops_lookups_total", tuple(sorted(base + (("result", "hit"),))))] == 3
    assert samples[("cacheops_lookups_total", tuple(sorted(base + (("result", "miss"),))))] == 3
    assert samples[("cacheops_tokens_saved_total", tuple(sorted(base + (("direction", "input"),))))] == 360
    money = samples[("cacheops_money_saved_total", tuple(sorted(base + (("currency", "USD"),))))]
    assert money == pytest.approx(shipped_prices().cost("gpt-4o-mini", 360, 90))
    assert samples[("cacheops_lookup_latency_seconds_count", (("cache", "redis"),))] == 6
    assert samples[("cacheops_entries", (("cache", "redis"), ("kind", "exact")))] == 3
    assert all("key" not in s.labels for f in families.values() for s in f.samples)  # never a label per entry


def test_metrics_serve_answers_a_scrape(run, tracked, redis_url):
    import threading
    import urllib.request

    from cacheops.server.embedded import free_port

    exact_app(redis_url)
    port = free_port()
    worker = threading.Thread(target=run, args=("metrics", "--serve", f"127.0.0.1:{port}", "--for", "3s"))
    worker.start()
    body = ""
    for _ in range(40):
        try:
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
            break
        except OSError:
            time.sleep(0.05)
    worker.join()
    assert 'cacheops_lookups_total{cache="redis",model="gpt-4o-mini",result="hit"} 3.0' in body


def test_evict_cold_selects_only_tracked_entries_not_hit_for_the_duration(run, tracked, client, redis_url):
    import writers

    exact_app(redis_url)
    writers.langchain_exact(redis_url, [("An untracked question?", "Untracked.")])  # the bare cache
    rows = {r["prompt"]: r for r in run.json_lines("scan", "--cache", "redis")}
    old = int((time.time() - 10 * 86400) * 1000)
    stale_hit = K.entry_record_key(rows["How tall is Everest?"]["key"])
    never_hit = K.entry_record_key(rows["France's capital city?"]["key"])
    client.hset(stale_hit, K.LAST_HIT, old)  # hit once, ten days ago
    client.hset(never_hit, K.WRITTEN, old)  # written ten days ago, never hit
    preview = run.json("evict", "--cold", "7d", "--cache", "redis", "--dry-run")["preview"]
    assert preview["matched"] == 2 and preview["untracked_not_considered"] == 1
    assert {r["key"] for r in preview["sample"]} == {
        rows["How tall is Everest?"]["key"],
        rows["France's capital city?"]["key"],
    }
    assert "untracked" in run("evict", "--cold", "7d", "--cache", "redis", "--dry-run").output
    doc = run.json("evict", "--cold", "7d", "--cache", "redis", "--yes")
    assert doc["result"]["deleted"] == 2 and not client.exists(stale_hit) and not client.exists(never_hit)
    assert run.json("stats", "--cold-after", "7d")["hits"]["cold"]["entries"] == 0


def events_flags(client) -> str:
    value = next(iter(client.config_get("notify-keyspace-events").values()))
    return value.decode() if isinstance(value, bytes) else value


def test_hits_follow_counts_semantic_hits_of_an_untracked_app(run, client, redis_url):
    import json
    import threading

    from redisvl.extensions.cache.llm import SemanticCache
    from redisvl.utils.vectorize import CustomVectorizer

    emb = hashing_embeddings()
    cache = SemanticCache(
        name="followed",
        redis_url=redis_url,
        vectorizer=CustomVectorizer(embed=emb.embed_query),
        distance_threshold=0.05,
        ttl=600,
    )
    refund = cache.store("Can I get a refund?", "Yes, within 30 days.")
    hours = cache.store("What are your opening hours?", "Nine to five.")
    client.config_set("notify-keyspace-events", "")
    refused = run("hits", "--follow", "--for", "1s")
    assert refused.exit_code == 20 and "notify-keyspace-events" in refused.output
    assert events_flags(client) == ""  # not changed unasked

    results = {}
    worker = threading.Thread(
        target=lambda: results.update(out=run("hits", "--follow", "--for", "4s", "--enable-events", "--json"))
    )
    worker.start()
    deadline = time.time() + 3
    while time.time() < deadline and not events_flags(client):
        time.sleep(0.05)
    time.sleep(0.5)  # subscribed
    assert cache.check("can I get a refund")
    assert cache.check("Can I get a refund?")
    assert cache.check("what are your opening hours")
    assert not cache.check("something else entirely")
    cache.store("A new question?", "A new answer.")  # a write: its EXPIRE is not a hit
    worker.join()
    lines = [json.loads(line) for line in results["out"].output.splitlines() if line.startswith("{")]
    summary = lines[-1]
    assert summary["event"] == "summary" and summary["hits"] == 3 and summary["writes"] == 1
    assert {e["key"]: e["hits"] for e in summary["top_entries"]} == {refund: 2, hours: 1}
    assert events_flags(client) == ""  # put back
    (change,) = run.json_lines("history", "--action", "config")  # the change is on record, with what it was
    assert change["selectors"]["notify-keyspace-events"] and change["extra"] == {"was": ""}


def test_litellm_callback_records_hits_per_cache_key(run, client, redis_url, venv_writers):
    user = [{"role": "user", "content": "What is LiteLLM?"}]
    other = [{"role": "user", "content": "Who wrote it?"}]
    third = [{"role": "user", "content": "Is it open source?"}]
    calls = [
        {"messages": user, "answer": "A proxy."},
        {"messages": user, "answer": "A proxy."},
        {"messages": user, "answer": "A proxy."},
        {"messages": other, "answer": "BerriAI.", "namespace": "team1"},
        {"messages": other, "answer": "BerriAI.", "namespace": "team1"},
        {"messages": third, "answer": "Yes.", "metadata": {"redis_namespace": "team2"}},
        {"messages": third, "answer": "Yes.", "metadata": {"redis_namespace": "team2"}},
    ]
    # late_cache_key: LiteLLM runs a sync hit's callback on its logging threads before it sets the
    # hit's cache_key in the response; a loaded machine lets the callback run first (this test
    # once failed so). Forced here on every hit: the counts must not depend on that schedule.
    done = venv_writers["litellm"](redis_url, "track", calls=calls, late_cache_key=True)
    assert done == {"events": 7, "dropped": 0}
    hits = {c["cache"]: c for c in run.json("stats", "--since", "1h")["hits"]["caches"]}
    assert set(hits) == {"litellm", "team1", "team2"}
    # a miss counts under the cache (namespace) its hits count under
    assert (hits["litellm"]["window"]["hits"], hits["litellm"]["window"]["misses"]) == (2, 1)
    assert (hits["team1"]["window"]["hits"], hits["team1"]["window"]["misses"]) == (1, 1)
    assert (hits["team2"]["window"]["hits"], hits["team2"]["window"]["misses"]) == (1, 1)
    assert hits["litellm"]["per_model"]["gpt-4o-mini"]["hits"] == 2
    assert hits["litellm"]["window"]["input_tokens_saved"] > 0
    rows = {r["cache"]: r for r in run.json_lines("scan") if r["layout"] == "litellm_exact"}
    assert rows["litellm"]["hits"]["hits"] == 2
    assert rows["team1"]["hits"]["hits"] == 1 and rows["team2"]["hits"]["hits"] == 1
