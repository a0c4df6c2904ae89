"""The server restarted, or the connection cut, in the middle of a scan and of an evict (at points
chosen with cacheops.faults, not by timing luck): a clear error or a resumed run, never a wrong
listing or a lost entry."""

from __future__ import annotations

import json
import socket
import threading

import pytest
import redis
import writers
from conftest import Cli
from reliability import backed_up_keys, exact_entries, snapshot

from cacheops import faults
from cacheops.exit_codes import ExitCode
from cacheops.server.embedded import EmbeddedRedis

ENTRIES = 2500  # three scan batches and more


@pytest.fixture
def durable_server(tmp_path):
    """A server that keeps its data across a restart (an RDB written at shutdown)."""
    server = EmbeddedRedis(workdir=str(tmp_path / "redis"), extra_args=("--save", "3600 1"))
    (tmp_path / "redis").mkdir()
    server.start()
    writers.pickle_llm_cache(server.url, [(f"q{i}", f"a{i}") for i in range(ENTRIES - 200)], ttl=86400)
    exact_entries(server.url, 200)
    yield server
    server.stop()


@pytest.fixture
def armed():
    yield faults.ARMED
    faults.ARMED.clear()


def restart(server: EmbeddedRedis) -> None:
    server.stop()  # SIGTERM: the RDB is written
    server.start()


def entry_keys(client) -> set[bytes]:
    return {k for k in client.scan_iter(count=1000) if not k.startswith(b"cacheops:")}


@pytest.mark.parametrize("path", ["--plain", "--json"])  # the plain pipeline, the server-side script
def test_server_restart_mid_scan(path, durable_server, armed):
    client = redis.Redis.from_url(durable_server.url)
    everything = {k.decode() for k in entry_keys(client)}
    armed["scan.batch"] = faults.on_nth(1, lambda: restart(durable_server))
    result = Cli(durable_server.url)("scan", path, "--json")
    listed = [json.loads(line)["key"] for line in result.stdout.splitlines() if line.strip()]
    if result.exit_code == 0:  # resumed: then the listing must be exactly right
        assert sorted(listed) == sorted(everything)
    else:
        assert result.exit_code == ExitCode.CONNECTION and "Traceback" not in result.output, result.output
        assert len(result.stderr.strip().splitlines()) == 1
        assert set(listed) <= everything
    if path == "--plain":
        # No read-ahead thread: the next SCAN reconnects to the new server with a stale cursor,
        # which the run-id check catches.
        assert result.exit_code == ExitCode.CONNECTION
        assert "restarted during the scan" in result.stderr and "run the command again" in result.stderr
    assert {k.decode() for k in entry_keys(redis.Redis.from_url(durable_server.url))} == everything  # nothing lost
    rows = Cli(durable_server.url).json_lines("scan")  # run again: everything
    assert sorted(r["key"] for r in rows) == sorted(everything)


@pytest.mark.parametrize("point", ["evict.backed_up:1", "evict.sent:1"])
def test_server_restart_mid_evict(point, durable_server, armed, tmp_path):
    client = redis.Redis.from_url(durable_server.url)
    before = snapshot(client)
    name, n = point.split(":")
    armed[name] = faults.on_nth(int(n), lambda: restart(durable_server))
    run = Cli(durable_server.url)
    first = tmp_path / "first.jsonl"
    result = run("evict", "--cache", "llm_cache", "--yes", "--backup", str(first), "--json")
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    assert result.exit_code in (0, ExitCode.CONNECTION), result.output
    faults.ARMED.clear()
    client = redis.Redis.from_url(durable_server.url)
    deleted = set(before) - set(snapshot(client))
    assert all(k.startswith(b"llm_cache:") for k in deleted)
    assert deleted <= backed_up_keys(first)
    second = tmp_path / "second.jsonl"
    again = run("evict", "--cache", "llm_cache", "--yes", "--backup", str(second))
    assert again.exit_code in (0, ExitCode.NOT_FOUND), again.output
    assert not list(client.scan_iter(match="llm_cache:*"))
    for backup in (first, second):
        if backup.exists():
            assert run("restore", str(backup)).exit_code == 0
    assert snapshot(client) == before


class CuttingProxy:
    """A loopback TCP proxy in front of the server that can cut every open connection at once."""

    def __init__(self, target_port: int):
        self.target = target_port
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.open: list[socket.socket] = []
        self.lock = threading.Lock()
        self.cuts = 0
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            with self.lock:
                self.open += [conn, upstream]
            for src, dst in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self.pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def pump(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        with self.lock:
            doomed, self.open = self.open, []
            self.cuts += 1
        for s in doomed:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass

    def close(self):
        self.sock.close()
        self.cut()


@pytest.fixture
def proxy(durable_server):
    p = CuttingProxy(durable_server.port)
    yield p
    p.close()


def test_connection_cut_mid_scan_resumes_on_the_same_server(proxy, durable_server, armed):
    everything = {k.decode() for k in entry_keys(redis.Redis.from_url(durable_server.url))}
    armed["scan.batch"] = faults.on_nth(1, proxy.cut)
    result = Cli(f"redis://127.0.0.1:{proxy.port}/0")("scan", "--json")
    assert proxy.cuts == 1
    listed = [json.loads(line)["key"] for line in result.stdout.splitlines() if line.strip()]
    if result.exit_code == 0:  # reconnected to the same server: SCAN resumes with its cursor
        assert set(listed) == everything
    else:
        assert result.exit_code == ExitCode.CONNECTION and "Traceback" not in result.output, result.output


@pytest.mark.parametrize("point", ["evict.backed_up:1", "evict.sent:2"])
def test_connection_cut_mid_evict(point, proxy, durable_server, armed, tmp_path):
    client = redis.Redis.from_url(durable_server.url)
    before = snapshot(client)
    name, n = point.split(":")
    armed[name] = faults.on_nth(int(n), proxy.cut)
    run = Cli(f"redis://127.0.0.1:{proxy.port}/0")
    first = tmp_path / "first.jsonl"
    result = run("evict", "--cache", "llm_cache", "--yes", "--backup", str(first), "--json")
    assert proxy.cuts == 1
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    assert result.exit_code in (0, ExitCode.CONNECTION), result.output
    faults.ARMED.clear()
    deleted = set(before) - set(snapshot(client))
    assert all(k.startswith(b"llm_cache:") for k in deleted)
    assert deleted <= backed_up_keys(first)
    second = tmp_path / "second.jsonl"
    again = run("evict", "--cache", "llm_cache", "--yes", "--backup", str(second))
    assert again.exit_code in (0, ExitCode.NOT_FOUND), again.output
    assert not list(client.scan_iter(match="llm_cache:*"))
    for backup in (first, second):
        if backup.exists():
            assert run("restore", str(backup)).exit_code == 0
    assert snapshot(client) == before
