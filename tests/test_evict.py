"""evict / restore / history / tag against a real server, entries written by the real libraries."""

from __future__ import annotations

import json
import time
from pathlib import Path

import writers
from langchain_core.messages import HumanMessage, SystemMessage

from cacheops.layouts import langchain_format as lc

Q = "What is the refund policy?"
WRONG = "Refunds are never possible."
RIGHT = "Refunds are possible within 30 days."
SYS = "You are a terse assistant."


OPLOG = b"cacheops:oplog"


def snapshot(client) -> dict[bytes, tuple[bytes, int]]:
    """Every key's DUMP (exact bytes, fields, vectors, encoding) and PTTL; not the operations log stream."""
    out = {}
    for key in client.scan_iter(count=1000):
        if key != OPLOG:
            out[key] = (client.dump(key), client.pttl(key))
    return out


def content(client, key: bytes):
    """A key's value as the app reads it. A RESTOREd hash has the same fields and bytes, but a
    hashtable-encoded one may DUMP its fields in another order."""
    kind = client.type(key)
    if kind == b"hash":
        return client.hgetall(key)
    return client.dump(key)


def assert_same(before: dict, after: dict, keys) -> None:
    for key in keys:
        assert key in after, f"{key!r} was lost"
        dump_before, pttl_before = before[key]
        dump_after, pttl_after = after[key]
        assert dump_after == dump_before, f"{key!r} changed"
        if pttl_before < 0:
            assert pttl_after == pttl_before, key
        else:
            assert 0 <= pttl_before - pttl_after < 5000, (key, pttl_before, pttl_after)


def evict(run, *args, input=None):
    result = run("evict", *args, "--json", input=input)
    doc = json.loads(result.stdout) if result.stdout.strip().startswith("{") else None
    return result, doc


def mixed_cache(url, client):
    """Several caches, layouts, models, TTLs, and keys that are not cache entries."""
    writers.langchain_exact(
        url,
        [
            (Q, WRONG),
            ("What are your hours?", "9 to 5."),
            ([SystemMessage(SYS), HumanMessage(Q)], "System-prompted refund answer."),
        ],
        model="gpt-4o-mini",
        ttl=600,
    )
    writers.langchain_exact(url, [(Q, WRONG + " (4o)"), ("Do you ship abroad?", "Yes.")], model="gpt-4o")
    writers.langchain_exact_llm(url, [(Q, "LLM refund answer")])
    writers.langchain_semantic(
        url, [(Q, WRONG), ("How do I reset my password?", "Use the reset link.")], model="gpt-4o", ttl=3600
    )
    writers.redisvl_semantic(
        url,
        [
            {
                "prompt": "Tagged refund question",
                "response": "Refunds: never possible for alice",
                "filters": {"user_id": "alice", "cost": 3},
                "metadata": {"model": "gpt-4o"},
            },
            {
                "prompt": "Tagged other question",
                "response": "Some answer for bob",
                "filters": {"user_id": "bob", "cost": 5},
                "metadata": {"model": "claude-3-5-haiku"},
            },
        ],
        name="tagged_cache",
        filterable_fields=[{"name": "user_id", "type": "tag"}, {"name": "cost", "type": "numeric"}],
    )
    writers.redisvl_embeddings(url, [("hello world", "all-MiniLM-L6-v2")], ttl=3600)
    client.set("redis:session:42", "a user's session, not a cache entry")
    client.hset("llmcache:not-a-cache-entry", mapping={"owner": "someone else"})


def exact_key(client, text, system=None, prefix="redis"):
    md5 = lc.md5_hex(lc.chat_prompt(text, system))
    return sorted(client.scan_iter(match=f"{prefix}:{md5}:*"))


def content_of_dump(client, dump: bytes):
    """What a DUMP payload holds, read back through a scratch key."""
    scratch = b"cacheops-test:scratch"
    client.restore(scratch, 0, dump, replace=True)
    try:
        return content(client, scratch)
    finally:
        client.delete(scratch)


# -- the poisoning cycle --------------------------------------------------------------------------


