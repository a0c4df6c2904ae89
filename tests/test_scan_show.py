"""scan and show over entries written by the real libraries."""

import json

import writers
from langchain_core.messages import HumanMessage, SystemMessage

from cacheops.layouts import langchain_format as lc

Q = "What is the capital of France?"
SYS = "You are a terse assistant."


def by_key(rows):
    return {r["key"]: r for r in rows}


def test_scan_lists_langchain_exact_entries_both_shapes(run, redis_url, client, venv_writers):
    # the legacy writer (a venv subprocess) first, so the TTL bound below measures the scan, not it
    writers.langchain_exact_old_shape(
        venv_writers["legacy_langchain"], redis_url, "Old question?", "Old answer", prefix="legacy"
    )
    writers.langchain_exact(
        redis_url,
        [(Q, "Paris."), ([SystemMessage(SYS), HumanMessage("Say hello in French")], "Bonjour")],
        model="gpt-4o-mini",
        ttl=600,
    )
    result = run("scan", "--json")
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert result.exit_code == 0
    assert len(rows) == 3
    new = next(r for r in rows if r["prompt_hash"] == lc.md5_hex(lc.chat_prompt(Q)))
    assert new["layout"] == "langchain_exact" and new["cache"] == "redis"
    assert new["answer"] == "Paris." and 590 < new["ttl_seconds"] <= 600
    old = next(r for r in rows if r["cache"] == "legacy")
    assert old["answer"] == "Old answer" and old["ttl_seconds"] is None


def test_scan_shows_exact_prompt_text_when_known(run, redis_url, tmp_path):
    writers.langchain_exact(redis_url, [(Q, "Paris.")], model="gpt-4o-mini")
    known = tmp_path / "prompts.txt"
    known.write_text(Q + "\n")
    rows = run.json_lines("scan", "--prompts", str(known))
    assert rows[0]["prompt"] == Q


def test_exact_entries_learn_model_and_text_from_semantic_cache(run, redis_url):
    writers.langchain_exact(redis_url, [(Q, "Paris.")], model="gpt-4o")
    writers.langchain_semantic(redis_url, [(Q, "Paris.")], model="gpt-4o")
    rows = run.json_lines("scan")
    assert {(r["layout"], r["prompt"], r["model"]) for r in rows} == {
        ("langchain_exact", Q, "gpt-4o"),
        ("langchain_semantic", Q, "gpt-4o"),
    }


def test_scan_lists_semantic_entries(run, redis_url):
    writers.langchain_semantic(
        redis_url,
        [(Q, "Paris."), ([SystemMessage(SYS), HumanMessage("Hi there")], "Hello")],
        model="claude-3-5-haiku",
        ttl=3600,
    )
    writers.redisvl_semantic(
        redis_url,
        [
            {
                "prompt": "Tagged question",
                "response": "Tagged answer",
                "metadata": {"model": "gpt-4o"},
                "filters": {"user_id": "alice", "cost": 3},
            },
        ],
        name="tagged_cache",
        filterable_fields=[{"name": "user_id", "type": "tag"}, {"name": "cost", "type": "numeric"}],
    )
    rows = by_key(run.json_lines("scan"))
    assert len(rows) == 3
    sem = [r for r in rows.values() if r["layout"] == "langchain_semantic"]
    assert {r["prompt"] for r in sem} == {Q, "Hi there"}
    assert all(r["model"] == "claude-3-5-haiku" and 3590 < r["ttl_seconds"] <= 3600 for r in sem)
    assert {r["answer"] for r in sem} == {"Paris.", "Hello"}
    assert all(r["vector"]["dims"] == 64 and r["vector"]["dtype"] == "FLOAT32" for r in sem)
    tagged = next(r for r in rows.values() if r["layout"] == "redisvl_semantic")
    assert tagged["prompt"] == "Tagged question" and tagged["answer"] == "Tagged answer"
    assert tagged["tags"] == {"user_id": "alice", "cost": "3"} and tagged["model"] == "gpt-4o"
    assert tagged["ttl_seconds"] is None and tagged["inserted_at"] > 0


