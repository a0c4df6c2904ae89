"""A Redis Cluster changing under a scan (docs/cluster.md, "Failures"): a primary fails over, slots
migrate; and a cluster over TLS. Each test starts its own small cluster (the session's stays whole),
without modules: the entries are langchain_community RedisCache's hashes, written by the library
with a RedisCluster client, plus plain keys with hash tags where a slot needs several keys.

The topology changes happen at a chosen batch of the scan (faults.ARMED["scan.batch"]), so the
interleavings are the same on every run; --count makes the batches small.
"""

from __future__ import annotations

import json
import shutil
import socket

import pytest
import redis
import writers
from conftest import Cli
from langchain_community.cache import RedisCache
from redis.cluster import RedisCluster
from redis.crc import key_slot

from cacheops import faults
from cacheops.demo import demo_chat_model
from cacheops.server import cluster_scan
from cacheops.server.embedded_cluster import HOST, EmbeddedCluster

QA = [(f"topology question {i}", f"topology answer {i}") for i in range(120)]


def write_entries(url: str, qa=QA, **client_kwargs) -> None:
    """langchain_community's RedisCache (the legacy exact cache: hashes, no module needed) writing through
    a RedisCluster client, so each entry lands on the shard of its key. Its constructor accepts only a
    redis.Redis, so the cluster client is put in its place after (the library's own update() writes:
    HSET and EXPIRE in a pipeline, which a cluster pipeline routes by key). It swallows write errors,
    so the number of keys written is checked."""
    client = RedisCluster.from_url(url, **client_kwargs)
    cache = RedisCache(redis_=redis.Redis())  # never used: replaced below
    cache.redis = client
    with writers.llm_cache(cache):
        chat = demo_chat_model("gpt-4o-mini")
        for prompt, answer in qa:
            chat.answer(prompt, answer)
    assert sum(1 for _ in client.scan_iter()) == len(qa)  # every entry written, on every shard
    client.close()


def listed_keys(result) -> list[str]:
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    return [json.loads(line)["key"] for line in result.stdout.splitlines() if line.strip()]


@pytest.fixture
def armed():
    faults.ARMED.clear()
    yield faults.ARMED
    faults.ARMED.clear()


def at_batches(steps: dict[int, callable]):
    """An action for the scan.batch point that runs steps[n] when the n-th batch is handed over."""
    seen = 0

    def action() -> None:
        nonlocal seen
        seen += 1
        if seen in steps:
            steps[seen]()

    return action


def test_a_failover_mid_scan_resumes_on_the_promoted_replica(armed, monkeypatch):
    """One cluster, three failovers: (1) the scan waits for the promoted replica and lists every entry
    exactly once; (2) a shard past the names it can remember stops with the clear error; (3) a shard
    with no replica left stops with the clear error once the wait is over."""
    with EmbeddedCluster(primaries=3, replicas=1, modules=()) as cluster:
        write_entries(cluster.url)
        everything = sorted(k.decode() for k in RedisCluster.from_url(cluster.url).scan_iter())
        assert len(everything) == len(QA)
        on_cluster = Cli(cluster.url)

        # (1) shard 1's primary dies once that shard has listed a batch or two (batches come round-robin)
        victim = cluster.primary_nodes[1]
        armed["scan.batch"] = faults.on_nth(5, lambda: cluster.kill(victim))
        result = on_cluster("scan", "--count", "5", "--json")
        assert result.exit_code == 0, result.output
        keys = listed_keys(result)
        assert sorted(keys) == everything  # every entry, none twice
        assert f"lost primary 127.0.0.1:{victim.port} in the middle of the scan; waiting up to 7s" in result.stderr
        took_over = next(line for line in result.stderr.splitlines() if "took over" in line)
        assert "already listed are skipped" in took_over and "(0 entries" not in took_over
        promoted = cluster.wait_for_failover(victim)
        assert f"127.0.0.1:{promoted.port} took over" in took_over

        # (2) too many names to remember: the clear error, exit 3, one line
        monkeypatch.setattr(cluster_scan, "TRACK_LIMIT", 3)
        second = cluster.primary_nodes[2]
        armed["scan.batch"] = faults.on_nth(5, lambda: cluster.kill(second))
        result = on_cluster("scan", "--count", "5", "--json")
        assert result.exit_code == 3, result.output
        assert f"lost primary 127.0.0.1:{second.port} in the middle of the scan" in result.stderr
        assert "more entries than cacheops remembers" in result.stderr and "incomplete" in result.stderr
        assert len([line for line in result.stderr.splitlines() if line.startswith("error")]) == 1
        monkeypatch.undo()
        cluster.wait_for_failover(second)
        armed.clear()
        assert sorted(listed_keys(on_cluster("scan", "--json"))) == everything  # the cluster is whole again

        # (3) shard 1's promoted replica has no replica of its own: nobody takes over
        armed["scan.batch"] = faults.on_nth(5, lambda: cluster.kill(promoted))
        result = on_cluster("scan", "--count", "5", "--json")
        assert result.exit_code == 3, result.output
        assert f"lost primary 127.0.0.1:{promoted.port}" in result.stderr
        assert "no replica took over its slots within 7s: the listing is incomplete" in result.stderr


