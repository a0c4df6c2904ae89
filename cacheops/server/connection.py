"""URL / profile -> a connected client. Nothing else in cacheops builds a Redis client.

Passwords never leave this module in clear: every URL shown is redacted, and Redis errors are
translated into one-line CacheopsErrors with the password scrubbed.
"""

from __future__ import annotations

import contextlib
import os
import ssl
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import redis
from redis import exceptions as rex

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

DEFAULT_URL = "redis://localhost:6379"
CONNECT_TIMEOUT = 5.0  # seconds to connect and finish the TLS handshake
COMMAND_TIMEOUT = 60.0  # seconds to wait for one reply (a SCAN batch script, a pipeline)


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    netloc = f"{user}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


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
    if not spec.url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"{spec.display}: a Redis URL starts with redis://, rediss:// or unix://")
    return spec


def connect(spec: ConnectionSpec, no_touch: bool = True) -> redis.Redis:
    """A client with raw bytes replies (keys may be binary), checked with PING. no_touch: see _NoTouchMixin."""
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
    with redis_errors(spec):
        try:
            pool = redis.ConnectionPool.from_url(spec.url, **kwargs)
        except ValueError as exc:
            raise ConfigError(f"{spec.display}: {spec.scrub(str(exc))}") from None
        if spec.tls:
            pool.connection_class = _mixed_class(_BoundedHandshakeMixin, pool.connection_class)
        if no_touch:
            pool.connection_class = _mixed_class(_NoTouchMixin, pool.connection_class)
        pool.connection_class = _mixed_class(_CountedMixin, pool.connection_class)
        client = redis.Redis(connection_pool=pool)
        try:
            client.ping()
        except (rex.ConnectionError, rex.TimeoutError) as exc:
            cause = tls_cause(exc, spec)  # only while connecting: a reset later is not a TLS mismatch
            if cause is None:
                raise
            raise ConnectionFailed(f"cannot connect to {spec.display}: {spec.scrub(cause)}") from None
    return client


def library_client(client: redis.Redis) -> redis.Redis:
    """A second client over the same connection pool, to hand to a cache library (langchain-redis,
    RedisVL): redis-py's json() registers its response callbacks on the client it is given, which
    would change the replies cacheops itself parses (JSON.GET would come back decoded)."""
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


_connections_made = 0


def connections_made() -> int:
    """Connections opened so far by this process (first connects and reconnects). Long walks compare
    it between batches: when it moved, a connection was re-made, and the server may have restarted."""
    return _connections_made


class _CountedMixin:
    def on_connect_check_health(self, check_health: bool = True):
        global _connections_made
        _connections_made += 1
        super().on_connect_check_health(check_health)


def run_id(client: redis.Redis) -> str | None:
    """The server's run id (it changes when the server restarts); None if INFO is not allowed."""
    try:
        return client.info("server").get("run_id")
    except rex.ResponseError:
        return None


def _mixed_class(mixin: type, base: type) -> type:
    return type(f"{mixin.__name__.strip('_').removesuffix('Mixin')}{base.__name__}", (mixin, base), {})


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
    if isinstance(exc, rex.InvalidResponse) or text.startswith("Protocol error"):
        return NotRedis(
            f"{where} does not answer in the Redis protocol ({text.rstrip('.')}): another service listens "
            f"there; check the host and port in --url / REDIS_URL"
        )
    if "DB index is out of range" in text or "Invalid Database" in text or "SELECT is not allowed" in text:
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
    if isinstance(exc, (rex.ConnectionError, rex.TimeoutError)):
        return ConnectionFailed(
            f"cannot reach {where}: {text.rstrip('.')}; check --url / REDIS_URL and that the server is up"
        )
    if isinstance(exc, rex.ResponseError) and "unknown command" in text.lower():
        upper = text.upper()
        if "'FT." in upper or "'JSON." in upper:
            module = "search (RediSearch)" if "'FT." in upper else "JSON (RedisJSON)"
            return MissingModule(
                f"{where}: the server has no {module} module; use Redis 8 or Redis Stack, or load the module"
            )
    return None
