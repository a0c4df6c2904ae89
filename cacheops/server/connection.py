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
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import redis
from redis import exceptions as rex
from redis.cluster import ClusterNode, RedisCluster
from redis.sentinel import Sentinel

from ..errors import (
    AuthFailed,
    CacheopsError,
    ConfigError,
    ConnectionFailed,
    MissingModule,
    NoSuchDatabase,
    NotRedis,
    PermissionDenied,
)
from ..paths import config_file
from .scripting import (
    is_auth_failure,
    is_no_permission,
    is_no_such_database,
    is_select_in_cluster,
    is_unknown_command,
)
from .topology import Topology, attach_topology

DEFAULT_URL = "redis://localhost:6379"
CONNECT_TIMEOUT = 5.0  # seconds to connect and finish the TLS handshake
COMMAND_TIMEOUT = 60.0  # seconds to wait for one reply (a SCAN batch script, a pipeline)
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
    tls_cert_file: str | None = None  # a client certificate, for servers with tls-auth-clients
    tls_key_file: str | None = None
    tls_insecure: bool = False  # skip verifying the server's certificate (only when asked)
    connect_timeout: float | None = None  # None: CONNECT_TIMEOUT
    timeout: float | None = None  # None: COMMAND_TIMEOUT
    cluster: bool | None = None  # None: detect (INFO cluster_enabled); True/False: forced
    read_from_replicas: bool = False  # inspection scans replicas (cluster shards, Sentinel replicas)
    source: str = "default"  # where the URL came from, for messages

    @property
    def tls(self) -> bool:
        return self.url.startswith("rediss://")

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
    *,
    tls_cert_file: str | None = None,
    tls_key_file: str | None = None,
    tls_insecure: bool = False,
    connect_timeout: float | None = None,
    timeout: float | None = None,
    cluster: bool | None = None,
    read_from_replicas: bool | None = None,
) -> ConnectionSpec:
    """Precedence: --url, then --profile (or the config's default_profile), then REDIS_URL, then localhost."""
    spec = ConnectionSpec()
    config = None
    if profile or (not url and config_file().exists()):
        from ..config import load_config  # pydantic + yaml: only when there is a config to read

        config = load_config()
    profile = profile or (config.default_profile if config and not os.environ.get("REDIS_URL") else None)
    if url:
        spec.url, spec.source = url, "--url"
    elif profile:
        assert config is not None  # loaded above whenever a profile can be named
        prof = config.profiles.get(profile)
        if prof is None:
            known = ", ".join(sorted(config.profiles)) or "none defined"
            raise ConfigError(f"no profile {profile!r} in the config file (profiles: {known})")
        spec = ConnectionSpec(
            url=prof.url,
            username=prof.username,
            db=prof.db,
            tls_ca_file=prof.tls_ca_file,
            tls_cert_file=prof.tls_cert_file,
            tls_key_file=prof.tls_key_file,
            tls_insecure=prof.tls_insecure,
            connect_timeout=prof.connect_timeout,
            timeout=prof.timeout,
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
    spec.tls_cert_file = tls_cert_file or spec.tls_cert_file
    spec.tls_key_file = tls_key_file or spec.tls_key_file
    spec.tls_insecure = tls_insecure or spec.tls_insecure
    spec.connect_timeout = connect_timeout if connect_timeout is not None else spec.connect_timeout
    spec.timeout = timeout if timeout is not None else spec.timeout
    for name, value in (("connect timeout", spec.connect_timeout), ("timeout", spec.timeout)):
        if value is not None and not value > 0:
            raise ConfigError(f"the {name} must be a positive number of seconds, not {value}")
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
        if spec.tls:
            pool.connection_class = _mixed_class(_BoundedHandshakeMixin, pool.connection_class)
        if no_touch:
            pool.connection_class = _no_touch_class(pool.connection_class)
        pool.connection_class = _mixed_class(_CountedMixin, pool.connection_class)
        client = redis.Redis(connection_pool=pool)
        try:
            client.ping()
        except (rex.ConnectionError, rex.TimeoutError) as exc:
            cause = tls_cause(exc, spec)  # only while connecting: a reset later is not a TLS mismatch
            if cause is None:
                raise
            raise ConnectionFailed(f"cannot connect to {spec.display}: {spec.scrub(cause)}") from None
        if target and spec.cluster is None and target.cluster_flag() is None and _cluster_enabled(client):
            client.close()
            return _connect_cluster(spec, target, no_touch)
    return attach_topology(client, Topology("single", spec.read_from_replicas))


def _client_kwargs(spec: ConnectionSpec) -> dict:
    kwargs: dict = {
        "decode_responses": False,
        "socket_connect_timeout": spec.connect_timeout or CONNECT_TIMEOUT,
        "socket_timeout": spec.timeout or COMMAND_TIMEOUT,
    }
    if spec.username:
        kwargs["username"] = spec.username
    if spec.password:
        kwargs["password"] = spec.password
    if spec.db is not None:
        kwargs["db"] = spec.db
    if spec.tls:
        kwargs.update(_tls_kwargs(spec))
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
            error = translate_redis_error(exc, spec) or _seed_auth_failure(target, kwargs, spec)
            if isinstance(error, AuthFailed):
                raise error from None
            raise ConnectionFailed(f"{spec.display}: not a usable Redis Cluster ({spec.scrub(str(exc))})") from None
        client.ping(target_nodes=RedisCluster.ALL_NODES)
    # ours, for reconnecting to the cluster later
    client.cacheops_connect_kwargs = dict(kwargs, startup_nodes=list(target.hosts))  # type: ignore[attr-defined]
    return attach_topology(client, Topology("cluster", spec.read_from_replicas))


def _seed_auth_failure(target: UrlTarget, kwargs: dict, spec: ConnectionSpec) -> CacheopsError | None:
    """Why no seed worked, when one of them refused the login. redis-py tries the seeds in random order
    and reports only the last failure, so a dead seed tried last would hide a wrong password."""
    for host, port in target.hosts:
        probe = redis.Redis(host=host, port=port, **kwargs)
        try:
            probe.ping()
        except rex.RedisError as exc:
            error = translate_redis_error(exc, spec)
            if isinstance(error, AuthFailed):
                return error
        finally:
            probe.close()
    return None


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
        kwargs = dict(client.cacheops_connect_kwargs)  # type: ignore[attr-defined]  # set by connect
        nodes = [ClusterNode(host, port) for host, port in kwargs.pop("startup_nodes")]
        return RedisCluster(startup_nodes=nodes, redis_connect_func=_node_setup(True), **kwargs)
    return redis.Redis(connection_pool=client.connection_pool)


class _NoTouchMixin:
    """Every connection of an inspecting client turns on CLIENT NO-TOUCH (Redis >= 7.2), so reads do
    not bump a key's LRU idle time or LFU counter. Older servers reject the command; that is fine."""

    def on_connect_check_health(self, check_health: bool = True):
        conn: Any = super()
        conn.on_connect_check_health(check_health)
        try:
            conn.send_command("CLIENT", "NO-TOUCH", "ON")
            conn.read_response()
        except rex.ResponseError:
            pass


_connections_made = 0


def connections_made() -> int:
    """Connections opened so far by this process (first connects and reconnects). Long walks compare
    it between batches: when it moved, a connection was re-made, and the server may have restarted."""
    return _connections_made


class _CountedMixin:
    def on_connect_check_health(self, check_health: bool = True):
        global _connections_made
        _connections_made += 1
        super().on_connect_check_health(check_health)  # type: ignore[misc]  # a mixin: the connection class has it


def run_id(client: redis.Redis) -> str | None:
    """The server's run id (it changes when the server restarts); None if INFO is not allowed."""
    try:
        return client.info("server").get("run_id")
    except rex.ResponseError:
        return None


def _mixed_class(mixin: type, base: type) -> type:
    return type(f"{mixin.__name__.strip('_').removesuffix('Mixin')}{base.__name__}", (mixin, base), {})


def _no_touch_class(base: type) -> type:
    return _mixed_class(_NoTouchMixin, base)


class _BoundedHandshakeMixin:
    """redis-py runs the TLS handshake under the command timeout (a minute): a rediss:// URL aimed
    at a plain port, whose server waits for a command that never comes, hung that long. The
    handshake is part of connecting, so it gets the connect timeout."""

    def _wrap_socket_with_ssl(self, sock):
        sock.settimeout(self.socket_connect_timeout)
        wrapped = super()._wrap_socket_with_ssl(sock)
        wrapped.settimeout(self.socket_timeout)
        return wrapped


def _tls_kwargs(spec: ConnectionSpec) -> dict:
    """redis-py's ssl_* options, with every file checked first (a one-line ConfigError naming it)."""
    for label, path in (
        ("--tls-ca-file", spec.tls_ca_file),
        ("--tls-cert", spec.tls_cert_file),
        ("--tls-key", spec.tls_key_file),
    ):
        if path and not os.path.isfile(path):
            raise ConfigError(f"{label}: {path} does not exist")
    if bool(spec.tls_cert_file) != bool(spec.tls_key_file):
        raise ConfigError("a client certificate needs both --tls-cert and --tls-key")
    kwargs: dict = {}
    if spec.tls_ca_file:
        kwargs["ssl_ca_certs"] = spec.tls_ca_file
    if spec.tls_cert_file:
        try:  # a mismatched or unreadable pair is the user's to fix, not a connection failure
            ssl.create_default_context().load_cert_chain(spec.tls_cert_file, spec.tls_key_file)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(
                f"--tls-cert {spec.tls_cert_file} / --tls-key {spec.tls_key_file}: cannot load the client "
                f"certificate ({getattr(exc, 'reason', None) or exc}); give a PEM certificate and its matching key"
            ) from None
        kwargs["ssl_certfile"] = spec.tls_cert_file
        kwargs["ssl_keyfile"] = spec.tls_key_file
    if spec.tls_insecure:
        kwargs["ssl_cert_reqs"] = "none"
        kwargs["ssl_check_hostname"] = False
    return kwargs


def _host_port(spec: ConnectionSpec) -> str:
    try:
        parts = urlsplit(spec.url)
        return f"{parts.hostname}:{parts.port or 6379}"
    except ValueError:
        return spec.display


def tls_cause(exc: Exception, spec: ConnectionSpec) -> str | None:
    """The likely cause of a failed connection when TLS is involved, named with its fix; None if
    the failure does not look like a TLS problem. A mismatch (TLS to a plain port, plain to a TLS
    port) shows only as a timeout or a reset, so it is named as the likely cause, not a certainty."""
    text = str(exc)
    where = _host_port(spec)
    if spec.tls:
        if "CERTIFICATE_VERIFY_FAILED" in text:
            detail = text.split("certificate verify failed:", 1)[-1].split("(_ssl.c")[0].strip(" :)") or "untrusted"
            return (
                f"the server's TLS certificate was refused ({detail}); give the CA that signed it with "
                "--tls-ca-file (--tls-insecure skips the check, for testing only)"
            )
        refused = ("CERTIFICATE_REQUIRED", "CERTIFICATE_UNKNOWN", "ALERT_UNKNOWN_CA", "EOF occurred in violation")
        if any(marker in text for marker in refused):
            # TLS 1.3 servers drop a client without a certificate they trust after the handshake
            if spec.tls_cert_file:
                return "the server refused the client certificate (--tls-cert): is it signed by a CA the server trusts?"
            return "the server closed the TLS session: it likely wants a client certificate (--tls-cert/--tls-key)"
        if isinstance(exc, rex.TimeoutError) or "timed out" in text.lower() or "Timeout connecting" in text:
            return (
                f"no TLS handshake from {where} within the connect timeout: is it a plain (non-TLS) port? "
                "use redis:// for a plain port (or raise --connect-timeout)"
            )
        if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text:
            return f"{where} did not answer in TLS: is it a plain (non-TLS) port? use redis:// for a plain port"
        if "SSL" in text:
            return f"the TLS handshake with {where} failed ({text.split('(_ssl.c')[0].strip()})"
        return None
    if "Connection reset by peer" in text or "Connection closed by server" in text:
        return (
            f"{where} closed the connection at the first command: is it a TLS port? use rediss:// "
            "(with --tls-ca-file for a private CA)"
        )
    return None


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
    if is_auth_failure(exc):
        return AuthFailed(f"{where}: authentication failed ({text}); {auth_hint}")
    if is_no_permission(exc):
        return PermissionDenied(
            f"{where}: the ACL user may not do this ({text}); `cacheops doctor` lists the permissions cacheops needs"
        )
    if isinstance(exc, rex.InvalidResponse) or text.startswith("Protocol error"):
        return NotRedis(
            f"{where} does not answer in the Redis protocol ({text.rstrip('.')}): another service listens "
            f"there; check the host and port in --url / REDIS_URL"
        )
    if is_no_such_database(text):
        db = spec.db if spec and spec.db is not None else (urlsplit(spec.url).path.strip("/") if spec else "")
        return NoSuchDatabase(
            f"{where}: database {db or '?'} does not exist on this server ({text.rstrip('.')}); Redis has "
            f"databases 0-15 unless configured otherwise (`databases`), a cluster only 0: fix the URL's /N or --db"
        )
    if isinstance(exc, rex.NoScriptError):
        return ConnectionFailed(
            f"{where} lost cacheops' server-side scripts mid-run (it restarted, or SCRIPT FLUSH ran); "
            "run the command again: it starts over from what is there now"
        )
    if is_select_in_cluster(text):
        return ConfigError(f"{where}: Redis Cluster has only db 0; drop the /db from the URL or --db")
    if isinstance(exc, (rex.ConnectionError, rex.TimeoutError)):
        return ConnectionFailed(
            f"cannot reach {where}: {text.rstrip('.')}; check --url / REDIS_URL and that the server is up"
        )
    if isinstance(exc, rex.ResponseError) and is_unknown_command(text):
        upper = text.upper()
        if "'FT." in upper or "'JSON." in upper:
            module = "search (RediSearch)" if "'FT." in upper else "JSON (RedisJSON)"
            return MissingModule(
                f"{where}: the server has no {module} module; use Redis 8 or Redis Stack, or load the module"
            )
    return None


def as_cacheops_error(exc: BaseException, spec: ConnectionSpec | None = None) -> CacheopsError | None:
    """The one-line error a front end shows for `exc` (the CLI and the TUI both ask here): a
    CacheopsError as it is, a Redis error translated (or quoted), None for anything else (a bug)."""
    if isinstance(exc, CacheopsError):
        return exc
    if isinstance(exc, rex.RedisError):
        return translate_redis_error(exc, spec) or CacheopsError(f"Redis said: {exc}")
    return None


def internal_error(exc: BaseException) -> str:
    """How a front end words an unexpected exception (a bug) in one line."""
    return f"internal error: {type(exc).__name__}: {exc}"
