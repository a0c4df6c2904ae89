"""The server-side script path and the plain pipeline path list the same entries, byte for byte."""

import json

import writers
from langchain_core.messages import HumanMessage, SystemMessage

Q = "What is the capital of France?"
TIME_DEPENDENT = ("ttl_seconds", "expires_at")


def _normalised(output: str) -> list[dict]:
    rows = []
    for line in output.splitlines():
        row = json.loads(line)
        for name in TIME_DEPENDENT:
            if name in row:
                row[name] = row[name] is not None  # the TTL ticks between the two runs
        rows.append(row)
    return sorted(rows, key=lambda r: r["key"])


def _fill(url: str, client, venv_writers) -> None:
    writers.langchain_exact(
        url, [(Q, "Paris."), ([SystemMessage("Be terse."), HumanMessage("Hi")], "Hello")], model="gpt-4o-mini", ttl=600
    )
    writers.langchain_exact_old_shape(
        venv_writers["legacy_langchain"], url, "Old question?", "Old answer", prefix="legacy"
    )
    writers.langchain_exact_llm(url, [("Raw LLM prompt", "Raw answer")])
    writers.langchain_semantic(url, [(Q, "Paris."), ("Ça va? 日本", "Oui")], model="gpt-4o", ttl=3600)
    writers.redisvl_semantic(
        url,
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
    writers.redisvl_embeddings(url, [("hello", "demo-model")])
    client.set("redis:session:42", "not a cache entry")
    client.hset("llmcache:" + "0" * 64, mapping={"foo": "bar"})
    client.set(b"bin:\xff\xfe", b"\x00\x01")


def test_script_and_plain_paths_give_identical_json(run, redis_url, client, venv_writers):
    _fill(redis_url, client, venv_writers)
    for extra in ((), ("--unknown",), ("--model", "gpt-4o"), ("--cache", "redis")):
        script = run("scan", "--json", *extra)
        plain = run("scan", "--json", "--plain", *extra)
        assert script.exit_code == 0 and plain.exit_code == 0
        assert _normalised(script.output) == _normalised(plain.output), extra
    rows = _normalised(run("scan", "--json", "--unknown").output)
    assert {r["layout"] for r in rows} >= {
        "langchain_exact",
        "langchain_semantic",
        "redisvl_semantic",
        "redisvl_embeddings",
        "unknown",
    }


def test_big_values_same_on_both_paths(run, redis_url, client):
    """A value larger than the preview limit is cut the same way on both paths."""
    writers.langchain_exact(redis_url, [(Q, "x" * 200_000)], model="gpt-4o-mini")
    writers.langchain_semantic(redis_url, [("Long one?", "y" * 200_000)], model="gpt-4o")
    script = _normalised(run("scan", "--json").output)
    plain = _normalised(run("scan", "--json", "--plain").output)
    assert script == plain and len(script) == 2
    assert all(r["truncated"] for r in script)


def test_no_values_read_with_limit_zero(client):
    # limit 0: key, type, TTL and memory only, on both paths (the quick catalog's scan).
    from cacheops.server.keyspace import ScanOptions, iter_batches

    client.set("k:string", "x" * 100, px=60_000)
    client.hset("k:hash", mapping={"a": "1"})
    seen = {}
    for server_side in (True, False):
        opts = ScanOptions(match="k:*", limit=0, server_side=server_side)
        records = sorted((r for b in iter_batches(client, opts) for r in b), key=lambda r: r.key)
        seen[server_side] = [(r.key, r.type, r.pttl > 0, r.memory > 0, r.value, r.size) for r in records]
    assert (
        seen[True]
        == seen[False]
        == [
            (b"k:hash", "hash", False, True, None, None),
            (b"k:string", "string", True, True, None, None),
        ]
    )
