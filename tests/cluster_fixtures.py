"""Redis Cluster and Sentinel fixtures: started once per session, only when a test asks for them
(conftest imports these names so pytest finds them). Same binary and modules as the one-node server."""

from __future__ import annotations

import pytest
import redis
from redis.cluster import RedisCluster

from cacheops.server.embedded_cluster import EmbeddedCluster, EmbeddedSentinel


@pytest.fixture(scope="session")
def redis_cluster():
    """3 primaries + 3 replicas, search and JSON modules on every node."""
    with EmbeddedCluster(primaries=3, replicas=1) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_sentinel():
    """1 primary, 1 replica, 3 sentinels watching them as `mymaster`."""
    with EmbeddedSentinel() as setup:
        yield setup


def reset_cluster(cluster: RedisCluster) -> None:
    """Every primary emptied and its indexes dropped (test-only: the tool itself never flushes)."""
    for node in cluster.get_primaries():
        node_client = cluster.get_redis_connection(node)
        for name in node_client.execute_command("FT._LIST"):
            node_client.execute_command("FT.DROPINDEX", name)
        node_client.flushall()
        node_client.config_set("maxmemory-policy", "noeviction")


def wait_for_replicas(cluster: RedisCluster) -> None:
    """Every primary's writes reached its replica (WAIT), so replica reads see what the primary has."""
    for node in cluster.get_primaries():
        cluster.get_redis_connection(node).execute_command("WAIT", 1, 5000)


@pytest.fixture
def cluster_client(redis_cluster):
    """A cluster client over an emptied cluster."""
    client = RedisCluster.from_url(redis_cluster.url)
    reset_cluster(client)
    yield client
    client.close()


@pytest.fixture
def sentinel_primary(redis_sentinel):
    """A client of the Sentinel setup's current primary, emptied."""
    client = redis.Redis(host="127.0.0.1", port=redis_sentinel.current_primary_port())
    for name in client.execute_command("FT._LIST"):
        client.execute_command("FT.DROPINDEX", name)
    client.flushall()
    yield client
    client.close()
