"""The quick catalog (key shape for every key, values for a sample per cache) against the full one."""

from __future__ import annotations

import writers
from test_scan_paths import Q, _fill

from cacheops.inspect import quick_catalog


def _comparable(doc: dict) -> dict:
    doc = dict(doc)
    for name in ("seconds", "values", "scan_path"):
        doc.pop(name)
    caches = []
    for c in doc["caches"]:
        c = dict(c)
        c["ttl_policy"] = c["ttl_policy"].split(":")[0].split("..")[0]  # TTLs tick between the runs
        caches.append(c)
    doc["caches"] = caches
    return doc


def test_small_caches_are_exact_figure_for_figure(run, redis_url, client, venv_writers):
    _fill(redis_url, client, venv_writers)
    quick, full = run.json("caches"), run.json("caches", "--full")
    assert quick["values"] == "sampled" and full["values"] == "every key"
    assert all(c["sampled"] is None for c in quick["caches"] + full["caches"])
    assert _comparable(quick) == _comparable(full)
    assert _comparable(run.json("stats"))["caches"] == _comparable(run.json("stats", "--full"))["caches"]


def test_large_caches_say_what_is_sampled(run, redis_url, client, monkeypatch):
    monkeypatch.setattr(quick_catalog, "SAMPLE_PER_CACHE", 3)
    writers.langchain_semantic(redis_url, [(f"{Q} {i}", f"answer {i}") for i in range(8)], model="gpt-4o", ttl=3600)
    client.hset("llmcache:" + "0" * 64, mapping={"foo": "bar"})  # the entries' key shape, not an entry
    quick = next(c for c in run.json("caches")["caches"] if c["name"] == "llmcache")
    full = next(c for c in run.json("caches", "--full")["caches"] if c["name"] == "llmcache")
    assert full["entries"] == 8 and full["sampled"] is None
    assert quick["sampled"]["of"] == 9 and quick["sampled"]["keys"] == 3 and "models" in quick["sampled"]["figures"]
    assert {"entries", "bytes", "ttl_histogram"} <= set(quick["sampled"]["estimated"]) and quick["libraries"]
    # estimates: the sample's figures times 9/3 (the odd hash, if sampled, is unknown, not an entry)
    sampled_entries = quick["entries"] // 3
    assert quick["entries"] == 3 * sampled_entries and sampled_entries in (2, 3)
    assert quick["ttl_histogram"]["<1h"] == quick["entries"] and quick["ttl_histogram"]["none"] == 0
    assert quick["foreign_keys"] == 9 - quick["entries"]
    assert sum(quick["models"].values()) == sampled_entries and set(quick["models"]) == {"gpt-4o"}
    table = run("caches", "--table").output
    assert "~100%" in table and "--full" in " ".join(table.split())


def test_names_alone_tell_the_candidate_caches():
    """The per-head memo of NameShapes answers as probing every layout would, key by key."""
    from cacheops.layouts import NameShapes

    md5a, md5b, sha = "a" * 32, "0123456789abcdef" * 2, "f" * 64
    shapes = NameShapes()
    keys = [
        f"redis:{md5a}:{md5b}",
        f"redis:{md5b}:{md5a}",
        f"llmcache:{sha}",
        f"llmcache:{'1' * 64}",
        f"doc:cache:{md5a}:{md5b}",
        f"doc:cache:{md5b}:{md5a}",  # community semantic: the cache is named by the first md5
        md5a,
        sha,
        "session:42",
        "cacheops:oplog",
    ]
    for key in keys * 2:  # the second round answers from the memo
        assert shapes.caches_of(key.encode()) == NameShapes()._probe(key.encode()), key
    assert shapes.caches_of(f"doc:cache:{md5a}:{md5b}".encode()) != shapes.caches_of(
        f"doc:cache:{md5b}:{md5a}".encode()
    )
    assert "llmcache" in shapes.caches_of(f"llmcache:{sha}".encode())
    assert shapes.caches_of(b"session:42") == ()


def test_classify_memo_claims_as_every_layout_would():
    """classify's per-shape memo of claiming layouts answers as asking each layout's cache_of would,
    key by key and type by type: an all-digit run (a GPTCache id) and a name cut from the run
    (community semantic) included."""
    from cacheops.layouts import _BY_TYPE, _claims, _claims_of
    from cacheops.server.keyspace import RawRecord

    md5a, md5b, sha = "a" * 32, "0123456789abcdef" * 2, "f" * 64
    keys = [
        f"redis:{md5a}:{md5b}",
        f"redis:{md5b}:{md5a}",
        f"redis:{'1' * 32}:{md5a}",
        f"llmcache:{sha}",
        f"llmcache:{'1' * 64}",
        f"x:doc:{'1' * 64}",  # GPTCache's vector shape "<ns>doc:<digits>" too
        f"x:doc:{'1' * 63}a",
        f"doc:cache:{md5a}:{md5b}",
        f"doc:cache:{md5b}:{md5a}",
        f"llm_cache:{sha}",
        f":{sha}",
        md5a,
        sha,
        "session:42",
    ]
    for _round in range(2):  # the second round answers from the memo
        for key in keys:
            for type_ in _BY_TYPE:
                rec = RawRecord(key.encode(), type_, -1, None)
                assert _claims(rec) == _claims_of(RawRecord(key.encode(), type_, -1, None)), (key, type_)