def test_poisoning_cycle_evicts_every_copy_and_the_app_recaches_the_right_answer(run, redis_url, client):
    from langchain_redis import RedisCache, RedisSemanticCache

    from cacheops.demo import demo_chat_model, hashing_embeddings

    exact = RedisCache(redis_url=redis_url, ttl=900)
    semantic = RedisSemanticCache(embeddings=hashing_embeddings(), redis_url=redis_url, distance_threshold=0.01)
    # The app, with two models, answers wrongly once; both caches now serve the wrong answer.
    for cache in (exact, semantic):
        with writers.llm_cache(cache):
            for model in ("gpt-4o-mini", "gpt-4o"):
                chat = demo_chat_model(model)
                chat.answer(Q, WRONG)
                assert chat.answer(Q, RIGHT).content == WRONG  # served from the cache
                chat.answer("What are your hours?", "9 to 5.")
    mixed_cache(redis_url, client)
    poisoned = {k for k in client.scan_iter() if k.startswith(b"redis:") or k.startswith(b"llmcache:")}
    before = snapshot(client)

    result, doc = evict(run, "--prompt", Q, "--yes")
    assert result.exit_code == 0, result.output
    deleted_keys = set(before) - set(snapshot(client))
    # every copy: both models in the exact cache, the semantic entry, the plain-LLM entry
    assert doc["result"]["deleted"] == len(deleted_keys) == 4
    assert doc["result"]["per_cache"] == {"redis": 3, "llmcache": 1}
    assert all(k in poisoned for k in deleted_keys)
    assert_same(before, snapshot(client), set(before) - deleted_keys)
    assert run("show", "--prompt", Q).exit_code == 7

    # The app asks again: the model is called (a cache hit would still say WRONG) and the right
    # answer is cached in both caches.
    for cache in (exact, semantic):
        with writers.llm_cache(cache):
            for model in ("gpt-4o-mini", "gpt-4o"):
                assert demo_chat_model(model).answer(Q, RIGHT).content == RIGHT
    answers = {e["answer"] for e in run.json("show", "--prompt", Q)}
    assert answers == {RIGHT}


# -- selectors on a mixed cache -------------------------------------------------------------------


def deleted_by(run, client, *selectors):
    before = snapshot(client)
    result, doc = evict(run, *selectors, "--yes")
    assert result.exit_code == 0, result.output
    after = snapshot(client)
    gone = set(before) - set(after)
    assert_same(before, after, set(after) & set(before))
    return {k.decode() for k in gone}, doc


def test_prompt_with_system_and_model(run, redis_url, client):
    mixed_cache(redis_url, client)
    gone, _ = deleted_by(run, client, "--prompt", Q, "--system", SYS)
    assert len(gone) == 1 and gone.pop().startswith("redis:" + lc.md5_hex(lc.chat_prompt(Q, SYS)))
    gone, _ = deleted_by(run, client, "--prompt", Q, "--model", "gpt-4o")
    # gpt-4o's exact entry and the semantic entry written by gpt-4o; gpt-4o-mini and the LLM stay
    assert len(gone) == 2 and any(k.startswith("llmcache:") for k in gone)
    assert len(exact_key(client, Q)) == 1


def test_response_contains_and_regex(run, redis_url, client):
    mixed_cache(redis_url, client)
    gone, doc = deleted_by(run, client, "--response-contains", "never possible", "--cache", "redis")
    assert len(gone) == 2 and all(k.startswith("redis:") for k in gone)
    gone, _ = deleted_by(run, client, "--response-regex", r"^Refunds?:? (are )?never")
    assert {k.split(":")[0] for k in gone} == {"llmcache", "tagged_cache"}


def test_tag_on_redisvl_fields_and_on_cacheops_tags(run, redis_url, client):
    mixed_cache(redis_url, client)
    gone, _ = deleted_by(run, client, "--tag", "user_id=alice")
    assert len(gone) == 1 and gone.pop().startswith("tagged_cache:")
    # exact caches have no fields: `cacheops tag` labels an entry beside it, expiring with it
    key = exact_key(client, "What are your hours?")[0].decode()
    assert run.json("tag", key, "source=warmup", "tenant=acme")["tags"] == {"source": "warmup", "tenant": "acme"}
    assert abs(client.pttl(b"cacheops:tags:" + key.encode()) - client.pttl(key)) < 100
    assert run("tag", "redis:session:42", "a=b").exit_code == 7  # not a cache entry
    assert run("tag", key, "no equals").exit_code == 2
    before_tag = client.dump(b"cacheops:tags:" + key.encode())
    gone, doc = deleted_by(run, client, "--tag", "source=warmup", "--tag", "tenant=acme")
    assert gone == {key, "cacheops:tags:" + key}
    assert doc["result"]["companions_deleted"] == 1
    # the tag hash comes back with the entry on restore
    assert run("restore", doc["result"]["backup"]).exit_code == 0
    assert client.dump(b"cacheops:tags:" + key.encode()) == before_tag
    gone, _ = deleted_by(run, client, "--tag", "cost=5")
    assert len(gone) == 1


