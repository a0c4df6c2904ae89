"""`cacheops replay`: a prompt log looked up as the app would, against entries the libraries wrote;
the hits, misses and wrong answers are the ones the cache contents imply, and nothing is touched."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration
from test_warm import HASHING, write_playbook

from cacheops.demo import demo_chat_model
from cacheops.exit_codes import ExitCode
from cacheops.ops.appmodel import prompt_string
from cacheops.pricing import shipped_prices

CACHED = {
    "What are your business hours?": "Nine to five.",
    "Can I get a refund?": "Within 30 days.",
    "Do you ship abroad?": "Yes, worldwide.",
}
LOG = [
    {"prompt": "What are your business hours?", "answer": "Nine to five."},  # a right hit
    {"prompt": "Can I get a refund?"},  # a hit, no label
    {"prompt": "Do you ship abroad?", "answer": "Only in the EU."},  # the cache answers otherwise
    {"prompt": "What is your phone number?"},  # not cached: a miss
]
USAGE = {"input_tokens": 12, "output_tokens": 30, "total_tokens": 42}


def fill_exact(redis_url: str) -> None:
    """The app's own writes: RedisCache.update with the model's llm_string and a message carrying usage."""
    from langchain_redis import RedisCache

    cache = RedisCache(redis_url=redis_url, prefix="app:exact")
    llm_string = demo_chat_model("gpt-4o-mini")._get_llm_string()
    for prompt, answer in CACHED.items():
        message = AIMessage(content=answer, usage_metadata=USAGE)
        cache.update(prompt_string(prompt, None, True), llm_string, [ChatGeneration(message=message)])


def write_log(tmp_path, lines=LOG) -> str:
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return str(path)


def replay(run, log: str, playbook: str, code: int = 0) -> dict:
    result = run("replay", log, "--playbook", playbook, "--json")
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def test_replay_reports_what_the_exact_cache_holds(run, client, redis_url, tmp_path):
    fill_exact(redis_url)
    playbook = write_playbook(tmp_path, [{"type": "langchain_exact", "prefix": "app:exact"}])
    keys = sorted(client.scan_iter(match="app:exact:*"))
    client.config_set("maxmemory-policy", "allkeys-lfu")
    freq = {k: client.object("freq", k) for k in keys}
    doc = replay(run, write_log(tmp_path), playbook)
    assert [x["result"] for x in doc["lookups"]] == ["hit", "hit", "wrong_answer", "miss"]
    (summary,) = doc["caches"]
    assert summary["hits"] == 3 and summary["hit_rate"] == 0.75 and summary["wrong_answers"] == 1
    assert summary["wrong_answer_rate"] == 0.5  # of the two labelled hits, one is wrong
    assert summary["tokens_saved"] == 3 * 42 and summary["hits_without_usage"] == 0
    assert (summary["input_tokens_saved"], summary["output_tokens_saved"]) == (3 * 12, 3 * 30)
    prices = shipped_prices()  # the same tokens at the shipped list price of the app's model
    assert summary["money_saved"] > 0 and summary["money_saved"] == pytest.approx(
        3 * prices.cost("gpt-4o-mini", 12, 30)
    )
    assert summary["hits_not_priced"] == 0
    assert (
        doc["money"]["saved"] == pytest.approx(summary["money_saved"]) and doc["money"]["prices_taken"] == prices.taken
    )
    assert summary["lookup_ms_p50"] > 0 and summary["lookup_ms_p95"] >= summary["lookup_ms_p50"]
    assert doc["lookups"][2]["got"] == "Yes, worldwide."
    assert {k: client.object("freq", k) for k in keys} == freq  # the lookups touched nothing
    assert all(client.ttl(k) == -1 for k in keys)
    # a text file of prompts: one per line, no labels
    text = tmp_path / "prompts.txt"
    text.write_text("Can I get a refund?\n\nWhat is your phone number?\n")
    assert [x["result"] for x in replay(run, str(text), playbook)["lookups"]] == ["hit", "miss"]


def test_replay_on_a_semantic_cache_per_threshold(run, client, tmp_path):
    prompts = [{"prompt": p, "answer": a} for p, a in CACHED.items()]
    cache = {"type": "langchain_semantic", "name": "semcache", "embedding": HASHING, "distance_threshold": 0.05}
    playbook = write_playbook(tmp_path, [cache], prompts=prompts)
    assert run("warm", playbook, "--json").exit_code == 0
    log = write_log(
        tmp_path,
        [
            {"prompt": "What are your business hours?", "answer": "Nine to five."},
            {"prompt": "your business hours: what are they?", "answer": "Nine to five."},  # the same words
            {"prompt": "Do you ship abroad?", "answer": "Only in the EU."},  # labelled otherwise: wrong
            {"prompt": "Tell me a joke about penguins"},  # nothing near: a miss at every threshold
        ],
    )
    doc = replay(run, log, playbook)
    assert [x["result"] for x in doc["lookups"]] == ["hit", "hit", "wrong_answer", "miss"]
    (summary,) = doc["caches"]
    assert summary["hits_without_usage"] == 3  # warm stores no usage metadata: no tokens claimed
    rows = {r["threshold"]: r for r in summary["per_threshold"]}
    assert rows[0.05]["hits"] == summary["hits"] == 3 and rows[0.05]["wrong_answers"] == 1
    hits = [r["hits"] for r in summary["per_threshold"]]
    assert hits == sorted(hits)  # a wider threshold never serves fewer prompts


def test_replay_bad_input(run, client, tmp_path):
    playbook = write_playbook(tmp_path, [{"type": "langchain_exact"}])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "ok"}\n{"prompt": 3}\n')
    result = run("replay", str(bad), "--playbook", playbook)
    assert result.exit_code == ExitCode.USAGE and "bad.jsonl:2" in result.output
    assert run("replay", str(tmp_path / "missing.txt"), "--playbook", playbook).exit_code == ExitCode.USAGE