def _tagged_slot(lo: int, hi: int, skip: set[int]) -> tuple[str, int]:
    """A hash tag whose slot lies in [lo, hi]."""
    for i in range(100_000):
        slot = key_slot(f"m{i}".encode())
        if lo <= slot <= hi and slot not in skip:
            return f"m{i}", slot
    raise AssertionError("no tag found")


class Migration:
    """CLUSTER SETSLOT IMPORTING/MIGRATING, MIGRATE and SETSLOT NODE, as redis-cli --cluster reshard
    sends them, on the test's own plain connections."""

    def __init__(self, cluster: EmbeddedCluster, slot: int, source, target):
        self.cluster, self.slot, self.tag = cluster, slot, ""
        self.source, self.target = redis.Redis(port=source.port), redis.Redis(port=target.port)
        self.target_port = target.port
        self.source_id = self.source.execute_command("CLUSTER", "MYID").decode()
        self.target_id = self.target.execute_command("CLUSTER", "MYID").decode()

    def begin(self) -> None:
        self.target.execute_command("CLUSTER", "SETSLOT", self.slot, "IMPORTING", self.source_id)
        self.source.execute_command("CLUSTER", "SETSLOT", self.slot, "MIGRATING", self.target_id)

    def move(self, fraction: float = 1.0) -> None:
        keys = self.source.execute_command("CLUSTER", "GETKEYSINSLOT", self.slot, 1000)
        keys = keys[: max(1, int(len(keys) * fraction))] if fraction < 1 else keys
        if keys:
            self.source.execute_command("MIGRATE", HOST, self.target_port, "", 0, 5000, "KEYS", *keys)

    def finish(self) -> None:
        self.move()
        for node in [self.target, self.source] + [redis.Redis(port=n.port) for n in self.cluster.nodes]:
            node.execute_command("CLUSTER", "SETSLOT", self.slot, "NODE", self.target_id)


@pytest.mark.parametrize("path", ["script", "plain"])
def test_slot_migrations_during_a_scan_list_every_entry_once(armed, path):
    """Slots moving between shards while the scan runs: one migrating already when it starts (half of its
    keys moved), one moved whole mid-scan, one finished mid-scan, one left half done at the end (read
    from both nodes, the importing one with ASKING). Every entry is listed exactly once, and every node
    stays up (on Redis 8.2, a CLIENT NO-TOUCH read of a migrating slot's key outside a script crashes it)."""
    with EmbeddedCluster(primaries=3, replicas=0, modules=()) as cluster:
        write_entries(cluster.url)
        client = RedisCluster.from_url(cluster.url)
        nodes = cluster.primary_nodes
        ranges = [(0, 5460), (5461, 10921), (10922, 16383)]  # EmbeddedCluster's shares
        plan = {}
        used: set[int] = set()
        for name, (source, target) in {"at_start": (0, 1), "whole": (1, 2), "finished": (2, 0), "half": (0, 2)}.items():
            tag, slot = _tagged_slot(*ranges[source], used)
            used.add(slot)
            for i in range(12):
                client.set(f"{{{tag}}}:plain {i}", f"value {i}")
            plan[name] = Migration(cluster, slot, nodes[source], nodes[target])
            plan[name].tag = tag
        everything = sorted(k.decode() for k in client.scan_iter())

        plan["at_start"].begin()
        plan["at_start"].move(0.5)
        armed["scan.batch"] = at_batches(
            {
                3: lambda: (plan["whole"].begin(), plan["whole"].move(), plan["whole"].finish()),
                5: plan["finished"].begin,
                7: lambda: plan["finished"].move(0.5),
                9: plan["at_start"].finish,
                11: plan["finished"].finish,
                13: lambda: (plan["half"].begin(), plan["half"].move(0.5)),
            }
        )
        args = ("scan", "--unknown", "--count", "4", "--json") + (("--plain",) if path == "plain" else ())
        result = Cli(cluster.url)(*args)
        assert result.exit_code == 0, result.output
        keys = listed_keys(result)
        assert len(keys) == len(set(keys)), [k for k in keys if keys.count(k) > 1]  # never twice
        assert sorted(keys) == everything  # every entry at least once
        assert "slots moved during the scan" in result.stderr
        assert all(node.process.poll() is None for node in cluster.nodes)  # nothing crashed

        armed.clear()  # the half-done migration still in place: a scan from scratch is exact too
        again = listed_keys(Cli(cluster.url)(*args))
        assert sorted(again) == everything
        if path == "script":  # a plain single-key read of the moving slot's key is refused, not sent
            moving_key = f"{{{plan['half'].tag}}}:plain 0"
            shown = Cli(cluster.url)("show", moving_key)
            assert shown.exit_code == 25 and "being migrated" in shown.output, shown.output
            assert len(shown.output.strip().splitlines()) == 1
            assert all(node.process.poll() is None for node in cluster.nodes)