def test_prompt_hash(run, redis_url, client):
    mixed_cache(redis_url, client)
    md5 = lc.md5_hex(lc.chat_prompt(Q))
    gone, _ = deleted_by(run, client, "--prompt-hash", md5)
    assert len(gone) == 2 and all(k.startswith(f"redis:{md5}:") for k in gone)
    sha = lc.sha256_hex(lc.chat_prompt(Q))
    gone, _ = deleted_by(run, client, "--prompt-hash", sha.upper())
    assert gone == {f"llmcache:{sha}"}
    assert run("evict", "--prompt-hash", "xyz", "--yes").exit_code == 2


def test_model(run, redis_url, client):
    mixed_cache(redis_url, client)
    # gpt-4o: its exact entries (the model is learned from the semantic cache the same app fills),
    # the semantic entries it wrote, the RedisVL entry whose metadata names it; never gpt-4o-mini's.
    gone, _ = deleted_by(run, client, "--model", "gpt-4o")
    assert {k.split(":")[0] for k in gone} == {"redis", "llmcache", "tagged_cache"} and len(gone) == 5
    assert len(exact_key(client, Q)) == 1
    gone, _ = deleted_by(run, client, "--model", "claude-3-5-haiku")
    assert len(gone) == 1 and gone.pop().startswith("tagged_cache:")
    # An exact entry whose model cacheops cannot learn is shown (and selected) by md5(llm_string).
    mini = next(r for r in run.json_lines("scan") if r["answer"] == "9 to 5.")["model"]
    assert mini.startswith("llm:")
    gone, _ = deleted_by(run, client, "--model", mini)
    assert len(gone) == 3 and all(k.startswith("redis:") for k in gone)


def test_older_than(run, redis_url, client):
    writers.redisvl_semantic(redis_url, [{"prompt": "old question", "response": "old answer"}], name="aged")
    time.sleep(1.2)
    writers.redisvl_semantic(redis_url, [{"prompt": "new question", "response": "new answer"}], name="aged")
    writers.langchain_exact(redis_url, [(Q, WRONG)])  # records no insertion time: never selected by age
    gone, doc = deleted_by(run, client, "--older-than", "1s")
    assert len(gone) == 1 and client.hget(next(iter(gone)), "prompt") is None
    assert doc["preview"]["no_insertion_time"] == 1
    remaining = {r["prompt"] for r in run.json_lines("scan") if r["cache"] == "aged"}
    assert remaining == {"new question"}
    assert run("evict", "--older-than", "soon", "--yes").exit_code == 2


def test_keys_and_keys_from(run, redis_url, client):
    mixed_cache(redis_url, client)
    k1, k2 = [k.decode() for k in exact_key(client, Q)]
    gone, _ = deleted_by(run, client, "--key", k1)
    assert gone == {k1}
    sem = f"llmcache:{lc.sha256_hex(lc.chat_prompt(Q))}"
    result, doc = evict(run, "--keys-from", "-", "--yes", input=f"{k2}\n{sem}\nredis:session:42\nno:such:key\n")
    assert result.exit_code == 0 and doc["result"]["deleted"] == 2
    assert doc["preview"]["not_cache_entries"] == 1 and doc["preview"]["missing"] == 1
    assert client.exists("redis:session:42")


def test_foreign_keys_are_never_deleted(run, redis_url, client):
    mixed_cache(redis_url, client)
    client.set("redis:" + "a" * 32 + ":" + "b" * 32, "shaped like an exact entry, but a plain string")
    before = snapshot(client)
    gone, doc = deleted_by(run, client, "--cache", "redis")
    assert all(k.startswith("redis:") for k in gone) and len(gone) == 6
    assert client.exists("redis:session:42") and client.exists("redis:" + "a" * 32 + ":" + "b" * 32)
    assert doc["preview"]["not_cache_entries"] == 2
    # a glob-looking key is taken literally: it names no key, so nothing is deleted
    result, _ = evict(run, "--key", "redis:*", "--yes")
    assert result.exit_code == 7
    result, _ = evict(run, "--key", "llmcache:not-a-cache-entry", "--yes")
    assert result.exit_code == 7 and client.exists("llmcache:not-a-cache-entry")
    assert before[b"redis:session:42"] == snapshot(client)[b"redis:session:42"]


