"""kill -9 of cacheops at chosen points (the CACHEOPS_FAULT hook, cacheops/faults.py) in the middle
of an evict, a restore, a warm and a migrate-embeddings, run as a separate process.

After every kill: every deleted key is in the backup, nothing outside the selection changed, a
restore of the backups brings every entry back byte for byte, and a re-run finishes the job.
"""

from __future__ import annotations

import json
import signal

import pytest
import redis
import writers
import yaml
from conftest import reset_keyspace
from reliability import backed_up_keys, cacheops_process, exact_entries, snapshot

from cacheops import faults
from cacheops.exit_codes import ExitCode

JSON_ENTRIES = 300  # langchain-redis RedisCache: RedisJSON documents (backed up as the document)
PICKLE_ENTRIES = 1300  # the hand-rolled pickle cache: strings (backed up as DUMPs); 2 evict batches
KILLED = -signal.SIGKILL


@pytest.fixture(scope="module")
def keyspace(redis_server):
    """The keyspace every test starts from, written once by the real writers and kept as DUMPs."""
    client = redis.Redis.from_url(redis_server.url)
    reset_keyspace(client)
    exact_entries(redis_server.url, JSON_ENTRIES)
    writers.pickle_llm_cache(redis_server.url, [(f"q{i}", f"a{i}") for i in range(PICKLE_ENTRIES)], ttl=86400)
    writers.community_exact(redis_server.url, [("Untouched?", "Yes")])  # a cache never selected
    client.set("redis:not-an-entry", "foreign")  # look-alike keys under a cache prefix: never touched
    client.set("llm_cache:" + "0" * 64, "not a pickle")
    dumps = {key: (client.dump(key), client.pttl(key)) for key in client.scan_iter(count=1000)}
    client.close()
    return dumps


@pytest.fixture
def fresh(keyspace, client):
    """The module's keyspace restored into an empty server (RESTORE of its DUMPs, TTLs kept)."""
    pipe = client.pipeline(transaction=False)
    for key, (dump, pttl) in keyspace.items():
        pipe.restore(key, max(pttl, 0), dump)
    pipe.execute()
    return snapshot(client)


def selection_file(tmp_path, client) -> tuple[str, set[bytes]]:
    """Every second JSON entry and twelve pickle entries in thirteen (1,350 keys: two evict
    batches), so entries of both caches stay outside the selection; plus the look-alikes, which
    evict must refuse to touch."""
    json_keys = sorted(k for k in client.scan_iter(match="redis:*", count=1000) if k != b"redis:not-an-entry")
    pickle_keys = sorted(k for k in client.scan_iter(match="llm_cache:*", count=1000) if not k.endswith(b"0" * 64))
    chosen = json_keys[::2] + [k for i, k in enumerate(pickle_keys) if i % 13]
    path = tmp_path / "keys.txt"
    lines = [k.decode() for k in chosen] + ["redis:not-an-entry", "llm_cache:" + "0" * 64]
    path.write_text("\n".join(lines) + "\n")
    return str(path), set(chosen)


def restore_all(run, *backups) -> None:
    for backup in backups:
        result = run("restore", str(backup), "--json")
        assert result.exit_code == 0, result.output


# Batches are 1,000 keys: 1 is the first batch, 2 the second (the last).
@pytest.mark.slow
@pytest.mark.parametrize("point", ["evict.backed_up:1", "evict.sent:1", "evict.settled:1", "evict.backed_up:2"])
def test_evict_killed(point, fresh, client, run, redis_url, tmp_path):
    before = fresh
    keys_file, selected = selection_file(tmp_path, client)
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    killed = cacheops_process(
        redis_url, "evict", "--keys-from", keys_file, "--backup", str(first), "--yes", env={faults.ENV: point}
    )
    assert killed.returncode == KILLED, killed.stderr

    after = snapshot(client)
    deleted = set(before) - set(after)
    assert deleted <= selected  # nothing outside the selection
    assert deleted <= backed_up_keys(first)  # every deleted entry is in the backup
    assert all(after[k] == before[k] for k in after)  # nothing changed in place
    if point.startswith("evict.backed_up:1"):
        assert not deleted  # killed after the first backup and before any delete
    # The operations log has the killed run, unfinished, with the backup that holds what it deleted.
    (killed_event,) = run.json_lines("history", "--action", "evict")
    assert killed_event["state"] == "unfinished" and killed_event["backup"] == str(first)
    assert keys_file in killed_event["selectors"]["keys"]

    # A re-run finishes the job: every selected entry gone, everything else as it was.
    rerun = run("evict", "--keys-from", keys_file, "--backup", str(second), "--yes", "--json")
    evictions = [e["state"] for e in run.json_lines("history", "--action", "evict")]
    assert evictions == (["done", "unfinished"] if selected - deleted else ["unfinished"])  # none: nothing ran
    if selected - deleted:
        assert rerun.exit_code == 0, rerun.output
        assert json.loads(rerun.stdout)["result"]["deleted"] == len(selected - deleted)
    else:  # the second batch's deletes were already sent when the first one settled (pipelining)
        assert rerun.exit_code == ExitCode.NOT_FOUND and "nothing was deleted" in rerun.stderr
    assert set(snapshot(client)) == set(before) - selected

    # The backups, restored, give back the keyspace exactly.
    restore_all(run, *(b for b in (first, second) if b.exists()))
    assert snapshot(client) == before


