"""URL / profile -> a connected client. Nothing else in cacheops builds a Redis client.

Three topologies, one entry point (connect):
- one server: redis://, rediss://, unix://;
- Redis Cluster: the URL of any node (detected from INFO cluster_enabled), several seed nodes
  (redis://h1:p1,h2:p2, RedisVL's form) or `?cluster=true` / a profile's `cluster: true` to force it;
  the client is a redis-py RedisCluster, and topology.py names the nodes to fan out to;
- Sentinel: redis+sentinel:// or rediss+sentinel://[user:pass@]h1:p1,h2:p2/service[/db] (RedisVL's
  form; the service defaults to mymaster); the client follows the primary the sentinels name.
Passwords never leave this module in clear: every URL shown is redacted, and Redis errors are
translated into one-line CacheopsErrors with the password scrubbed.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import redis
from redis import exceptions as rex
from redis.cluster import ClusterNode, RedisCluster
from redis.sentinel import Sentinel

from ..config import load_config
from ..errors import AuthFailed, CacheopsError, ConfigError, ConnectionFailed, MissingModule, PermissionDenied
from .topology import Topology, attach_topology

DEFAULT_URL = "redis://localhost:6379"
SCHEMES = ("redis://", "rediss://", "unix://", "redis+sentinel://", "rediss+sentinel://")
SENTINEL_PORT = 26379
DEFAULT_SERVICE = "mymaster"


def redact_url(url: str) -> str:
    """The URL with any password replaced by *** (also with several hosts, which urlsplit cannot
    give a port for)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    userinfo, at, hosts = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return urlunsplit((parts.scheme, f"{user}:***@{hosts}", parts.path, parts.query, parts.fragment))


@dataclass
class UrlTarget:
    """What a URL names: its scheme, the host:port list, and the path and query redis-py must not see."""

    scheme: str
    hosts: list[tuple[str, int]]
    username: str | None
    password: str | None
    path: str
    query: dict[str, str]

    @property
    def sentinel(self) -> bool:
        return self.scheme.endswith("+sentinel")

    @property
    def tls(self) -> bool:
        return self.scheme.startswith("rediss")

    @property
    def service(self) -> str:
        return self.path.strip("/").split("/")[0] or DEFAULT_SERVICE

    @property
    def db(self) -> int | None:
        """The db of a URL path: /db, or /service/db for Sentinel."""
        parts = [p for p in self.path.strip("/").split("/") if p]
        text = parts[1] if self.sentinel and len(parts) > 1 else parts[0] if parts and not self.sentinel else None
        if self.query.get("db"):
            text = self.query["db"]
        return int(text) if text and text.isdigit() else None

    def cluster_flag(self) -> bool | None:
        value = self.query.get("cluster", "").lower()
        return True if value in ("true", "yes", "1") else False if value in ("false", "no", "0") else None


def parse_target(url: str) -> UrlTarget:
    parts = urlsplit(url)
    userinfo, _at, hostlist = parts.netloc.rpartition("@")
    user, _colon, password = userinfo.partition(":")
    default_port = SENTINEL_PORT if parts.scheme.endswith("+sentinel") else 6379
    hosts = []
    for item in filter(None, hostlist.split(",")):
        if item.startswith("["):  # [ipv6]:port
            host, _bracket, rest = item[1:].partition("]")
            port = rest.removeprefix(":")
        else:
            host, colon, port = item.rpartition(":")
            if not colon:
                host, port = item, ""
        if port and not port.isdigit():
            raise ConfigError(f"{redact_url(url)}: port {port!r} is not a number")
        hosts.append((host or "localhost", int(port) if port else default_port))
    query = {}
    for pair in filter(None, parts.query.split("&")):
        name, _eq, value = pair.partition("=")
        query[unquote(name)] = unquote(value)
    return UrlTarget(
        parts.scheme,
        hosts or [("localhost", default_port)],
        unquote(user) if user else None,
        unquote(password) if password else None,
        parts.path,
        query,
    )