# -- behaviour ----------------------------------------------------------------------------------


def test_dry_run_deletes_nothing_and_preview_shows_sample(run, redis_url, client):
    mixed_cache(redis_url, client)
    before = snapshot(client)
    result, doc = evict(run, "--prompt", Q, "--dry-run")
    assert result.exit_code == 0
    assert doc["dry_run"] and doc["preview"]["matched"] == 4 and "result" not in doc
    assert doc["preview"]["per_cache"] == {"redis": 3, "llmcache": 1}
    assert {s["prompt"] for s in doc["preview"]["sample"]} == {Q}
    assert {s["answer"] for s in doc["preview"]["sample"]} >= {WRONG, "LLM refund answer"}
    table = run("evict", "--prompt", Q, "--dry-run").output
    assert "dry run: nothing was deleted" in table and "4 entries selected" in table
    assert snapshot(client) == before or set(snapshot(client)) == set(before)
    assert_same(before, snapshot(client), before)


def test_confirmation_nothing_matched_and_usage(run, redis_url, client):
    mixed_cache(redis_url, client)
    before = set(snapshot(client))
    result = run("evict", "--prompt", Q)  # not a terminal, no --yes
    assert result.exit_code == 2 and "--yes" in result.output
    assert set(snapshot(client)) == before
    result = run("evict", "--prompt", "a question nobody asked", "--yes")
    assert result.exit_code == 7 and "nothing matched" in result.output
    assert run("evict", "--yes").exit_code == 2  # no selector at all
    assert run("evict", "--similar-to", "x", "--yes").exit_code == 2  # no --threshold
    assert run("evict", "--system", SYS, "--yes").exit_code == 2
    assert run("evict", "--response-regex", "(", "--yes").exit_code == 2
    assert run("evict", "--tag", "novalue", "--yes").exit_code == 2


def test_restore_brings_back_identical_bytes_and_ttls(run, redis_url, client, tmp_path):
    mixed_cache(redis_url, client)
    before = snapshot(client)
    backup = tmp_path / "b.jsonl"
    result, doc = evict(run, "--response-contains", "never possible", "--backup", str(backup), "--yes")
    assert result.exit_code == 0 and doc["result"]["deleted"] == 4 and doc["result"]["backup"] == str(backup)
    assert backup.stat().st_mode & 0o777 == 0o600
    assert run("evict", "--cache", "redis", "--backup", str(backup), "--yes").exit_code == 2  # never overwritten
    restored = run.json("restore", str(backup))
    assert restored["restored"] == 4
    after = snapshot(client)
    assert set(after) == set(before)
    for key, (dump, pttl) in before.items():
        assert content(client, key) == content_of_dump(client, dump), key
        assert (pttl < 0 and after[key][1] == pttl) or 0 <= pttl - after[key][1] < 5000, key
    # the semantic index sees the restored entry again
    assert run.json("show", "--prompt", Q)
    again = run.json("restore", str(backup))
    assert again["restored"] == 0 and again["identical"] == 4


def test_restore_reads_version_1_backups(run, redis_url, client, tmp_path):
    """Backups written before version 2 hold a DUMP for every key, RedisJSON documents included."""
    import base64
    import hashlib

    mixed_cache(redis_url, client)
    before = snapshot(client)
    backup = tmp_path / "b.jsonl"
    assert evict(run, "--cache", "redis", "--backup", str(backup), "--yes")[0].exit_code == 0
    lines = [json.loads(line) for line in backup.read_text().splitlines()]
    assert lines[0]["version"] == 2 and sum("json" in d for d in lines) >= 4
    old = [{**lines[0], "version": 1}]
    for doc in lines[1:]:
        if "json" in doc:
            del doc["json"]
            dump = before[doc["key"].encode()][0]
            doc.update(dump=base64.b64encode(dump).decode(), sha1=hashlib.sha1(dump).hexdigest())
        old.append(doc)
    v1 = tmp_path / "v1.jsonl"
    v1.write_text("".join(json.dumps(d) + "\n" for d in old))
    assert run.json("restore", str(v1))["restored"] == len(old) - 1
    assert_same(before, snapshot(client), before)


