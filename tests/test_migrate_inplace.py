"""migrate-embeddings --in-place and --flush: the app keeps its cache name.

The app on the old model (the demo's hashing embedding, 64 dims) fills langchain-redis'
RedisSemanticCache under its default name; after --in-place the app on the new model (the real
all-MiniLM-L6-v2, 384 dims) with the same default name starts without a schema error and hits every
prompt and a paraphrase. A kill at each phase (CACHEOPS_FAULT, a real process exit) and a re-run
finishes the migration; the backup brings the old cache back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import writers
from test_migrate import MODEL_CALLED, QA, app_answers
from writers import MINILM, llm_cache

from cacheops.demo import demo_chat_model, hashing_embeddings
from cacheops.faults import POINTS as fault_points
from cacheops.ops.migrate_inplace import PHASES
from cacheops.server.indexes import parse_ft_info

ROOT = Path(__file__).parent.parent
TEMP = "all-minilm-l6-v2-llmcache"
PARAPHRASES = [("what is the capital of France", "Paris is the capital of France.")]


def fill(url: str) -> None:
    writers.langchain_semantic(url, QA, ttl=3600)  # RedisSemanticCache(name="llmcache"), the default


def in_place(run, *flags: str, code: int = 0) -> dict:
    result = run("migrate-embeddings", "--cache", "llmcache", "--to", MINILM, "--in-place", "--json", *flags)
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def killed_at(url: str, fault: str, *flags: str) -> subprocess.CompletedProcess:
    """The same command in its own process, which the fault point kills."""
    env = {**os.environ, "CACHEOPS_FAULT": fault, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    argv = [sys.executable, "-m", "cacheops", "--url", url, "migrate-embeddings", "--cache", "llmcache"]
    return subprocess.run(argv + list(flags), env=env, capture_output=True, text=True, timeout=300)


def old_app_answers(url: str, prompts: list[str]) -> list[str]:
    """The app before the deploy: the old embedding, the default name. Starting, it creates its index
    over the restored entries, which the search module indexes in the background: wait for that."""
    import time

    import redis
    from langchain_redis import RedisSemanticCache

    cache = RedisSemanticCache(embeddings=hashing_embeddings(), redis_url=url, distance_threshold=0.01)
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 30
    while (
        parse_ft_info(client.execute_command("FT.INFO", "llmcache")).percent_indexed < 1 and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    client.close()
    with llm_cache(cache):
        chat = demo_chat_model("gpt-4o-mini")
        return [chat.answer(p, MODEL_CALLED).content for p in prompts]


def assert_migrated(client, url: str) -> None:
    info = parse_ft_info(client.execute_command("FT.INFO", "llmcache"))
    assert info.vector.dims == 384 and info.num_docs == len(QA)
    assert {n.decode() for n in client.execute_command("FT._LIST")} == {"llmcache"}
    assert not list(client.scan_iter(match=TEMP + "*")) and not client.exists("cacheops:migrate:llmcache")
    questions = [q for q, _ in QA] + [p for p, _ in PARAPHRASES]
    # the new app: RedisSemanticCache(name="llmcache" by default) with the new model
    assert app_answers(url, "llmcache", questions, threshold=0.1) == [a for _, a in QA + PARAPHRASES]


def test_in_place_the_app_keeps_its_name_and_the_backup_is_the_rollback(run, client, redis_url):
    fill(redis_url)
    ttls = {k: client.pttl(k) for k in client.scan_iter(match="llmcache:*")}
    preview = in_place(run, "--dry-run")["preview"]
    assert preview["resume_phase"] == "build" and not preview["resuming"] and preview["entries"] == len(QA)
    assert client.execute_command("FT._LIST") == [b"llmcache"]  # a dry run writes nothing
    doc = in_place(run, "--yes", "--batch", "3")
    result = doc["result"]
    assert result["phases_run"] == list(PHASES["in-place"])
    assert (result["migrated"], result["backed_up"], result["moved"], result["indexed"]) == (7, 7, 7, 7)
    assert_migrated(client, redis_url)
    for key, before in ttls.items():  # the same keys, their remaining TTL kept
        assert 0 < before - client.pttl(key) < 120_000
    (event,) = [e for e in run.json_lines("history", "--action", "migrate-embeddings") if e["selectors"].get("mode")]
    assert event["extra"]["mode"] == "in-place" and event["backup"] == result["backups"][0]
    # rollback: flush the new cache (backed up too), restore the old entries, start the old app
    flushed = run("migrate-embeddings", "--cache", "llmcache", "--flush", "--yes", "--json")
    assert flushed.exit_code == 0, flushed.output
    assert client.execute_command("FT._LIST") == [] and not list(client.scan_iter(match="llmcache:*"))
    assert run("restore", result["backups"][0]).exit_code == 0
    assert old_app_answers(redis_url, [q for q, _ in QA]) == [a for _, a in QA]


def test_a_kill_at_every_phase_and_a_rerun_finishes(run, client, redis_url):
    """One migration killed again and again: mid-build, then at the start of every phase; each
    re-run resumes where the last one died (the preview says where), the last one finishes."""
    fill(redis_url)
    faults = ["migrate.inplace.build.partial:1"] + [f"migrate.inplace.{p}:1" for p in PHASES["in-place"][1:]]
    for fault in faults:
        died = killed_at(redis_url, fault, "--to", MINILM, "--in-place", "--yes", "--batch", "3")
        assert died.returncode == -signal.SIGKILL, (fault, died.stderr)
        phase = fault.split(":")[0].split(".")[2]
        preview = in_place(run, "--dry-run")["preview"]
        assert preview["resuming"] and preview["resume_phase"] == phase, fault
        if phase == "build":  # killed after its first batch: some entries are in the temporary cache
            assert 0 < preview["temporary_entries"] < len(QA)
    shown = run("migrate-embeddings", "--cache", "llmcache", "--to", MINILM, "--in-place", "--dry-run")
    assert "at phase drop_temp_index" in shown.output and "resume here" in shown.output
    result = in_place(run, "--yes")["result"]
    assert result["phases_run"] == ["drop_temp_index"]
    assert_migrated(client, redis_url)
    # every old entry is in the backup the killed runs wrote: restoring it brings them all back
    saved = [json.loads(x) for path in result["backups"] for x in Path(path).read_text().splitlines()[1:]]
    assert sorted(d["key"] for d in saved if "key" in d) == sorted(
        k.decode() for k in client.scan_iter(match="llmcache:*")
    )


def test_flush_backs_up_deletes_and_drops_the_index(run, client, redis_url):
    fill(redis_url)
    client.set("llmcache:not-an-entry", "x")  # never deleted: not an entry of the cache
    preview = run("migrate-embeddings", "--cache", "llmcache", "--flush", "--dry-run", "--json")
    assert preview.exit_code == 0 and json.loads(preview.stdout)["preview"]["entries"] == len(QA)
    refused = run("migrate-embeddings", "--cache", "llmcache", "--flush")
    assert refused.exit_code == 2 and "--yes" in refused.output
    doc = json.loads(run("migrate-embeddings", "--cache", "llmcache", "--flush", "--yes", "--json").stdout)
    assert doc["result"]["backed_up"] == len(QA) and doc["result"]["phases_run"] == ["backup", "drop_index"]
    assert client.execute_command("FT._LIST") == []
    assert [k for k in client.scan_iter(match="llmcache*")] == [b"llmcache:not-an-entry"]
    (event,) = run.json_lines("history", "--action", "migrate-embeddings")  # the operations log has it
    assert event["extra"]["mode"] == "flush" and event["backup"] == doc["result"]["backups"][0]
    assert event["counts"]["backed_up"] == len(QA)
    # the new app starts cold on the new model, with the same name
    assert app_answers(redis_url, "llmcache", [QA[0][0]]) == [MODEL_CALLED]
    assert run("migrate-embeddings", "--cache", "nothing", "--flush", "--yes").exit_code == 7


def test_in_place_redisvl_cache_with_filterable_fields(run, client, redis_url):
    from redisvl.extensions.cache.llm import SemanticCache
    from redisvl.query.filter import Tag

    from cacheops.semantic.vectorizers import load_vectorizer

    fields = [{"name": "tier", "type": "tag"}]
    writers.redisvl_semantic(
        redis_url,
        [
            {"prompt": "What is the capital of France?", "response": "Paris", "filters": {"tier": "pro"}, "ttl": 600},
            {"prompt": "Can I get a refund?", "response": "30 days", "filters": {"tier": "free"}},
        ],
        name="support",
        filterable_fields=fields,
    )
    result = run("migrate-embeddings", "--cache", "support", "--to", MINILM, "--in-place", "--yes", "--json")
    assert result.exit_code == 0, result.output
    assert client.execute_command("FT._LIST") == [b"support"]
    # the app on the new model, same name and fields: no schema error, the migrated entries served
    app = SemanticCache(
        name="support", redis_url=redis_url, vectorizer=load_vectorizer(MINILM), filterable_fields=fields
    )
    (hit,) = app.check("What is the capital of France?", filter_expression=Tag("tier") == "pro")
    assert hit["response"] == "Paris" and 500 < client.ttl(hit["key"]) <= 600
    assert app.check("Can I get a refund?", filter_expression=Tag("tier") == "free")[0]["response"] == "30 days"


def test_every_phase_has_its_fault_points():
    for mode_phases in PHASES.values():
        for phase in mode_phases:
            assert f"migrate.inplace.{phase}" in fault_points and f"migrate.inplace.{phase}.partial" in fault_points


def test_the_undo_hint_runs_against_the_same_server(run, client, redis_url):
    fill(redis_url)
    flushed = run("migrate-embeddings", "--cache", "llmcache", "--flush", "--yes")
    assert flushed.exit_code == 0, flushed.output
    assert f"undo with: cacheops --url {redis_url} restore " in " ".join(flushed.output.split())
