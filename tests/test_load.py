"""Load: scan, evict and migrate-embeddings while another process keeps writing about 5,000 cache
entries a second to the same server (loopback, bounded in count and time). Nothing outside the
selection is lost, the counts reconcile, and the figures are recorded (CACHEOPS_FIGURES=FILE
appends them as JSON lines; docs/reliability.md quotes them).

The writer replays a langchain-redis RedisCache document, written once by the library itself, under
new keys of the library's own shape (prefix:md5(prompt):md5(llm_string)) in pipelined batches:
LangChain's own write path tops out near a thousand entries a second in one Python process.
The writer paces itself to WRITES_PER_SECOND; what it held depends on the machine, so the rate is
recorded, not asserted (speed belongs to bench/, not to timed tests).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time

import pytest
import writers
from reliability import exact_entries

from cacheops.ops import migrate
from cacheops.semantic.vectorizers import load_vectorizer
from cacheops.server.connection import connect, resolve_spec

WRITES_PER_SECOND = 5000
MAX_SECONDS = 60  # the writer stops by itself after this, whatever happens to the test


def writer_process(port: int, template_key: bytes, prefixes: list[str], stop_file, report_file, ready_file):
    code = f"""
import hashlib, json, os, time
import redis
r = redis.Redis(host="127.0.0.1", port={port})
template_key = {template_key!r}
document = r.execute_command("JSON.GET", template_key)
llm_hash = template_key.rsplit(b":", 1)[1].decode()
rate, batch, i = {WRITES_PER_SECOND}, 50, 0
start = time.monotonic()
while not os.path.exists({str(stop_file)!r}) and time.monotonic() - start < {MAX_SECONDS}:
    pipe = r.pipeline(transaction=False)
    for _ in range(batch):
        prompt_hash = hashlib.md5(f"live {{i}}".encode()).hexdigest()
        prefix = {prefixes!r}[(i // batch) % {len(prefixes)}]
        pipe.execute_command("JSON.SET", f"{{prefix}}:{{prompt_hash}}:{{llm_hash}}", "$", document)
        i += 1
    pipe.execute()
    if i == batch:
        open({str(ready_file)!r}, "w").close()
    time.sleep(max(0.0, start + i / rate - time.monotonic()))
open({str(report_file)!r}, "w").write(json.dumps({{"writes": i, "seconds": time.monotonic() - start}}))
"""
    return subprocess.Popen([sys.executable, "-c", code])


def live_keys(prefixes: list[str], llm_hash: bytes, count: int, batch: int = 50) -> dict[str, set[bytes]]:
    """The keys the writer wrote, per prefix (it takes the prefixes in turn, a batch each)."""
    out: dict[str, set[bytes]] = {p: set() for p in prefixes}
    for i in range(count):
        prefix = prefixes[(i // batch) % len(prefixes)]
        out[prefix].add(
            b"%s:%s:%s" % (prefix.encode(), hashlib.md5(f"live {i}".encode()).hexdigest().encode(), llm_hash)
        )
    return out


STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_writer_outlives_its_test():
    yield
    while STARTED:
        process = STARTED.pop()
        if process.poll() is None:
            process.kill()
            process.wait()


class Writer:
    """The app under load: started before the operation, stopped after, its writes counted."""

    def __init__(self, port, template_key, prefixes: list[str], tmp_path):
        self.stop_file, self.report, ready = tmp_path / "stop", tmp_path / "writer.json", tmp_path / "ready"
        for stale in (self.stop_file, self.report, ready):
            stale.unlink(missing_ok=True)
        self.process = writer_process(port, template_key, prefixes, self.stop_file, self.report, ready)
        STARTED.append(self.process)
        self.prefixes, self.llm_hash = prefixes, template_key.rsplit(b":", 1)[1]
        deadline = time.monotonic() + 60
        while not ready.exists():  # writing before the operation starts
            assert self.process.poll() is None and time.monotonic() < deadline, "the writer did not start"
            time.sleep(0.05)
        time.sleep(0.3)

    def stop(self) -> dict:
        self.stop_file.touch()
        self.process.wait(timeout=30)
        figures = json.loads(self.report.read_text())
        figures["per_second"] = figures["writes"] / figures["seconds"]
        return figures

    def keys(self, figures, prefix: str) -> set[bytes]:
        return live_keys(self.prefixes, self.llm_hash, figures["writes"])[prefix]


def record(name: str, **figures) -> None:
    path = os.environ.get("CACHEOPS_FIGURES")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"test": name, **figures}) + "\n")


@pytest.fixture
def kept(client, redis_url):
    """Entries that must survive everything: 1,000 RedisCache documents under prefix "keep"."""
    exact_entries(redis_url, 1000, prefix="keep")
    keys = set(client.scan_iter(match="keep:*", count=1000))
    assert len(keys) == 1000
    return keys


@pytest.mark.slow
def test_scan_and_evict_under_writes(kept, client, run, redis_url, redis_server, tmp_path):
    exact_entries(redis_url, 3000, prefix="drop", start=10_000)
    doomed = set(client.scan_iter(match="drop:*", count=1000))
    template = sorted(kept)[0]

    # scan while the app writes new entries into the cache being listed
    writer = Writer(redis_server.port, template, ["keep"], tmp_path)
    started, listings = time.monotonic(), []
    while not listings or (len(listings) < 3 and time.monotonic() - started < 3):  # up to 3 listings, ~3 s
        listings.append(run.json_lines("scan", "--cache", "keep"))
    scan_seconds = time.monotonic() - started
    figures = writer.stop()
    written = writer.keys(figures, "keep")
    for rows in listings:
        listed = {r["key"].encode() for r in rows}
        assert kept <= listed  # SCAN's guarantee: every key there throughout is listed
        assert listed <= kept | written  # nothing listed that is not there
        assert all(r["layout"] == "langchain_exact" and r["answer"] for r in rows)
    assert figures["writes"] >= 1000, figures  # really under writes (the rate held is recorded, not asserted)
    record("scan", writes_per_second=round(figures["per_second"]), writes=figures["writes"], listings=len(listings),
           entries_checked=sum(map(len, listings)), seconds=round(scan_seconds, 2), lost=0)  # fmt: skip

    # evict one cache while the app writes into another one and into the cache being evicted
    writer = Writer(redis_server.port, template, ["keep", "drop"], tmp_path)
    backup = tmp_path / "evict.jsonl"
    started = time.monotonic()
    result = run("evict", "--cache", "drop", "--yes", "--backup", str(backup), "--json")
    evict_seconds = time.monotonic() - started
    figures = writer.stop()
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.stdout)["result"]

    remaining = set(client.scan_iter(match="keep:*", count=1000))
    must_survive = kept | written | writer.keys(figures, "keep")
    lost = must_survive - remaining
    assert not lost  # nothing outside the selection
    assert not doomed & set(client.scan_iter(match="drop:*", count=1000))  # everything selected went
    backed_up = [json.loads(line) for line in backup.read_text().splitlines()[1:]]
    saved = {d["key"].encode() for d in backed_up if "key" in d}
    assert outcome["deleted"] == len(saved) - sum(1 for d in backed_up if "not_deleted" in d)
    assert doomed <= saved  # counts reconcile: every deleted entry is in the backup
    assert figures["writes"] >= 1000, figures  # really under writes (the rate held is recorded, not asserted)
    record("evict", writes_per_second=round(figures["per_second"]), writes=figures["writes"],
           entries_checked=len(must_survive), deleted=outcome["deleted"], seconds=round(evict_seconds, 2),
           lost=len(lost))  # fmt: skip


@pytest.mark.slow
def test_migrate_under_writes(kept, client, run, redis_url, redis_server, tmp_path):
    qa = [(f"Load question {i}?", f"Load answer {i}.") for i in range(30)]
    writers.langchain_semantic(redis_url, qa, ttl=3600)
    source = set(client.scan_iter(match="llmcache:*", count=1000))  # near-identical prompts were cache hits
    template = sorted(kept)[0]
    # Through the library, the model loaded first: the writer runs while entries are re-embedded,
    # not while a model loads (the CLI path is the same plan -> execute).
    cacheops_client = connect(resolve_spec(redis_url))
    vectorizer = load_vectorizer(writers.MINILM)
    the_plan = migrate.plan(cacheops_client, "llmcache", writers.MINILM, vectorizer=vectorizer)
    writer = Writer(redis_server.port, template, ["keep"], tmp_path)
    started = time.monotonic()
    result = migrate.execute(cacheops_client, the_plan, vectorizer=vectorizer, batch=20)
    seconds = time.monotonic() - started
    figures = writer.stop()
    target = "all-minilm-l6-v2-llmcache"
    assert result.migrated == len(source)
    assert len(set(client.scan_iter(match=f"{target}:*", count=1000))) == len(source)
    assert set(client.scan_iter(match="llmcache:*", count=1000)) == source  # the source is only read
    lost = (kept | writer.keys(figures, "keep")) - set(client.scan_iter(match="keep:*", count=1000))
    assert not lost
    assert figures["writes"] >= 1000, figures  # really under writes (the rate held is recorded, not asserted)
    record("migrate-embeddings", writes_per_second=round(figures["per_second"]), writes=figures["writes"],
           entries_checked=len(kept) + figures["writes"] + len(source), migrated=len(source), seconds=round(seconds, 2),
           lost=len(lost))  # fmt: skip