def test_restore_keeps_newer_entries_unless_forced(run, redis_url, client, tmp_path):
    writers.langchain_exact(redis_url, [(Q, WRONG)])
    backup = tmp_path / "b.jsonl"
    assert evict(run, "--prompt", Q, "--backup", str(backup), "--yes")[0].exit_code == 0
    writers.langchain_exact(redis_url, [(Q, RIGHT)])  # the app caches the fresh answer
    doc = run.json("restore", str(backup))
    assert doc["restored"] == 0 and doc["kept_newer"] == 1
    assert run.json("show", "--prompt", Q)[0]["answer"] == RIGHT
    assert run("restore", str(backup), "--force").exit_code == 2  # overwriting needs --yes off a terminal
    assert run.json("restore", str(backup), "--force", "--yes")["overwritten"] == 1
    assert run.json("show", "--prompt", Q)[0]["answer"] == WRONG
    assert run("restore", str(tmp_path / "missing.jsonl")).exit_code == 7
    (tmp_path / "foreign.jsonl").write_text('{"hello": 1}\n')
    assert run("restore", str(tmp_path / "foreign.jsonl")).exit_code == 2


def test_history_lists_evictions_and_restores(run, redis_url, client, tmp_path):
    writers.langchain_exact(redis_url, [(Q, WRONG)])
    backup = tmp_path / "b.jsonl"
    evict(run, "--prompt", Q, "--backup", str(backup), "--yes")
    run("restore", str(backup))
    events = run.json_lines("history")
    assert [e["action"] for e in events] == ["restore", "evict"]
    ev = events[1]
    assert ev["selectors"] == {"prompt": [Q]} and ev["counts"]["deleted"] == 1
    assert ev["redis_user"] == "default" and ev["host"] and ev["backup"] == str(backup)
    assert [e["action"] for e in run.json_lines("history", "--action", "evict")] == ["evict"]
    assert "evict" in run("history", "--table").output
    assert {e["state"] for e in events} == {"done"}
    assert client.xinfo_stream("cacheops:oplog")["length"] == 4  # each run: a started event, then its result
    # earlier versions wrote the log under cacheops:audit: history still shows those events, newest first
    client.rename("cacheops:oplog", "cacheops:audit")
    evict(run, "--prompt", Q, "--backup", str(tmp_path / "c.jsonl"), "--yes")
    assert [e["action"] for e in run.json_lines("history")] == ["evict", "restore", "evict"]


def test_default_backup_goes_to_the_state_dir(run, redis_url, client, tmp_path):
    writers.langchain_exact(redis_url, [(Q, WRONG)])
    _, doc = evict(run, "--prompt", Q, "--yes")
    path = doc["result"]["backup"]
    assert path.startswith(str(tmp_path / "state" / "backups")) and path.endswith(".jsonl")
    lines = [json.loads(line) for line in Path(path).read_text().splitlines()]
    assert lines[0]["format"] == "cacheops-backup" and lines[0]["selectors"] == {"prompt": [Q]}
    assert lines[1]["answer"] == WRONG and lines[1]["pttl_ms"] == -1


def test_rewritten_since_preview_is_deleted_only_if_it_still_matches(redis_url, client, tmp_path):
    """The preview/confirm gap: the app rewrites entries; execute re-checks each key."""
    from cacheops.inspect.catalog import build_context
    from cacheops.ops import evict as evict_lib
    from cacheops.ops.selection import Selection

    writers.langchain_exact(redis_url, [(Q, WRONG), ("Q2?", WRONG), ("Q3?", WRONG)], model="gpt-4o")
    sel = Selection(response_contains=["never possible"])
    plan = evict_lib.plan(client, sel, build_context(client))
    assert plan.total == 3
    writers.langchain_exact_rewrite(redis_url, Q, RIGHT, model="gpt-4o")  # fixed: no longer matches
    writers.langchain_exact_rewrite(redis_url, "Q2?", WRONG + " Really.", model="gpt-4o")  # still matches
    result = evict_lib.execute(client, plan, backup_path=tmp_path / "b.jsonl")
    assert result.deleted == 2 and result.no_longer_matching == 1
    assert [json.loads(client.execute_command("JSON.GET", k))[0]["kwargs"]["text"] for k in exact_key(client, Q)] == [
        RIGHT
    ]
    # the backup holds the version that was deleted (the rewritten one), which restore brings back
    lines = [json.loads(line) for line in (tmp_path / "b.jsonl").read_text().splitlines()][1:]
    assert sorted(line["answer"] for line in lines) == sorted([WRONG, WRONG + " Really."])


