"""No password or token ever leaves cacheops: a server with requirepass and an ACL user with a
password, reached every way a password can be given (URL, --password, REDIS_PASSWORD, a profile's
password or password_env, --username), through every command that reads or writes, and through the
errors (wrong password, server down, TLS to a plain port, a bad db). Then every output is searched:
stdout, stderr (the GitHub Actions annotations of `check` included), the backups and every other
file in the state directory, the operations log, the warm and verify reports, the JUnit files of
`check`, the exception text. None of the secrets, in any spelling, appears."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
import redis
import writers
import yaml
from conftest import Cli

from cacheops.server.embedded import EmbeddedRedis, free_port

ADMIN_PASSWORD = "adm1n+Secret/=%pw"  # characters that URL-encode, so both spellings are searched
USER_PASSWORD = "us3r-Secret-9c2e"
API_TOKEN = "sk-test-cacheops-4f1b2c3d5e6f7a8b"  # an API key in the environment, as apps have


def spellings(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote(secret)}


@pytest.fixture
def locked_server():
    with EmbeddedRedis(password=ADMIN_PASSWORD) as server:
        yield server


def test_no_secret_in_any_output(locked_server, tmp_path, monkeypatch):
    port = locked_server.port
    admin_url = f"redis://:{quote(ADMIN_PASSWORD, safe='')}@127.0.0.1:{port}/0"
    admin = redis.Redis(host="127.0.0.1", port=port, password=ADMIN_PASSWORD)
    admin.execute_command("ACL", "SETUSER", "ops", "on", f">{USER_PASSWORD}", "~*", "&*", "+@all")
    writers.langchain_exact(admin_url, [("Hi", "Hello"), ("Bye", "Goodbye"), ("Again?", "Yes")])
    writers.redisvl_semantic(admin_url, [{"prompt": "Capital of France?", "response": "Paris."}])
    monkeypatch.setenv("OPENAI_API_KEY", API_TOKEN)
    monkeypatch.setenv("CACHEOPS_DEBUG", "")  # errors as users see them

    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "profiles": {
                    "inline": {"url": f"redis://127.0.0.1:{port}/0", "username": "ops", "password": USER_PASSWORD},
                    "fromenv": {"url": f"redis://ops@127.0.0.1:{port}/0", "password_env": "OPS_PASSWORD"},
                }
            }
        )
    )
    monkeypatch.setenv("CACHEOPS_CONFIG", str(config))
    monkeypatch.setenv("OPS_PASSWORD", USER_PASSWORD)
    playbook = tmp_path / "playbook.yaml"
    playbook.write_text(
        yaml.safe_dump(
            {
                "prompts": [{"prompt": "Warm?", "answer": "Warmed."}],
                "warm": {
                    "models": [{"import": "cacheops.demo:demo_chat_model", "kwargs": {"model_name": "gpt-4o-mini"}}],
                    "caches": [{"type": "langchain_exact"}],
                },
            }
        )
    )

    outputs: list[str] = []

    def run(*args, url: str = "", env: dict | None = None, code: int | None = 0):
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        result = Cli(url)(*args)
        for name in env or {}:
            monkeypatch.delenv(name)
        outputs.append(f"{result.stdout}\n{result.stderr}")  # not the arguments: they hold the secrets
        if result.exception and not isinstance(result.exception, SystemExit):
            outputs.append(repr(result.exception))
        assert "Traceback" not in result.output, result.output
        if code is not None:
            assert result.exit_code == code, result.output
        return result

    user_url = f"redis://ops:{USER_PASSWORD}@127.0.0.1:{port}/0"
    plain_url = f"redis://127.0.0.1:{port}/0"
    backup = tmp_path / "state" / "evicted.jsonl"
    # Every command, with the password given each way.
    run("caches", "--json", url=admin_url)
    run("scan", "--json", url=user_url)
    run("show", "--prompt", "Hi", "--json", url=plain_url, env={"REDIS_PASSWORD": ADMIN_PASSWORD})
    run("--username", "ops", "--password", USER_PASSWORD, "stats", "--json", url=plain_url)
    run("--profile", "inline", "doctor", "--json", code=None)
    run("--profile", "fromenv", "doctor", code=None)
    run("--profile", "inline", "caches")
    run("evict", "--prompt", "Bye", "--backup", str(backup), "--yes", "--json", url=admin_url)
    run("evict", "--prompt", "Again?", "--yes", url=user_url)  # the default backup folder
    run("restore", str(backup), "--json", url=user_url)
    key = json.loads(run("scan", "--json", url=admin_url).stdout.splitlines()[0])["key"]
    run("tag", key, "team=search", url=admin_url)
    run("warm", str(playbook), "--json", url=user_url)
    run("history", "--json", url=admin_url)
    run("history", "--table", url=user_url)
    # The deploy workflow: verify, the CI gate (a JUnit file, GitHub annotations on a failure),
    # replay, expire, and a semantic cache flushed (its backup in the state directory).
    run("warm", str(playbook), "--verify", "--json", url=user_url)
    run(
        "--password", USER_PASSWORD, "warm", str(playbook), "--verify", "--table", url=f"redis://ops@127.0.0.1:{port}/0"
    )
    junit = tmp_path / "junit.xml"
    run("check", str(playbook), "--warm", "--junit", str(junit), url=admin_url)
    gate = tmp_path / "gate.yaml"  # a prompt nobody warmed: a failing testcase and an annotation
    gate.write_text(playbook.read_text().replace("prompt: Warm?", "prompt: Never warmed?"))
    failing_junit = tmp_path / "failing-junit.xml"
    gated = run(
        "check", str(gate), "--junit", str(failing_junit), url=user_url, env={"GITHUB_ACTIONS": "true"}, code=16
    )
    assert "::error " in gated.stderr and "<failure" in failing_junit.read_text()
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Warm?\nHi\nNot cached?\n")
    run(
        "replay",
        str(prompts),
        "--playbook",
        str(playbook),
        "--json",
        url=plain_url,
        env={"REDIS_PASSWORD": ADMIN_PASSWORD},
    )
    run("replay", str(prompts), "--playbook", str(playbook), "--table", url=user_url)
    run("expire", "--cache", "redis", "--ttl", "7d", "--yes", "--json", url=user_url)
    run("--profile", "inline", "expire", "--cache", "redis", "--ttl-max", "1d", "--yes")
    run("migrate-embeddings", "--cache", "llmcache", "--flush", "--yes", url=admin_url)
    # Every error a password can end up in.
    run("caches", url=f"redis://ops:wrong-{USER_PASSWORD}@127.0.0.1:{port}/0", code=None)
    run("caches", url=f"redis://:{quote(ADMIN_PASSWORD, safe='')}@127.0.0.1:{free_port()}/0", code=None)
    run("--connect-timeout", "0.5", "caches", url=f"rediss://ops:{USER_PASSWORD}@127.0.0.1:{port}/0", code=None)
    run("caches", url=f"redis://ops:{USER_PASSWORD}@127.0.0.1:{port}/99", code=None)
    run("caches", url=f"redis://ops:{USER_PASSWORD}@127.0.0.1:notaport/0", code=None)
    run("caches", url=f"http://ops:{USER_PASSWORD}@127.0.0.1:{port}/0", code=None)

    # Where else cacheops wrote: its state directory (backups, ...), the operations log.
    files = [p for p in (tmp_path / "state").rglob("*") if p.is_file()]
    assert backup in files and len([p for p in files if p.suffix == ".jsonl"]) >= 2
    written = [p.read_bytes().decode("utf-8", "replace") for p in files]
    oplog = [repr(fields) for _, fields in admin.xrange("cacheops:oplog")]
    assert len(oplog) >= 8  # two evictions, a restore, two warms, two expires, a flush
    assert len([p for p in files if p.suffix == ".jsonl"]) >= 5  # evict x2, expire x2, flush backups
    junits = [p.read_text() for p in (junit, failing_junit)]
    everything = "\n".join(outputs + written + oplog + junits)
    assert "Hello" in everything and "Warm?" in everything  # the outputs were really collected
    assert "Never warmed?" in "\n".join(junits)
    for secret in (ADMIN_PASSWORD, USER_PASSWORD, API_TOKEN):
        for spelling in spellings(secret):
            assert spelling not in everything, f"{spelling!r} leaked"
