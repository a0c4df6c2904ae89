"""Test fixtures: a real redis-server with the search and JSON modules, started by the suite.

The server comes from cacheops.server.embedded (the same code `cacheops demo` uses). Every test gets an
empty keyspace; cache entries are written by the real libraries (see writers.py).
"""

from __future__ import annotations

import os

import pytest
import redis
from click.testing import CliRunner
from cluster_fixtures import cluster_client, redis_cluster, redis_sentinel, sentinel_primary  # noqa: F401  (fixtures)
from venvs import venv_writers  # noqa: F401  (fixture: writers that need their own virtualenv)

from cacheops.cli import cli
from cacheops.server.embedded import EmbeddedRedis


@pytest.fixture(scope="session")
def redis_server():
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture(scope="session")
def redis_url(redis_server) -> str:
    return redis_server.url


def reset_keyspace(client: redis.Redis) -> None:
    for name in client.execute_command("FT._LIST"):
        client.execute_command("FT.DROPINDEX", name)
    client.flushall()  # test-only: the tool itself never flushes


@pytest.fixture
def client(redis_url):
    c = redis.Redis.from_url(redis_url)
    reset_keyspace(c)
    c.config_set("maxmemory-policy", "noeviction")
    yield c
    c.close()


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path, monkeypatch):
    monkeypatch.setenv("CACHEOPS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CACHEOPS_CONFIG", str(tmp_path / "config.yaml"))
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("REDIS_PASSWORD", raising=False)


class Cli:
    def __init__(self, url: str):
        self.url = url
        self.runner = CliRunner()

    def __call__(self, *args: str, url: str | None = None, input: str | None = None):
        target = self.url if url is None else url
        argv = ["--url", target, *args] if target else list(args)
        return self.runner.invoke(cli, argv, input=input, catch_exceptions=False)

    def json(self, *args: str):
        import json

        result = self(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    def json_lines(self, *args: str):
        import json

        result = self(*args, "--json")
        assert result.exit_code == 0, result.output
        return [json.loads(line) for line in result.output.splitlines() if line.strip()]


@pytest.fixture
def run(redis_url, client):
    return Cli(redis_url)


def pytest_configure(config):
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
