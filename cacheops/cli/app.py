"""The state every command shares: how to connect, connected lazily, and clean error handling."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

import click
import redis

from .. import render
from ..errors import CacheopsError, UsageError
from ..exit_codes import ExitCode
from ..server.connection import ConnectionSpec, connect, resolve_spec, translate_redis_error


@dataclass
class AppState:
    url: str | None = None
    profile: str | None = None
    username: str | None = None
    password: str | None = None
    db: int | None = None
    tls_ca_file: str | None = None
    read_from_replicas: bool | None = None
    embedded: bool = False
    _spec: ConnectionSpec | None = field(default=None, repr=False)
    _client: redis.Redis | None = field(default=None, repr=False)

    @property
    def spec(self) -> ConnectionSpec:
        if self._spec is None:
            url = self.url
            if self.embedded:
                from ..server.embedded import ensure_shared

                url, started = ensure_shared()
                if started:
                    render.note(f"started the embedded Redis at {url}")
            self._spec = resolve_spec(
                url,
                self.profile,
                self.username,
                self.password,
                self.db,
                self.tls_ca_file,
                read_from_replicas=self.read_from_replicas or None,  # unset: the profile decides
            )
        return self._spec

    def client(self) -> redis.Redis:
        if self._client is None:
            self._client = connect(self.spec)
        return self._client


class CacheopsGroup(click.Group):
    """Turns every CacheopsError or Redis error into one line on stderr and a documented exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (CacheopsError, redis.RedisError) as exc:
            spec = ctx.obj._spec if isinstance(ctx.obj, AppState) else None
            if isinstance(exc, redis.RedisError):
                exc = translate_redis_error(exc, spec) or CacheopsError(f"Redis said: {exc}")
            render.error(spec.scrub(exc.message) if spec else exc.message)
            ctx.exit(int(exc.exit_code))
        except (click.exceptions.Exit, click.exceptions.ClickException, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            render.error("interrupted")
            ctx.exit(130)
        except BrokenPipeError:
            # `cacheops scan | head`: the reader left; not an error
            sys.stderr.close()
            ctx.exit(0)
        except Exception as exc:  # a bug: one line, traceback only on request
            if os.environ.get("CACHEOPS_DEBUG"):
                raise
            render.error(f"internal error: {type(exc).__name__}: {exc} (set CACHEOPS_DEBUG=1 for a traceback)")
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