def test_concurrent_writer_loses_nothing_outside_the_selection(run, redis_url, client, tmp_path):
    """Another process keeps caching new answers in the same cache during the eviction."""
    wrong = [(f"poisoned question {i}", f"WRONG answer {i}") for i in range(1500)]
    writers.langchain_exact(redis_url, wrong, model="gpt-4o")
    writers.langchain_exact(redis_url, [(f"good question {i}", f"good answer {i}") for i in range(300)], model="gpt-4o")
    stop, log = tmp_path / "stop", tmp_path / "written.txt"
    proc = writers.steady_writer_process(redis_url, "redis", str(stop), str(log))
    try:
        deadline = time.time() + 30
        while (not log.exists() or len(log.read_text().splitlines()) < 20) and time.time() < deadline:
            time.sleep(0.05)
        written_before = len(log.read_text().splitlines())
        result, doc = evict(run, "--cache", "redis", "--response-contains", "WRONG", "--yes")
        written_during = len(log.read_text().splitlines())
        time.sleep(0.3)
    finally:
        stop.touch()
        proc.wait(timeout=30)
    assert result.exit_code == 0, result.output
    assert doc["result"]["deleted"] == 1500
    rows = run.json_lines("scan", "--cache", "redis")
    answers = {r["answer"] for r in rows}
    assert not any(a.startswith("WRONG") for a in answers)
    assert {f"good answer {i}" for i in range(300)} <= answers
    live = log.read_text().splitlines()
    assert len(live) > written_during > written_before >= 20  # the writer ran before, during and after
    assert {f"fresh answer {p.split()[-1]}" for p in live} <= answers


def test_terminal_asks_before_deleting(run, redis_url, client, monkeypatch):
    import cacheops.cli.app as cli_app

    monkeypatch.setattr(cli_app, "interactive", lambda: True)
    writers.langchain_exact(redis_url, [(Q, WRONG)])
    result = run("evict", "--prompt", Q, input="n\n")
    assert result.exit_code == 0 and "cancelled: nothing was deleted" in result.output
    assert len(exact_key(client, Q)) == 1
    result = run("evict", "--prompt", Q, input="y\n")
    assert result.exit_code == 0 and "deleted 1 entry of 1 selected" in result.output
    assert "undo with: cacheops --url" in result.output and not exact_key(client, Q)


def test_write_between_backup_and_delete_is_caught(redis_url, client, tmp_path, monkeypatch):
    """The app writes a key after it was read and backed up, before the delete: the batch's EXEC
    aborts (WATCH) and each key goes through compare-and-unlink; the changed key is re-judged."""
    from cacheops.inspect.catalog import build_context
    from cacheops.ops import evict as evict_lib
    from cacheops.ops.selection import Selection

    writers.langchain_exact(redis_url, [(Q, WRONG), ("Q2?", WRONG), ("Q3?", WRONG)], model="gpt-4o")
    plan = evict_lib.plan(client, Selection(response_contains=["never possible"]), build_context(client))
    original = evict_lib._Deleter._backup
    calls = []

    def backup_then_app_writes(self, judged, now_ms):
        chosen = original(self, judged, now_ms)
        if not calls:  # the first batch only
            writers.langchain_exact_rewrite(redis_url, Q, RIGHT, model="gpt-4o")
            writers.langchain_exact_rewrite(redis_url, "Q2?", WRONG + " Again.", model="gpt-4o")
        calls.append(len(chosen))
        return chosen

    monkeypatch.setattr(evict_lib._Deleter, "_backup", backup_then_app_writes)
    result = evict_lib.execute(client, plan, backup_path=tmp_path / "b.jsonl")
    # Q was fixed by the app: kept. Q2 was rewritten but still wrong: re-judged, backed up, deleted.
    assert result.deleted == 2 and result.no_longer_matching == 1
    assert calls == [3, 1]  # all three backed up, then the re-judged Q2 alone
    assert [json.loads(client.execute_command("JSON.GET", k))[0]["kwargs"]["text"] for k in exact_key(client, Q)] == [
        RIGHT
    ]
    assert not exact_key(client, "Q2?") and not exact_key(client, "Q3?")
    lines = [json.loads(line) for line in (tmp_path / "b.jsonl").read_text().splitlines()][1:]
    # every version backed up; the ones not deleted are marked, so restore brings back exactly the deleted
    assert sorted(d["reason"] for d in lines if "not_deleted" in d) == ["changed", "changed"]
    client.delete(*exact_key(client, Q))
    restored = evict_lib_restore(client, tmp_path / "b.jsonl")
    assert restored.restored == 2
    texts = sorted(
        json.loads(client.execute_command("JSON.GET", k))[0]["kwargs"]["text"]
        for q in ("Q2?", "Q3?")
        for k in exact_key(client, q)
    )
    assert texts == sorted([WRONG + " Again.", WRONG])


