"""The state every command shares: how to connect, connected lazily, and clean error handling."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

import click
import redis

from .. import render
from ..errors import CacheopsError, UsageError
from ..exit_codes import ExitCode
from ..server.connection import ConnectionSpec, as_cacheops_error, connect, internal_error, resolve_spec


@dataclass
class AppState:
    url: str | None = None
    profile: str | None = None
    username: str | None = None
    password: str | None = None
    db: int | None = None
    tls_ca_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_insecure: bool = False
    connect_timeout: float | None = None
    timeout: float | None = None
    read_from_replicas: bool | None = None
    embedded: bool = False
    _spec: ConnectionSpec | None = field(default=None, repr=False)
    _client: Any = field(default=None, repr=False)  # a Redis, or a RedisCluster used the same way

    @property
    def spec(self) -> ConnectionSpec:
        if self._spec is None:
            url = self.url
            if self.embedded:
                from ..server.embedded import shared_url

                url = shared_url()  # running, or a one-line error naming `cacheops demo`
            self._spec = resolve_spec(
                url,
                self.profile,
                self.username,
                self.password,
                self.db,
                self.tls_ca_file,
                tls_cert_file=self.tls_cert_file,
                tls_key_file=self.tls_key_file,
                tls_insecure=self.tls_insecure,
                connect_timeout=self.connect_timeout,
                timeout=self.timeout,
                read_from_replicas=self.read_from_replicas or None,  # unset: the profile decides
            )
            if self._spec.tls_insecure and self._spec.tls:
                render.warn("--tls-insecure: the server's TLS certificate is not verified (testing only)")
        return self._spec

    def client(self) -> redis.Redis:
        if self._client is None:
            self._client = connect(self.spec)
        return self._client


class CacheopsGroup(click.Group):
    """Turns every CacheopsError or Redis error into one line on stderr and a documented exit code."""

    def invoke(self, ctx: click.Context):
        try:
            # not super(): cli.LazyGroup runs this too without subclassing (it must not import this
            # module at start-up)
            return click.Group.invoke(self, ctx)
        except (CacheopsError, redis.RedisError) as exc:
            spec = ctx.obj._spec if isinstance(ctx.obj, AppState) else None
            error = as_cacheops_error(exc, spec)
            assert error is not None  # both kinds have a one-line message
            render.error(spec.scrub(error.message) if spec else error.message)
            ctx.exit(int(error.exit_code))
        except (click.exceptions.Exit, click.exceptions.ClickException, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            render.error("interrupted")
            ctx.exit(int(ExitCode.INTERRUPTED))
        except BrokenPipeError:
            # `cacheops scan | head`: the reader left; not an error
            sys.stderr.close()
            ctx.exit(0)
        except Exception as exc:  # a bug: one line, traceback only on request
            if os.environ.get("CACHEOPS_DEBUG"):
                raise
            render.error(f"{internal_error(exc)} (set CACHEOPS_DEBUG=1 for a traceback)")
            ctx.exit(int(ExitCode.ERROR))


pass_state = click.make_pass_decorator(AppState)


def interactive() -> bool:
    """Whether a person can answer a confirmation prompt."""
    return sys.stdin.isatty() and sys.stdout.isatty()


def confirmed(question: str, refusal: str, yes: bool) -> bool:
    """The one confirmation of every destructive command: --yes goes ahead; on a terminal the user
    is asked; off one it stops with `refusal` (exit 2) and nothing is changed."""
    if yes:
        return True
    if not interactive():
        raise UsageError(refusal)
    return click.confirm(question, default=False, err=True)


def output_format(json_flag: bool, table_flag: bool = False) -> str:
    """JSON when asked, or when stdout is not a terminal; a rich table otherwise."""
    if json_flag:
        return "json"
    if table_flag:
        return "table"
    return "table" if sys.stdout.isatty() else "json"


def output_options(fn):
    """The output flags every listing command shares."""
    fn = click.option("--table", "table_flag", is_flag=True, help="Force a table even when not on a terminal.")(fn)
    fn = click.option(
        "--json", "json_flag", is_flag=True, help="JSON output (the default when stdout is not a terminal)."
    )(fn)
    return fn


# -- command lines cacheops suggests (kept apart from the state and error handling above) ---------


def suggested(state: AppState, *args: str) -> str:
    """A `cacheops ...` line to print as a next step, with the connection options this run used so
    it runs verbatim against the same server (TLS files and timeouts included). A password in --url
    shows as *** (never printed); REDIS_URL / CACHEOPS_PROFILE / the timeout variables from the
    environment need no flag."""
    import shlex

    from ..server.connection import redact_url

    flags: list[str] = []
    if state.embedded:
        flags.append("--embedded")
    elif state.url and os.environ.get("REDIS_URL") != state.url:
        flags += ["--url", redact_url(state.url)]
    if state.profile and os.environ.get("CACHEOPS_PROFILE") != state.profile:
        flags += ["--profile", state.profile]
    if state.username:
        flags += ["--username", state.username]
    if state.db is not None:
        flags += ["--db", str(state.db)]
    if state.tls_ca_file:
        flags += ["--tls-ca-file", state.tls_ca_file]
    if state.tls_cert_file:
        flags += ["--tls-cert", state.tls_cert_file]
    if state.tls_key_file:
        flags += ["--tls-key", state.tls_key_file]
    if state.tls_insecure:
        flags.append("--tls-insecure")
    for flag, value, env in (
        ("--connect-timeout", state.connect_timeout, "CACHEOPS_CONNECT_TIMEOUT"),
        ("--timeout", state.timeout, "CACHEOPS_TIMEOUT"),
    ):
        if value is not None and env not in os.environ:
            flags += [flag, f"{value:g}"]
    return shlex.join(["cacheops", *flags, *args])