def test_restore_killed(fresh, client, run, tmp_path):
    before = fresh
    backup = tmp_path / "all.jsonl"
    assert run("evict", "--cache", "llm_cache", "--backup", str(backup), "--yes").exit_code == 0
    evicted = set(before) - set(snapshot(client))
    assert len(evicted) == PICKLE_ENTRIES

    killed = cacheops_process(run.url, "restore", str(backup), env={faults.ENV: "restore.batch:2"})
    assert killed.returncode == KILLED, killed.stderr
    partial = snapshot(client)
    back = evicted & set(partial)
    assert 0 < len(back) < len(evicted)  # two batches of 500 were written back
    assert all(partial[k] == before[k] for k in back)  # whole, identical entries only

    again = run.json("restore", str(backup))
    assert again["restored"] == len(evicted) - len(back) and again["identical"] == len(back)
    restores = run.json_lines("history", "--action", "restore")
    assert [(e["state"], e["backup"]) for e in restores] == [("done", str(backup)), ("unfinished", str(backup))]
    assert "restore (unfinished)" in run("history", "--table").stdout
    assert snapshot(client) == before


def test_warm_killed(client, run, redis_url, tmp_path):
    prompts = [{"prompt": f"Warm question {i}?", "answer": f"Warm answer {i}."} for i in range(6)]
    playbook = tmp_path / "playbook.yaml"
    playbook.write_text(
        yaml.safe_dump(
            {
                "prompts": prompts,
                "warm": {
                    "name": "killed",
                    "models": [{"import": "cacheops.demo:demo_chat_model", "kwargs": {"model_name": "gpt-4o-mini"}}],
                    "caches": [{"type": "langchain_exact"}],
                },
            }
        )
    )
    killed = cacheops_process(redis_url, "warm", str(playbook), env={faults.ENV: "warm.written:2"})
    assert killed.returncode == KILLED, killed.stderr
    assert len(list(client.scan_iter(match="redis:*"))) == 2  # written one by one: two landed whole

    (killed_event,) = run.json_lines("history", "--action", "warm")
    assert killed_event["state"] == "unfinished" and killed_event["selectors"]["file"] == str(playbook)

    report = run.json("warm", str(playbook))
    assert report["totals"]["written"] == 4 and report["totals"]["already_cached"] == 2, report["totals"]
    # Every prompt is now a hit for the app (the fake model would answer "-").
    from langchain_redis import RedisCache

    chat = writers.demo_chat_model("gpt-4o-mini")
    with writers.llm_cache(RedisCache(redis_url=redis_url)):
        answers = [chat.invoke(p["prompt"]).content for p in prompts]
    assert answers == [p["answer"] for p in prompts]


@pytest.mark.slow
def test_migrate_killed(client, run, redis_url):
    qa = [(f"Migrating question number {i}?", f"Answer {i}.") for i in range(25)]
    writers.langchain_semantic(redis_url, qa, ttl=3600)
    source = snapshot(client, "llmcache:*")
    target = "all-minilm-l6-v2-llmcache"
    args = ("migrate-embeddings", "--cache", "llmcache", "--to", writers.MINILM, "--batch", "10", "--yes")
    killed = cacheops_process(redis_url, *args, env={faults.ENV: "migrate.batch:2"}, timeout=300)
    assert killed.returncode == KILLED, killed.stderr
    assert len(list(client.scan_iter(match=f"{target}:*"))) == 20  # batches land whole (MULTI/EXEC)
    assert snapshot(client, "llmcache:*").keys() == source.keys()  # the source is only read

    result = run.json(*args)["result"]
    assert (result["migrated"], result["skipped"]) == (5, 20)
    migrations = run.json_lines("history", "--action", "migrate-embeddings")
    assert [e["state"] for e in migrations] == ["done", "unfinished"]
    assert migrations[1]["selectors"]["target"] == target
    assert len(list(client.scan_iter(match=f"{target}:*"))) == len(qa)