def evict_lib_restore(client, path):
    from cacheops.ops.backup import restore

    return restore(client, path)


def test_similar_to_evicts_paraphrases_within_the_threshold(run, redis_url, client):
    """The real all-MiniLM-L6-v2 embeds what LangChain embeds (the serialised message list); the
    distances shown are RedisVL's own check() distances."""
    import pytest
    from writers import MINILM, minilm_embeddings

    hours = "What are your business hours?"
    qa = [
        (hours, "WRONG: we never open."),
        ("what are your business hours", "WRONG: we never open."),
        ("When are you open?", "Nine to five."),
        ("Can I get a refund?", "Yes, within 30 days."),
        ("What is the price of plan 3?", "Plan 3 costs $30."),
    ]
    cache = writers.langchain_semantic(redis_url, qa, embeddings=minilm_embeddings(), distance_threshold=0.0001)
    writers.langchain_exact(redis_url, [(hours, "WRONG: we never open.")])  # exact caches have no vectors
    vector = cache.cache._vectorize_prompt(lc.chat_prompt(hours))
    everything = {
        r["key"]: float(r["vector_distance"])
        for r in cache.cache.check(vector=vector, num_results=10, distance_threshold=2.0)
    }
    threshold = 0.05
    inside = {k for k, d in everything.items() if d <= threshold}
    assert 2 <= len(inside) < len(qa)  # the test means something: some go, some stay

    result, doc = evict(run, "--similar-to", hours, "--threshold", str(threshold), "--embedding", MINILM, "--dry-run")
    assert result.exit_code == 0, result.output
    assert doc["preview"]["distances"] == {k: pytest.approx(everything[k], abs=1e-6) for k in inside}
    assert all(row["distance"] == pytest.approx(everything[row["key"]], abs=1e-6) for row in doc["preview"]["sample"])
    table = run(
        "evict", "--similar-to", hours, "--threshold", str(threshold), "--embedding", MINILM, "--dry-run"
    ).output
    assert "distance" in table

    before = snapshot(client)
    result, doc = evict(run, "--similar-to", hours, "--threshold", str(threshold), "--embedding", MINILM, "--yes")
    assert result.exit_code == 0 and doc["result"]["deleted"] == len(inside)
    after = snapshot(client)
    assert {k.decode() for k in set(before) - set(after)} == inside
    assert_same(before, after, set(after))
    kept = {k.decode() for k in after if k.startswith(b"llmcache:")}
    assert kept == set(everything) - inside
    # combined with another selector (AND): only the neighbours that also match
    result, _ = evict(
        run, "--similar-to", hours, "--threshold", "2", "--embedding", MINILM, "--response-contains", "Plan 3", "--yes"
    )
    plan3 = f"llmcache:{lc.sha256_hex(lc.chat_prompt('What is the price of plan 3?'))}"
    assert result.exit_code == 0 and {k.decode() for k in set(after) - set(snapshot(client))} == {plan3}


def test_unchanged_entries_are_not_decoded_again(redis_url, client, tmp_path, monkeypatch):
    """The server tells an entry unchanged since the preview by the same digest cacheops computed
    (evict_read.lua value_digest == evict.record_digest), for JSON documents and for hashes with
    vectors, tag fields and TTLs alike; only a rewritten entry is decoded and judged again."""
    from cacheops.inspect.catalog import build_context
    from cacheops.ops import evict as evict_lib
    from cacheops.ops.selection import Selection

    mixed_cache(redis_url, client)
    for n, selection in enumerate(
        (
            Selection(cache="redis"),
            Selection(response_contains=["never possible"]),
            Selection(tags={"user_id": "bob"}),
            Selection(cache="llmcache"),
        )
    ):
        plan = evict_lib.plan(client, selection, build_context(client))
        assert plan.total
        decoded: list[bytes] = []
        real = evict_lib.decode_record

        def spy(rec, ctx, full=True, decoded=decoded, real=real):
            decoded.append(rec.key)
            return real(rec, ctx, full)

        monkeypatch.setattr(evict_lib, "decode_record", spy)
        result = evict_lib.execute(client, plan, backup_path=tmp_path / f"{n}.jsonl")
        monkeypatch.setattr(evict_lib, "decode_record", real)
        assert result.deleted == plan.total and decoded == [], selection