@dataclass
class ConnectionSpec:
    url: str = DEFAULT_URL
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    db: int | None = None
    tls_ca_file: str | None = None
    cluster: bool | None = None  # None: detect (INFO cluster_enabled); True/False: forced
    read_from_replicas: bool = False  # inspection scans replicas (cluster shards, Sentinel replicas)
    source: str = "default"  # where the URL came from, for messages

    @property
    def display(self) -> str:
        return redact_url(self.url)

    def secrets(self) -> list[str]:
        found = [self.password] if self.password else []
        url_password = urlsplit(self.url).password
        if url_password:
            found += [url_password, unquote(url_password), quote(url_password)]
        return [s for s in found if s]

    def scrub(self, text: str) -> str:
        for secret in self.secrets():
            text = text.replace(secret, "***")
        return text


def resolve_spec(
    url: str | None = None,
    profile: str | None = None,
    username: str | None = None,
    password: str | None = None,
    db: int | None = None,
    tls_ca_file: str | None = None,
    cluster: bool | None = None,
    read_from_replicas: bool | None = None,
) -> ConnectionSpec:
    """Precedence: --url, then --profile (or the config's default_profile), then REDIS_URL, then localhost."""
    spec = ConnectionSpec()
    config = load_config() if (profile or not url) else None
    profile = profile or (config.default_profile if config and not os.environ.get("REDIS_URL") else None)
    if url:
        spec.url, spec.source = url, "--url"
    elif profile:
        prof = config.profiles.get(profile)
        if prof is None:
            known = ", ".join(sorted(config.profiles)) or "none defined"
            raise ConfigError(f"no profile {profile!r} in the config file (profiles: {known})")
        spec = ConnectionSpec(
            url=prof.url,
            username=prof.username,
            db=prof.db,
            tls_ca_file=prof.tls_ca_file,
            cluster=prof.cluster,
            read_from_replicas=prof.read_from_replicas,
            source=f"profile {profile}",
        )
        if prof.password_env:
            spec.password = os.environ.get(prof.password_env)
            if spec.password is None:
                raise ConfigError(f"profile {profile!r} reads its password from ${prof.password_env}, which is not set")
        else:
            spec.password = prof.password
    elif os.environ.get("REDIS_URL"):
        spec.url, spec.source = os.environ["REDIS_URL"], "REDIS_URL"
    if username:
        spec.username = username
    if password:
        spec.password = password
    if db is not None:
        spec.db = db
    if tls_ca_file:
        spec.tls_ca_file = tls_ca_file
    if cluster is not None:
        spec.cluster = cluster
    if read_from_replicas is not None:
        spec.read_from_replicas = read_from_replicas
    if not spec.url.startswith(SCHEMES):
        raise ConfigError(
            f"{spec.display}: a Redis URL starts with redis://, rediss://, unix://, redis+sentinel:// "
            "or rediss+sentinel://"
        )
    return spec


def connect(spec: ConnectionSpec, no_touch: bool = True) -> redis.Redis | RedisCluster:
    """A client with raw bytes replies (keys may be binary), checked with PING. no_touch: see
    _NoTouchMixin. A Redis Cluster gives a RedisCluster, Sentinel a client of the current primary;
    topology.topology(client) says which, and where to scan."""
    target = parse_target(spec.url) if not spec.url.startswith("unix://") else None
    if target and target.sentinel:
        return _connect_sentinel(spec, target, no_touch)
    if target and (len(target.hosts) > 1 or (spec.cluster or target.cluster_flag())):
        if spec.cluster is False or target.cluster_flag() is False:
            raise ConfigError(f"{spec.display}: several hosts need cluster mode, but cluster=false was given")
        return _connect_cluster(spec, target, no_touch)
    url = _without_query(spec.url, "cluster")
    with redis_errors(spec):
        try:
            pool = redis.ConnectionPool.from_url(url, **_client_kwargs(spec))
        except ValueError as exc:
            raise ConfigError(f"{spec.display}: {spec.scrub(str(exc))}") from None
        if no_touch:
            pool.connection_class = _no_touch_class(pool.connection_class)
        client = redis.Redis(connection_pool=pool)
        client.ping()
        if target and spec.cluster is None and target.cluster_flag() is None and _cluster_enabled(client):
            client.close()
            return _connect_cluster(spec, target, no_touch)
    return attach_topology(client, Topology("single", spec.read_from_replicas))


