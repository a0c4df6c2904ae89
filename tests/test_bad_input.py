"""Bad input: one clear line on stderr, a documented exit code, never a traceback."""

import json

import pytest
import writers

from cacheops.exit_codes import ExitCode
from cacheops.server.embedded import EmbeddedRedis, free_port


def assert_clean_error(result, code: ExitCode, *needles: str):
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 or " ".join(lines).startswith("error:"), result.output
    for needle in needles:
        assert needle in result.output, result.output


def test_unreachable_server(run):
    port = free_port()
    result = run("caches", url=f"redis://127.0.0.1:{port}/0")
    assert_clean_error(result, ExitCode.CONNECTION, "cannot reach", str(port))


def test_wrong_password_is_never_printed():
    with EmbeddedRedis(password="s3cret-pass", modules=()) as server:
        from conftest import Cli

        run = Cli(server.url)
        wrong = f"redis://:hunter2-wrong@127.0.0.1:{server.port}/0"
        result = run("scan", url=wrong)
        assert_clean_error(result, ExitCode.AUTH, "authentication failed", "***")
        assert "hunter2-wrong" not in result.output
        result = run("scan", url=f"redis://127.0.0.1:{server.port}/0")  # no password at all
        assert_clean_error(result, ExitCode.AUTH, "authentication failed")
        assert run("caches", "--json").exit_code == 0  # right password: works, and prints no secret
        assert "s3cret-pass" not in run("doctor", "--json").output


def test_server_without_modules():
    with EmbeddedRedis(modules=()) as server:
        from conftest import Cli

        run = Cli(server.url)
        result = run("doctor", "--json")
        assert result.exit_code == ExitCode.PROBLEMS_FOUND
        checks = {c["area"]: c for c in json.loads(result.output)["checks"]}
        assert checks["module search"]["status"] == "problem" and checks["module json"]["status"] == "problem"
        # Inspection still works on a plain server (there is simply no semantic index).
        assert run("caches", "--json").exit_code == 0
        assert run("scan", "--json").exit_code == 0


def test_binary_non_utf8_keys(run, client, redis_url):
    writers.langchain_exact(redis_url, [("Hi", "Hello")])
    client.set(b"redis:\xff\xfe:binary", b"\x00\x01\x02")
    client.hset(b"\xc3\x28bad", mapping={b"f": b"\xff"})
    rows = run.json_lines("scan", "--unknown")
    assert {r["layout"] for r in rows} == {"langchain_exact", "unknown"}
    keys = {r["key"] for r in rows}
    assert "redis:\\xff\\xfe:binary" in keys
    assert run("caches", "--json").exit_code == 0
    assert run("scan", "--table").exit_code == 0


def test_ten_megabyte_value_is_truncated(run, client, redis_url):
    big = "x" * (10 * 1024 * 1024)
    writers.redisvl_semantic(redis_url, [{"prompt": "big one", "response": big}], name="bigcache")
    for plain in ([], ["--plain"]):
        rows = run.json_lines("scan", *plain)
        assert len(rows) == 1
        row = rows[0]
        assert row["truncated"] is True
        assert row["answer"] is None or len(row["answer"]) <= 64 * 1024
        assert row["bytes"] > 10 * 1024 * 1024
    assert len(run("scan", "--table").output) < 20_000


