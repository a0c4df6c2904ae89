"""The stats Redis client track() builds when it is not handed one: from `url=`, or beside the
cache's own client, with the recorder's short timeouts and no retries.

A Redis Cluster needs a cluster client (redis-py RedisCluster): it routes each of the flush's
commands to the primary serving its key, and the flush needs no transaction (its pipelines are
plain, and every command names one key). A cluster is recognised as RedisVL and cacheops do: a URL
with several hosts or `cluster=true`, a cache whose own client is a RedisCluster; and, for a plain
URL of one node, by asking it (INFO cluster). Discovering a cluster takes round trips (and a plain
URL's question one more), which the app's thread must not wait for: such a client is built by the
flush thread at its first use (LazyClient), and a failed build is a failed flush, tried again at
the next one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.connection import SSLConnection
from redis.retry import Retry


def no_retry() -> Retry:
    return Retry(NoBackoff(), 0)


def settings(timeout: float) -> dict:
    """What every connection the recorder opens gets: `timeout` per connect and per reply."""
    return {"socket_timeout": timeout, "socket_connect_timeout": timeout}


class LazyClient:
    """A client built at its first use (in the flush thread), then used as is."""

    def __init__(self, build: Callable[[], object]):
        self._build = build
        self._client: object | None = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str):
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._build()
                client = self._client
        return getattr(client, name)


def cluster_flag(url: str) -> bool | None:
    """True: a cluster URL (several hosts, or cluster=true); False: cluster=false; None: ask."""
    parts = urlsplit(url)
    flag = dict(parse_qsl(parts.query)).get("cluster")
    if flag is not None:
        return flag.lower() in ("1", "true", "yes", "on")
    return True if "," in parts.netloc.rpartition("@")[2] else None


def client_from_url(url: str, timeout: float):
    """The stats client of `url`: a redis.Redis for one server, a (lazy) RedisCluster for a cluster."""
    flag = cluster_flag(url)
    if flag is False:
        return redis.Redis.from_url(
            _without_cluster(url), **settings(timeout), retry_on_timeout=False, retry=no_retry()
        )
    if flag is True:
        return LazyClient(lambda: _cluster_from_url(url, timeout))
    return LazyClient(lambda: _ask(url, timeout))


def cluster_beside(found: RedisCluster, timeout: float) -> LazyClient:
    """A RedisCluster over the same nodes and login as the cache's own, with the recorder's timeouts."""
    kwargs = found.nodes_manager.connection_kwargs
    copied = {
        k: v
        for k, v in kwargs.items()
        if k in ("username", "password", "credential_provider", "protocol", "ssl") or k.startswith("ssl_")
    }
    connection_class = kwargs.get("connection_class")
    if isinstance(connection_class, type) and issubclass(connection_class, SSLConnection):
        copied["ssl"] = True
    nodes = [ClusterNode(node.host, node.port) for node in found.nodes_manager.startup_nodes.values()]
    options = {**settings(timeout), **copied}
    return LazyClient(lambda: RedisCluster(startup_nodes=nodes, retry=no_retry(), **options))


def _ask(url: str, timeout: float):
    """One node's URL: a cluster client if that node is in cluster mode (INFO cluster says), else it."""
    single = redis.Redis.from_url(url, **settings(timeout), retry_on_timeout=False, retry=no_retry())
    try:
        enabled = str(single.info("cluster").get("cluster_enabled", 0)) == "1"
    except redis.ResponseError:  # INFO refused (an ACL): taken for one server
        return single
    if not enabled:
        return single
    single.close()
    return _cluster_from_url(url, timeout)


def _cluster_from_url(url: str, timeout: float) -> RedisCluster:
    """A RedisCluster over the URL's hosts (one or several, RedisVL's form), with its login and TLS."""
    parts = urlsplit(_without_cluster(url))
    auth, at, hosts = parts.netloc.rpartition("@")
    seeds = []
    for item in hosts.split(","):
        one = urlsplit(f"//{item}")
        seeds.append(ClusterNode(one.hostname or "localhost", one.port or 6379))
    first = urlunsplit((parts.scheme, auth + at + hosts.split(",")[0], parts.path, parts.query, ""))
    options = redis.connection.parse_url(first)  # login, TLS and query options
    for name in ("host", "port", "db", "path"):
        options.pop(name, None)
    connection_class = options.pop("connection_class", None)
    if isinstance(connection_class, type) and issubclass(connection_class, SSLConnection):
        options["ssl"] = True
    return RedisCluster(startup_nodes=seeds, retry=no_retry(), **settings(timeout), **options)


def _without_cluster(url: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "cluster"]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))
