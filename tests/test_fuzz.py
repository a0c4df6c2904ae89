"""Fuzz: keys and values from hypothesis (binary, huge, invalid UTF-8 and JSON, wrong types and
shapes, under every cache prefix, look-alike keys, and real entry keys overwritten with garbage)
beside real entries, through scan, show, caches, evict --dry-run and evict: never a traceback or an
internal error, and nothing deleted that scan did not list as a cache entry. Every key's listing row
(Layout.list_row, what scan --json prints) is the row its decode gives.

Hostile YAML (alias bombs, deep nesting, huge files, tags that construct objects) is refused
quickly, with the file and the line.
"""

from __future__ import annotations

import json
import time

import pytest
import redis
import writers
from conftest import Cli
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from reliability import backed_up_keys
from test_listing_decode import assert_rows_are_decoded_rows

from cacheops.exit_codes import ExitCode
from cacheops.inspect.catalog import build_context, decode_record
from cacheops.ownkeys import OPLOG_STREAM
from cacheops.server.keyspace import ScanOptions, iter_batches

EXAMPLES = 40
FIELDS = [b"prompt", b"response", b"prompt_vector", b"llm_string", b"metadata", b"inserted_at", b"updated_at",
          b"entry_id", b"return_val", b"embedding", b"data", b"key"]  # fmt: skip


@pytest.fixture(scope="module")
def base(redis_server):
    """Real entries of several layouts, kept as DUMPs: each example starts from them."""
    client = redis.Redis.from_url(redis_server.url)
    for name in client.execute_command("FT._LIST"):
        client.execute_command("FT.DROPINDEX", name)
    client.flushall()  # test-only
    url = redis_server.url
    writers.langchain_exact(url, [("Hi", "Hello"), ("Bye", "Goodbye")])
    writers.langchain_semantic(url, [("Capital of France?", "Paris.")], embeddings=writers.hashing_embeddings())
    writers.redisvl_semantic(url, [{"prompt": "Opening hours?", "response": "Nine to five."}], name="faq")
    writers.pickle_llm_cache(url, [("Pickled?", "Yes")])
    writers.pickle_smart_cache(url, [("k1", {"answer": "smart"}, ["t"])])
    writers.community_exact(url, [("Legacy?", "Yes")])
    dumps = {k: (client.dump(k), client.pttl(k)) for k in client.scan_iter(count=1000)}
    indexes = client.execute_command("FT._LIST")
    client.close()
    return dumps, indexes


def reset(client: redis.Redis, dumps: dict) -> None:
    """Back to the base entries (the indexes stay; they pick the hashes up again)."""
    pipe = client.pipeline(transaction=False)
    for key in client.scan_iter(count=1000):
        pipe.unlink(key)
    for key, (dump, pttl) in dumps.items():
        pipe.restore(key, max(pttl, 0), dump)
    pipe.execute()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
langchain_like = st.fixed_dictionaries(
    {
        "lc": st.integers(0, 2),
        "type": st.sampled_from(["constructor", "secret", "not_implemented", "x"]),
        "id": st.lists(st.text(max_size=10), max_size=4),
        "kwargs": json_values,
    }  # fmt: skip
)
junk_bytes = st.one_of(
    st.binary(max_size=64),
    st.binary(min_size=1, max_size=16).map(lambda b: b"\xff\xfe" + b + b"\xc3\x28"),  # invalid UTF-8
    st.sampled_from([b"{", b"[1,", b'{"a":}', b"\x80\x04\x95", b"\x80\x05K\x01.", b"null", b"[]", b"{}"]),
    json_values.map(lambda v: json.dumps(v).encode()),
    langchain_like.map(lambda v: json.dumps([v]).encode()),
    st.integers(70_000, 300_000).map(lambda n: b"x" * n),  # over the 64 KB listing cut
)
values = st.one_of(
    st.tuples(st.just("string"), junk_bytes),
    st.tuples(
        st.just("hash"),
        st.dictionaries(
            st.sampled_from(FIELDS) | st.binary(min_size=1, max_size=8), junk_bytes, min_size=1, max_size=5
        ),
    ),  # fmt: skip
    st.tuples(st.just("json"), json_values | langchain_like.map(lambda v: [v])),
    st.tuples(st.just("list"), st.lists(st.binary(max_size=16), min_size=1, max_size=4)),
    st.tuples(st.just("set"), st.sets(st.binary(max_size=16), min_size=1, max_size=4)),
    st.tuples(st.just("zset"), st.dictionaries(st.binary(max_size=8), st.floats(-1e6, 1e6), min_size=1, max_size=4)),
)