def _client_kwargs(spec: ConnectionSpec) -> dict:
    kwargs: dict = {"decode_responses": False, "socket_connect_timeout": 5, "socket_timeout": 60}
    if spec.username:
        kwargs["username"] = spec.username
    if spec.password:
        kwargs["password"] = spec.password
    if spec.db is not None:
        kwargs["db"] = spec.db
    if spec.tls_ca_file:
        if not os.path.exists(spec.tls_ca_file):
            raise ConfigError(f"TLS CA file {spec.tls_ca_file} does not exist")
        kwargs["ssl_ca_certs"] = spec.tls_ca_file
    return kwargs


def _without_query(url: str, name: str) -> str:
    parts = urlsplit(url)
    kept = [p for p in parts.query.split("&") if p and unquote(p.partition("=")[0]) != name]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "&".join(kept), parts.fragment))


def _cluster_enabled(client: redis.Redis) -> bool:
    try:
        return str(client.info("cluster").get("cluster_enabled", 0)) == "1"
    except rex.ResponseError:  # INFO forbidden by the ACL: only a forced cluster=true makes it a cluster
        return False


def _connect_cluster(spec: ConnectionSpec, target: UrlTarget, no_touch: bool) -> RedisCluster:
    """A RedisCluster over the seed nodes. Every node connection turns on CLIENT NO-TOUCH and READONLY
    (harmless on a primary; lets the scan engine read a replica when asked to)."""
    kwargs = _client_kwargs(spec)
    db = kwargs.pop("db", None) or target.db
    if db:
        raise ConfigError(f"{spec.display}: Redis Cluster has only db 0; drop the /{db} or --db")
    kwargs.pop("ssl_ca_certs", None)
    if target.tls:
        kwargs["ssl"] = True
        if spec.tls_ca_file:
            kwargs["ssl_ca_certs"] = spec.tls_ca_file
    if target.username and "username" not in kwargs:
        kwargs["username"] = target.username
    if target.password and "password" not in kwargs:
        kwargs["password"] = target.password
    with redis_errors(spec):
        try:
            client = RedisCluster(
                startup_nodes=[ClusterNode(host, port) for host, port in target.hosts],
                redis_connect_func=_node_setup(no_touch),
                **kwargs,
            )
        except rex.RedisClusterException as exc:  # every seed failed: say why (a wrong password is exit 4)
            if isinstance(translate_redis_error(exc, spec), AuthFailed):
                raise translate_redis_error(exc, spec) from None
            raise ConnectionFailed(f"{spec.display}: not a usable Redis Cluster ({spec.scrub(str(exc))})") from None
        client.ping(target_nodes=RedisCluster.ALL_NODES)
    client.cacheops_connect_kwargs = dict(kwargs, startup_nodes=list(target.hosts))
    return attach_topology(client, Topology("cluster", spec.read_from_replicas))


def _node_setup(no_touch: bool):
    def setup(connection) -> None:
        for args in (("CLIENT", "NO-TOUCH", "ON"),) * no_touch + (("READONLY",),):
            try:
                connection.send_command(*args)
                connection.read_response()
            except rex.ResponseError:
                pass  # Redis < 7.2 has no NO-TOUCH; a node that refuses READONLY is only ever used as a primary

    return setup


def _connect_sentinel(spec: ConnectionSpec, target: UrlTarget, no_touch: bool) -> redis.Redis:
    """The primary the sentinels name for the service (followed across failovers: the pool asks the
    sentinels again when a connection fails)."""
    kwargs = _client_kwargs(spec)
    if target.db is not None and spec.db is None:
        kwargs["db"] = target.db
    if target.username and "username" not in kwargs:
        kwargs["username"] = target.username
    if target.password and "password" not in kwargs:
        kwargs["password"] = target.password
    if target.tls:
        kwargs["ssl"] = True
    else:
        kwargs.pop("ssl_ca_certs", None)
    sentinel_kwargs = {k: v for k, v in kwargs.items() if k in ("username", "password", "ssl", "ssl_ca_certs")}
    sentinel_kwargs["socket_connect_timeout"] = kwargs["socket_connect_timeout"]
    sentinel = Sentinel(target.hosts, sentinel_kwargs=sentinel_kwargs, **kwargs)
    with redis_errors(spec):
        client = sentinel.master_for(target.service, redis_class=redis.Redis)
        if no_touch:
            client.connection_pool.connection_class = _no_touch_class(client.connection_pool.connection_class)
        try:
            client.ping()
        except rex.ConnectionError as exc:  # MasterNotFoundError is one
            raise ConnectionFailed(
                f"{spec.display}: no primary for service {target.service!r} from the sentinels "
                f"({spec.scrub(str(exc))}); check the service name and that the sentinels are up"
            ) from None
    replicas = None
    if spec.read_from_replicas:
        replicas = sentinel.slave_for(target.service, redis_class=redis.Redis)
        if no_touch:
            replicas.connection_pool.connection_class = _no_touch_class(replicas.connection_pool.connection_class)

    def connect_node(host: str, port: int) -> redis.Redis:
        return redis.Redis(host=host, port=port, **kwargs)

    return attach_topology(
        client,
        Topology(
            "sentinel",
            spec.read_from_replicas,
            service=target.service,
            replica_client=replicas,
            sentinel=sentinel,
            connect_node=connect_node,
        ),
    )