def test_unexpected_type_under_cache_prefix(run, client, redis_url):
    writers.langchain_exact(redis_url, [("Hi", "Hello")])
    writers.langchain_semantic(redis_url, [("Hi", "Hello")])
    client.set("redis:session:42", "user=7")  # foreign key under the exact cache's prefix
    client.lpush("llmcache:" + "a" * 64, "not a hash")  # right key shape, wrong type
    client.hset("llmcache:" + "b" * 64, mapping={"foo": "bar"})  # right shape and type, wrong content
    client.hset("llmcache_v2:" + "c" * 64, mapping={"prompt": "x"})  # under index llmcache by prefix bleed
    rows = run.json_lines("scan")
    assert sorted(r["layout"] for r in rows) == ["langchain_exact", "langchain_semantic"]
    catalog = run.json("caches")
    by_name = {c["name"]: c for c in catalog["caches"]}
    assert by_name["redis"]["entries"] == 1 and by_name["redis"]["foreign_keys"] == 1
    assert by_name["llmcache"]["entries"] == 1 and by_name["llmcache"]["foreign_keys"] == 2
    assert "llmcache_v2" not in by_name
    assert catalog["unknown_keys"] == 4


def test_bad_url_and_profile(run, tmp_path, monkeypatch):
    assert_clean_error(run("caches", url="http://localhost:1"), ExitCode.CONFIG, "redis://")
    config = tmp_path / "config.yaml"
    monkeypatch.setenv("CACHEOPS_CONFIG", str(config))
    config.write_text("profiles:\n  prod:\n    url: redis://localhost:1\n    colour: blue\n")
    assert_clean_error(run("--profile", "prod", "caches", url=""), ExitCode.CONFIG, "colour")
    config.write_text("profiles: [unclosed\n")
    assert_clean_error(run("--profile", "prod", "caches", url=""), ExitCode.CONFIG, "config.yaml:")
    config.write_text("profiles:\n  prod:\n    url: redis://localhost:1\n")
    assert_clean_error(run("--profile", "staging", "caches", url=""), ExitCode.CONFIG, "prod")


def test_profile_with_password_env(redis_url, tmp_path, monkeypatch, client):
    from conftest import Cli

    with EmbeddedRedis(password="pw-from-env", modules=()) as server:
        config = tmp_path / "config.yaml"
        config.write_text(
            f"profiles:\n  local:\n    url: redis://127.0.0.1:{server.port}/0\n    password_env: MY_REDIS_PW\n"
        )
        monkeypatch.setenv("CACHEOPS_CONFIG", str(config))
        run = Cli("")
        assert_clean_error(run("--profile", "local", "caches"), ExitCode.CONFIG, "MY_REDIS_PW")
        monkeypatch.setenv("MY_REDIS_PW", "pw-from-env")
        result = run("--profile", "local", "caches", "--json")
        assert result.exit_code == 0 and "pw-from-env" not in result.output


@pytest.mark.parametrize(
    "url,shown",
    [
        ("redis://user:topsecret@host:6379/0", "redis://user:***@host:6379/0"),
        ("rediss://:p%40ss@host/1", "rediss://:***@host/1"),
        ("redis://host:6379", "redis://host:6379"),
    ],
)
def test_redact_url(url, shown):
    from cacheops.server.connection import redact_url

    assert redact_url(url) == shown


@pytest.fixture
def http_service():
    """A real non-Redis TCP service on loopback: Python's own HTTP server."""
    import http.server
    import threading

    class Quiet(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):  # the server shares the test's stderr with the CLI
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_service_that_is_not_redis_gets_its_own_exit_code(run, http_service):
    result = run("caches", url=f"redis://127.0.0.1:{http_service}/0")
    assert_clean_error(result, ExitCode.NOT_REDIS, "does not answer in the Redis protocol", str(http_service))


def test_a_database_that_does_not_exist_gets_its_own_exit_code(run, redis_url):
    base = redis_url.rsplit("/", 1)[0]
    assert_clean_error(run("caches", url=f"{base}/99"), ExitCode.NO_SUCH_DATABASE, "database 99 does not exist")
    result = run("--db", "16", "scan", url=base)
    assert_clean_error(result, ExitCode.NO_SUCH_DATABASE, "database 16 does not exist")


def test_connection_errors_read_as_one_sentence(run):
    result = run("caches", url=f"redis://127.0.0.1:{free_port()}/0")
    assert ".;" not in result.output and "Connection refused;" in result.output