def test_scan_filters(run, redis_url):
    writers.langchain_exact(redis_url, [(Q, "Paris.")], model="gpt-4o-mini")
    writers.langchain_semantic(redis_url, [(Q, "Paris."), ("Other?", "Yes")], model="gpt-4o")
    assert {r["cache"] for r in run.json_lines("scan", "--cache", "llmcache")} == {"llmcache"}
    assert all(r["model"] == "gpt-4o" for r in run.json_lines("scan", "--model", "gpt-4o"))
    assert len(run.json_lines("scan", "--limit", "1")) == 1
    assert len(run.json_lines("scan", "--plain")) == 3


def test_show_prompt_finds_every_copy(run, redis_url):
    writers.langchain_exact(redis_url, [(Q, "Paris (mini).")], model="gpt-4o-mini")
    writers.langchain_exact(redis_url, [(Q, "Paris (4o).")], model="gpt-4o")
    writers.langchain_semantic(redis_url, [(Q, "Paris (semantic).")], model="gpt-4o")
    writers.langchain_exact(redis_url, [([SystemMessage(SYS), HumanMessage(Q)], "Paris (sys).")], model="gpt-4o")
    writers.langchain_exact_llm(redis_url, [(Q, "Paris (llm).")])
    writers.redisvl_semantic(
        redis_url,
        [{"prompt": Q, "response": "Paris (rvl).", "filters": {"user_id": "bob"}}],
        name="rvl_cache",
        filterable_fields=[{"name": "user_id", "type": "tag"}],
    )
    found = run.json("show", "--prompt", Q)
    assert sorted(e["answer"] for e in found) == sorted(
        ["Paris (mini).", "Paris (4o).", "Paris (semantic).", "Paris (llm).", "Paris (rvl)."]
    )
    assert all(e["prompt"] == Q for e in found)
    with_sys = run.json("show", "--prompt", Q, "--system", SYS)
    assert [e["answer"] for e in with_sys] == ["Paris (sys)."]
    assert with_sys[0]["prompt_hash"] == lc.md5_hex(lc.chat_prompt(Q, SYS))


def test_show_prompt_with_system_finds_semantic_entry(run, redis_url):
    writers.langchain_semantic(redis_url, [([SystemMessage(SYS), HumanMessage(Q)], "Paris.")], model="gpt-4o")
    found = run.json("show", "--prompt", Q, "--system", SYS)
    assert len(found) == 1
    assert found[0]["messages"] == [{"role": "system", "content": SYS}, {"role": "human", "content": Q}]
    assert run("show", "--prompt", Q).exit_code == 7


def test_show_key_full_entry(run, redis_url):
    writers.langchain_semantic(redis_url, [(Q, "Paris.")], model="gpt-4o")
    key = f"llmcache:{lc.sha256_hex(lc.chat_prompt(Q))}"
    doc = run.json("show", key)
    assert doc["key"] == key and doc["answer"] == "Paris." and doc["model"] == "gpt-4o"
    assert doc["model_params"]["temperature"] == 0.0
    assert doc["generations"][0]["type"] == "ChatGeneration"
    assert "Paris." in run("show", key, "--table").output


def test_show_missing_key_and_bad_usage(run):
    result = run("show", "nope:nothing")
    assert result.exit_code == 7 and "no key" in result.output
    assert run("show").exit_code == 2


def test_embeddings_cache_listed(run, redis_url):
    writers.redisvl_embeddings(redis_url, [("hello world", "all-MiniLM-L6-v2")], ttl=3600)
    rows = run.json_lines("scan")
    assert len(rows) == 1 and rows[0]["layout"] == "redisvl_embeddings"
    assert rows[0]["prompt"] == "hello world" and rows[0]["model"] == "all-MiniLM-L6-v2"
    assert rows[0]["vector"]["dims"] == 64


def test_scan_model_filter_is_a_whole_name(run, redis_url):
    writers.langchain_semantic(redis_url, [(Q, "Paris (4o).")], model="gpt-4o")
    writers.langchain_semantic(redis_url, [("Other?", "Yes (mini).")], model="gpt-4o-mini")
    assert [r["answer"] for r in run.json_lines("scan", "--model", "gpt-4o")] == ["Paris (4o)."]
    assert [r["answer"] for r in run.json_lines("scan", "--model", "gpt-4o-mini")] == ["Yes (mini)."]