def library_client(client: redis.Redis | RedisCluster) -> redis.Redis | RedisCluster:
    """A second client over the same connection pool, to hand to a cache library (langchain-redis,
    RedisVL): redis-py's json() registers its response callbacks on the client it is given, which
    would change the replies cacheops itself parses (JSON.GET would come back decoded). On a cluster,
    a second RedisCluster over the same seeds (a cluster client has no single pool to share)."""
    if isinstance(client, RedisCluster):
        kwargs = dict(client.cacheops_connect_kwargs)
        nodes = [ClusterNode(host, port) for host, port in kwargs.pop("startup_nodes")]
        return RedisCluster(startup_nodes=nodes, redis_connect_func=_node_setup(True), **kwargs)
    return redis.Redis(connection_pool=client.connection_pool)


class _NoTouchMixin:
    """Every connection of an inspecting client turns on CLIENT NO-TOUCH (Redis >= 7.2), so reads do
    not bump a key's LRU idle time or LFU counter. Older servers reject the command; that is fine."""

    def on_connect_check_health(self, check_health: bool = True):
        super().on_connect_check_health(check_health)
        try:
            self.send_command("CLIENT", "NO-TOUCH", "ON")
            self.read_response()
        except rex.ResponseError:
            pass


def _no_touch_class(base: type) -> type:
    return type(f"NoTouch{base.__name__}", (_NoTouchMixin, base), {})


@contextlib.contextmanager
def redis_errors(spec: ConnectionSpec | None = None):
    """Translate redis-py exceptions into one-line CacheopsErrors that name the fix."""
    try:
        yield
    except rex.RedisError as exc:
        translated = translate_redis_error(exc, spec)
        if translated is None:
            raise
        raise translated from None


def translate_redis_error(exc: Exception, spec: ConnectionSpec | None = None) -> CacheopsError | None:
    where = spec.display if spec else "the Redis server"
    text = (spec.scrub(str(exc)) if spec else str(exc)) or type(exc).__name__
    auth_hint = "check the username/password in the URL, profile, --password or REDIS_PASSWORD"
    if (
        isinstance(exc, rex.AuthenticationError)
        or text.startswith(("NOAUTH", "WRONGPASS"))
        or "invalid username-password" in text
    ):
        return AuthFailed(f"{where}: authentication failed ({text}); {auth_hint}")
    if isinstance(exc, rex.NoPermissionError) or text.startswith("NOPERM"):
        return PermissionDenied(
            f"{where}: the ACL user may not do this ({text}); `cacheops doctor` lists the permissions cacheops needs"
        )
    if "SELECT is not allowed in cluster mode" in text:
        return ConfigError(f"{where}: Redis Cluster has only db 0; drop the /db from the URL or --db")
    if isinstance(exc, (rex.ConnectionError, rex.TimeoutError)):
        return ConnectionFailed(f"cannot reach {where}: {text}; check --url / REDIS_URL and that the server is up")
    if isinstance(exc, rex.ResponseError) and "unknown command" in text.lower():
        upper = text.upper()
        if "'FT." in upper or "'JSON." in upper:
            module = "search (RediSearch)" if "'FT." in upper else "JSON (RedisJSON)"
            return MissingModule(
                f"{where}: the server has no {module} module; use Redis 8 or Redis Stack, or load the module"
            )
    return None
