"""`cacheops warm --verify`: every playbook prompt looked up as the app does, judged right / wrong / miss.

The lookups are the libraries' own (RedisCache.lookup, RedisSemanticCache.lookup, SemanticCache.check)
on the real server; nothing is written, no TTL slides and no LRU idle time resets.
"""

from __future__ import annotations

import json
import time

from test_warm import HASHING, write_playbook

from cacheops.demo import demo_chat_model
from cacheops.exit_codes import ExitCode
from cacheops.layouts import langchain_format as lc

# bag-of-words embeddings: a paraphrase with the same words (any order, any case) is at distance 0
PROMPTS = [
    {
        "prompt": "What are your business hours?",
        "answer": "Nine to five, Monday to Friday.",
        "paraphrases": ["your business hours: what are they?"],
    },
    {
        "prompt": "Can I get a refund?",
        "answer": "Within 30 days, from Billing.",
        "paraphrases": ["a refund, can I get"],
    },
    {"prompt": "Say hello", "answer": "Bonjour!", "system": "You answer in French."},
]
CACHES = [
    {"type": "langchain_exact", "prefix": "app:exact", "ttl": 600},
    {"type": "langchain_semantic", "name": "semcache", "embedding": HASHING, "distance_threshold": 0.05, "ttl": 600},
    {"type": "redisvl_semantic", "name": "rvl", "embedding": HASHING, "filters": {"tier": "pro"}, "ttl": 600},
]
RVL_FIELDS = [{"name": "tier", "type": "tag"}]


def playbook(tmp_path) -> str:
    caches = [dict(c) for c in CACHES]
    caches[2]["filterable_fields"] = RVL_FIELDS
    return write_playbook(tmp_path, caches, prompts=PROMPTS)


def verify(run, path: str, code: int = 0) -> dict:
    result = run("warm", path, "--verify", "--json")
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def exact_key(prompt: str, system: str | None = None) -> str:
    return (
        f"app:exact:{lc.md5_hex(lc.chat_prompt(prompt, system))}:"
        f"{lc.md5_hex(demo_chat_model('gpt-4o-mini')._get_llm_string())}"
    )


def test_after_warm_every_lookup_is_a_right_hit(run, client, tmp_path):
    path = playbook(tmp_path)
    before = verify(run, path, code=ExitCode.VERIFY_FAILED)  # cold: every lookup misses
    assert before["totals"]["miss"] == len(before["lookups"]) and not before["ok"]
    assert client.execute_command("FT._LIST") == []  # verifying a missing semantic cache does not create it
    assert run("warm", path, "--json").exit_code == 0
    doc = verify(run, path)
    # exact: 3 prompts; semantic: 3 prompts + 2 paraphrases, twice
    assert doc["ok"] and doc["totals"] == {"hit": 13, "wrong_answer": 0, "miss": 0, "failed": 0}
    assert {c["cache"]: c["hit"] for c in doc["caches"]} == {"app:exact": 3, "semcache": 5, "rvl": 5}
    assert sum(x["paraphrase"] for x in doc["lookups"]) == 4


def test_an_evicted_entry_is_a_miss_and_exits_15(run, client, tmp_path):
    path = playbook(tmp_path)
    assert run("warm", path, "--json").exit_code == 0
    assert run("evict", "--key", exact_key("Can I get a refund?"), "--yes").exit_code == 0
    doc = verify(run, path, code=ExitCode.VERIFY_FAILED)
    assert doc["totals"] == {"hit": 12, "wrong_answer": 0, "miss": 1, "failed": 0}
    (missed,) = [x for x in doc["lookups"] if x["result"] == "miss"]
    assert (missed["cache"], missed["prompt"]) == ("app:exact", "Can I get a refund?")
    table = run("warm", path, "--verify", "--table")
    assert table.exit_code == ExitCode.VERIFY_FAILED and "12/13 right hits" in table.stdout


def test_a_poisoned_entry_is_a_wrong_answer(run, redis_url, client, tmp_path):
    from langchain_redis import RedisCache
    from redisvl.extensions.cache.llm import SemanticCache
    from redisvl.utils.vectorize import CustomVectorizer

    from cacheops.demo import hashing_embeddings
    from cacheops.ops.appmodel import generations, prompt_string

    path = playbook(tmp_path)
    assert run("warm", path, "--json").exit_code == 0
    # the exact entry overwritten with another answer, through the library
    RedisCache(redis_url=redis_url, prefix="app:exact").update(
        prompt_string("Say hello", "You answer in French.", True),
        demo_chat_model("gpt-4o-mini")._get_llm_string(),
        generations("Hallo!", True),
    )
    # a RedisVL entry whose prompt is the refund question's paraphrase, answered otherwise: the
    # paraphrase's nearest entry now serves another answer
    rvl = SemanticCache(
        name="rvl",
        redis_url=redis_url,
        filterable_fields=RVL_FIELDS,
        vectorizer=CustomVectorizer(embed=hashing_embeddings(64).embed_query),
    )
    rvl.store("a refund, can I get", "Within 30 days, from Billing.", filters={"tier": "pro"})  # same answer: fine
    rvl.store("a refund can I get", "No refunds, ever.", filters={"tier": "free"})  # another tier: not seen
    doc = verify(run, path, code=ExitCode.VERIFY_FAILED)
    wrong = [x for x in doc["lookups"] if x["result"] == "wrong_answer"]
    assert [(x["cache"], x["prompt"], x["got"]) for x in wrong] == [("app:exact", "Say hello", "Hallo!")]
    assert doc["totals"]["hit"] == 12
    # a same-tier neighbour with another answer, stored after: the paraphrase may land on it
    client.delete(*[k for k in client.scan_iter(match="rvl:*")])
    rvl.store("a refund, can I get", "No refunds, ever.", filters={"tier": "pro"})
    doc = verify(run, path, code=ExitCode.VERIFY_FAILED)
    wrong = {(x["cache"], x["asked"], x["got"]) for x in doc["lookups"] if x["result"] == "wrong_answer"}
    assert ("rvl", "a refund, can I get", "No refunds, ever.") in wrong


def test_verify_refreshes_no_ttl_and_touches_nothing(run, client, tmp_path):
    client.config_set("maxmemory-policy", "allkeys-lru")
    path = playbook(tmp_path)
    assert run("warm", path, "--json").exit_code == 0
    time.sleep(2.2)
    keys = [k for k in client.scan_iter(count=1000) if not k.startswith(b"cacheops:")]
    before = {k: (client.object("idletime", k), client.pttl(k)) for k in keys}
    assert all(0 < pttl < 598_000 for _, pttl in before.values())
    assert verify(run, path)["ok"]
    for k in keys:
        idle, pttl = client.object("idletime", k), client.pttl(k)
        assert idle >= before[k][0], (k, "idle time was reset: the lookup touched the key")
        assert pttl <= before[k][1], (k, "TTL was refreshed")


def test_verify_excludes_writing_flags(run, tmp_path):
    result = run("warm", playbook(tmp_path), "--verify", "--refresh")
    assert result.exit_code == ExitCode.USAGE and "--verify writes nothing" in result.output