TLS_SERVER = shutil.which("redis-server")


@pytest.mark.skipif(
    TLS_SERVER is None or shutil.which("openssl") is None,
    reason="needs Debian's redis-server (built with TLS) and openssl: apt-get install redis-server",
)
def test_caches_and_scan_over_tls_on_a_cluster(tmp_path):
    """Debian's redis-server 7.0 (the embedded one has no TLS): 3 primaries with a TLS port and the
    cluster bus in TLS; the entries written by the library over TLS; cacheops over rediss://."""
    from test_tls import make_ca, make_cert

    make_ca(tmp_path, "ca")
    make_ca(tmp_path, "other-ca")
    make_cert(tmp_path, "ca", "server", san="IP:127.0.0.1,DNS:localhost")
    tls = {"cert": str(tmp_path / "server.crt"), "key": str(tmp_path / "server.key"), "ca": str(tmp_path / "ca.crt")}
    with EmbeddedCluster(primaries=3, replicas=0, modules=(), binary=TLS_SERVER, tls=tls) as cluster:
        write_entries(cluster.tls_url, QA[:30], ssl_ca_certs=tls["ca"])
        plain = RedisCluster.from_url(cluster.url)
        per_node = [plain.get_redis_connection(n).dbsize() for n in plain.get_primaries()]
        assert sorted(per_node) != [0, 0, 30] and sum(per_node) == 30  # on every shard
        on_tls = Cli(cluster.tls_url)
        caches = on_tls.json("--tls-ca-file", tls["ca"], "caches")
        assert caches["scanned_keys"] == 30 and [c["entries"] for c in caches["caches"]] == [30]
        listed = on_tls.json_lines("--tls-ca-file", tls["ca"], "scan")
        assert sorted(e["answer"] for e in listed) == sorted(a for _q, a in QA[:30])
        refused = on_tls("--tls-ca-file", str(tmp_path / "other-ca.crt"), "caches")
        assert refused.exit_code == 3 and "certificate was refused" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1


def _taken_then_free(taken_port: int):
    """A free_port() that first hands out a port already in use, then real free ones."""
    from cacheops.server.embedded import free_port

    handed = iter([taken_port])
    return lambda: next(handed, None) or free_port()


def test_nodes_move_to_new_ports_when_the_ones_found_free_are_taken(monkeypatch):
    """free_port() finds a port free, but an outgoing connection can take it before the server binds it
    (both draw from the ephemeral range): seen as a cluster that failed to start under load. A port in
    use is handed out on purpose, as the first node's bus port and as a single server's port: each
    starts on new ones."""
    from cacheops.server import embedded, embedded_cluster

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        taken_port = taken.getsockname()[1]
        monkeypatch.setattr(embedded_cluster, "free_port", _taken_then_free(taken_port))
        with EmbeddedCluster(primaries=3, replicas=0, modules=()) as cluster:
            assert taken_port not in cluster.bus_ports.values()
            assert redis.Redis(host=HOST, port=cluster.nodes[0].port).cluster("info")["cluster_state"] == "ok"
        monkeypatch.setattr(embedded, "free_port", _taken_then_free(taken_port))
        with embedded.EmbeddedRedis(modules=()) as server:
            assert server.port != taken_port
            assert server.ping()