def keys_from(real: list[bytes]):
    real_keys = st.sampled_from(sorted(real))
    return st.one_of(
        real_keys,  # a real entry overwritten with something else
        st.tuples(real_keys, st.binary(max_size=12)).map(lambda t: t[0][: len(t[0]) // 2] + t[1]),
        st.tuples(real_keys, st.integers(0, 2**64)).map(lambda t: t[0].rsplit(b":", 1)[0] + b":%x" % t[1]),
        st.tuples(real_keys, st.binary(min_size=1, max_size=6)).map(lambda t: t[0] + t[1]),
        st.binary(min_size=1, max_size=40),
    )


def write(client: redis.Redis, key: bytes, value) -> None:
    kind, data = value
    client.unlink(key)
    if kind == "string":
        client.set(key, data)
    elif kind == "hash":
        client.hset(key, mapping=data)
    elif kind == "json":
        client.execute_command("JSON.SET", key, "$", json.dumps(data))
    elif kind == "list":
        client.rpush(key, *data)
    elif kind == "set":
        client.sadd(key, *data)
    else:
        client.zadd(key, data)


def shown(key: bytes) -> str:
    return key.decode("utf-8", "backslashreplace")


def check(result, *allowed: int) -> None:
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    assert result.exit_code in (0, *allowed), result.output


def test_fuzzed_keyspace(base, client, redis_url, tmp_path):
    dumps, _ = base
    run = Cli(redis_url)
    counter = iter(range(10**6))

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,  # the same examples on every run: CI failures reproduce
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: it can take minutes; the example is reported as is
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(st.tuples(keys_from(list(dumps)), values), min_size=1, max_size=4))
    def example(items):
        reset(client, dumps)
        for key, value in items:
            write(client, key, value)
        fuzzed = {key for key, _ in items}
        before = {k: client.dump(k) for k in client.scan_iter(count=1000)}
        ctx = build_context(client)
        for batch in iter_batches(client, ScanOptions()):  # scan --json's rows are decode's, whatever the value
            for rec in batch:
                if rec.type != "none":
                    assert_rows_are_decoded_rows(rec, ctx, decode_record(rec, ctx, full=False))

        scan = run("scan", "--unknown", "--json")
        check(scan)
        rows = [json.loads(line) for line in scan.stdout.splitlines() if line.strip()]
        entries = {r["key"] for r in rows if r["layout"] != "unknown"}
        check(run("scan", "--table"))
        check(run("caches", "--json"))
        check(run("stats", "--json"))
        for key in sorted(fuzzed)[:2]:
            try:
                text = key.decode("utf-8")
            except UnicodeDecodeError:
                continue
            check(run("show", text, "--json"), ExitCode.NOT_FOUND)
        caches = sorted({r["cache"] for r in rows if r["layout"] != "unknown" and r.get("cache")})
        for cache in caches:
            check(run("evict", "--cache", cache, "--dry-run", "--json"), ExitCode.NOT_FOUND)
        assert {k: client.dump(k) for k in client.scan_iter(count=1000)} == before  # nothing changed so far

        for cache in caches:
            backup = tmp_path / f"evict-{next(counter)}.jsonl"
            check(run("evict", "--cache", cache, "--yes", "--backup", str(backup), "--json"), ExitCode.NOT_FOUND)
        after = {k for k in client.scan_iter(count=1000) if k != OPLOG_STREAM.encode()}
        deleted = set(before) - after
        saved = set().union(*(backed_up_keys(p) for p in tmp_path.glob("evict-*.jsonl")))
        assert deleted <= saved
        for key in deleted:  # every deleted key was a listed entry, or a companion of one
            assert shown(key) in entries or key.startswith(b"cacheops:tags:") or key.startswith(b"smart_cache:tag:"), (
                key
            )
        for path in tmp_path.glob("evict-*.jsonl"):
            path.unlink()

    example()


HOSTILE_YAML = {
    "alias-bomb.yaml": (
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]\n" for i in range(9))
        + "prompts: *j\n",
        ":7:",
        "alias bomb",
    ),
    "deep-flow.yaml": ("prompts: " + "[" * 5000 + "]" * 5000 + "\n", ":1:", "nesting"),
    "deep-block.yaml": ("prompts:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 200)), ":65:", "levels deep"),
    "object.yaml": ("prompts:\n  - !!python/object/apply:os.system ['echo pwned']\n", ":2:", "is not allowed"),
    "name.yaml": ("prompts: !!python/name:os.system\n", ":1:", "is not allowed"),
    "binary.yaml": (b"\xff\xfe\x00prompts: []\n", ":", "not UTF-8"),
}


@pytest.mark.parametrize("command", ["warm", "audit-labelled", "config"])
def test_hostile_yaml_is_refused_quickly(command, tmp_path, monkeypatch, run):
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as f:
        f.write(b"prompts:\n" + b"  - prompt: x\n" * (3 * 2**20))  # 42 MB
    cases = {**HOSTILE_YAML, "huge.yaml": (None, ":", "too large")}
    for name, (text, where, what) in cases.items():
        path = tmp_path / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        elif text is not None:
            path.write_text(text)
        started = time.monotonic()
        if command == "warm":
            result = run("warm", str(path), "--dry-run")
        elif command == "audit-labelled":
            result = run("audit", "--labels", str(path))
        else:
            monkeypatch.setenv("CACHEOPS_CONFIG", str(path))
            result = Cli("")("--profile", "any", "caches")
        assert time.monotonic() - started < 3, name
        assert result.exit_code in (ExitCode.CONFIG, ExitCode.USAGE), (name, result.output)
        assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1, result.output
        assert f"{name}{where}" in result.stderr, result.stderr  # the file, and the line where there is one
        assert what in result.stderr, result.stderr