def test_unreachable_selects_entries_the_layouts_mark(run, redis_url, client, monkeypatch):
    """--unreachable uses Entry.unreachable, set by the layouts (absent before they set it)."""
    from cacheops.inspect import catalog
    from cacheops.ops import evict as evict_lib

    writers.langchain_exact(redis_url, [(Q, WRONG), ("Q2?", "fine")])
    assert evict(run, "--unreachable", "--yes")[0].exit_code == 7  # nothing marked: nothing matched
    real = catalog.decode_record

    def marking(rec, ctx, full=True):
        item = real(rec, ctx, full)
        if getattr(item, "answer", None) == WRONG:
            item.unreachable = "stored under a key no lookup computes"
        return item

    monkeypatch.setattr(evict_lib, "decode_record", marking)
    result, doc = evict(run, "--unreachable", "--yes")
    assert result.exit_code == 0 and doc["result"]["deleted"] == 1
    assert not exact_key(client, Q) and exact_key(client, "Q2?")


def test_companion_keys_go_with_their_entry_and_come_back(run, redis_url, client, request):
    """GPTCache: a question JSON plus its vector hash (the layout's companion key). Needs the
    layouts' GPTCache writer venv (venv_writers); skipped on a tree without it."""
    import pytest

    try:
        gpt = request.getfixturevalue("venv_writers")["gptcache"]
    except pytest.FixtureLookupError:
        pytest.skip("no GPTCache writer in this tree")
    gpt(redis_url, "qa", qa=[[Q, WRONG], ["Other question?", "Fine."]])
    entry = next(r for r in run.json_lines("scan") if r["answer"] == WRONG)
    companions = entry["companion_keys"]
    assert companions and all(client.exists(k) for k in companions)
    before = snapshot(client)
    result, doc = evict(run, "--response-contains", WRONG, "--yes")
    assert result.exit_code == 0 and doc["result"]["deleted"] == 1
    assert doc["result"]["companions_deleted"] == len(companions)
    after = snapshot(client)
    assert {k.decode() for k in set(before) - set(after)} == {entry["key"], *companions}
    assert_same(before, after, set(after))  # the other question, its vector, counter, index: untouched
    assert run.json("restore", doc["result"]["backup"])["restored"] == 1
    restored = snapshot(client)
    assert set(restored) == set(before)
    for key in (entry["key"], *companions):
        assert content(client, key.encode()) == content_of_dump(client, before[key.encode()][0])


def test_a_key_scan_returns_twice_is_selected_once(monkeypatch):
    """SCAN returns a key at least once. Selected twice, the copy read ahead could be deleted by an
    earlier batch and then marked "gone", which would keep restore from bringing back the deleted copy."""
    from cacheops.ops import evict as evict_lib

    monkeypatch.setattr(evict_lib, "DEDUPE_WINDOW", 3)
    recent = evict_lib._RecentKeys()
    keys = (b"a", b"b", b"a", b"c", b"d", b"e", b"b", b"a", b"f", b"g", b"a")
    assert [recent.seen(k) for k in keys] == [
        False,
        False,
        True,
        False,
        False,
        False,
        True,
        True,
        False,
        False,
        False,
    ]  # at least 3 keys remembered, at most 6


def test_the_undo_hint_runs_verbatim_with_the_connection_options(run, redis_url, client, tmp_path):
    import shlex

    from conftest import Cli

    writers.langchain_exact(redis_url, [(Q, WRONG)])
    result = run("--db", "0", "evict", "--prompt", Q, "--backup", str(tmp_path / "b.jsonl"), "--yes")
    (hint,) = [line for line in result.stdout.splitlines() if line.startswith("undo with: ")]
    argv = shlex.split(hint.removeprefix("undo with: "))
    assert argv[:3] == ["cacheops", "--url", redis_url] and "--db" in argv, hint
    restored = Cli("")(*argv[1:])  # exactly the printed line, nothing added
    assert restored.exit_code == 0, restored.output
    assert client.exists(*[k for k in client.scan_iter() if k != OPLOG]) == 1

    # A password in --url is never printed: the hint shows *** in its place.
    secret_url = redis_url.replace("redis://", "redis://default:hunter2-secret@")
    hint = [
        line
        for line in Cli(secret_url)("evict", "--prompt", Q, "--yes").stdout.splitlines()
        if line.startswith("undo with: ")
    ]
    assert hint and "hunter2-secret" not in hint[0] and "default:***@" in hint[0]
