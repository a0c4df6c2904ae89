"""URL / profile -> a connected client. Nothing else in cacheops builds a Redis client.

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
            url=prof.url, username=prof.username, db=prof.db, tls_ca_file=prof.tls_ca_file, source=f"profile {profile}"
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
    if not spec.url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"{spec.display}: a Redis URL starts with redis://, rediss:// or unix://")
    return spec


def connect(spec: ConnectionSpec, no_touch: bool = True) -> redis.Redis:
    """A client with raw bytes replies (keys may be binary), checked with PING. no_touch: see _NoTouchMixin."""
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
    with redis_errors(spec):
        try:
            pool = redis.ConnectionPool.from_url(spec.url, **kwargs)
        except ValueError as exc:
            raise ConfigError(f"{spec.display}: {spec.scrub(str(exc))}") from None
        if no_touch:
            pool.connection_class = _no_touch_class(pool.connection_class)
        client = redis.Redis(connection_pool=pool)
        client.ping()
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
