"""The `cacheops` command line: a Click group whose commands are thin layers over the library.

Commands are loaded lazily: `cacheops --help` lists them from COMMANDS below without importing
them, and a command's module (with redis, rich, pydantic, ...) is imported only when it runs, so
the tool starts fast (bench/startup.py measures it).
"""

from __future__ import annotations

import gc
import importlib
from typing import NamedTuple

import click


class CommandEntry(NamedTuple):
    module: str  # the module under cacheops.cli that defines `command`
    summary: str  # the line `cacheops --help` shows


# Adding a command is one line here (and its module under cli/). tests/test_startup.py checks the
# table against the modules.
COMMANDS: dict[str, CommandEntry] = {
    "caches": CommandEntry("caches", "Every LLM cache: entries, memory, TTLs, models."),
    "scan": CommandEntry("scan", "Stream entries: key, model, prompt, answer, TTL."),
    "show": CommandEntry("show", "One entry in full, or every copy of a prompt."),
    "stats": CommandEntry("stats", "TTL, model and access histograms; hit ratio."),
    "doctor": CommandEntry("doctor", "Check the server and every cache (exit 8: problem)."),
    "suspects": CommandEntry("suspects", "Find poisoned and risky entries: errors, secrets, stale."),
    "audit": CommandEntry("audit", "Find answers served for the wrong question."),
    "demo": CommandEntry("demo", "Start a local Redis filled by LangChain/RedisVL."),
    "evict": CommandEntry("evict", "Delete entries: preview, confirm, back up, delete."),
    "restore": CommandEntry("restore", "Put back the entries an eviction backed up."),
    "history": CommandEntry("history", "The log of evictions, restores, warms, migrations."),
    "tag": CommandEntry("tag", "Label an entry with NAME=VALUE tags."),
    "tui": CommandEntry("tui", "Browse caches and entries interactively."),
    "warm": CommandEntry("warm", "Pre-fill caches with a playbook's curated answers."),
    "migrate-embeddings": CommandEntry("migrate", "Re-embed a semantic cache with a new model."),
    "check": CommandEntry("check", "The post-deploy gate: doctor, warm, verify, audit."),
    "expire": CommandEntry("expire", "Change the TTLs of selected entries in bulk."),
    "replay": CommandEntry("replay", "What a prompt log would hit, without calling a model."),
    "metrics": CommandEntry("metrics", "Prometheus metrics: hits, misses, entries, savings."),
    "hits": CommandEntry("hits", "Count semantic hits live from keyspace events."),
}


def load_command(name: str) -> click.Command:
    """Import the command's module and return its Click command (the short help from the table)."""
    command = importlib.import_module(f"{__name__}.{COMMANDS[name].module}").command
    command.short_help = command.short_help or COMMANDS[name].summary
    return command


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command is run (or its help shown),
    and lists every command from COMMANDS. Errors are handled by the shared CacheopsGroup logic,
    imported when a command is actually invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return load_command(cmd_name) if cmd_name in COMMANDS else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name].summary) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        # The one error handling of every command (one line on stderr, a documented exit code);
        # app.py is imported here, when a command runs, not at start-up.
        from .app import CacheopsGroup

        return CacheopsGroup.invoke(self, ctx)  # type: ignore[arg-type]  # borrowed: the same click.Group


CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(cls=LazyGroup, context_settings=CONTEXT)
@click.option(
    "--url",
    envvar="REDIS_URL",
    show_envvar=True,
    help="Redis URL: redis://[user:pass@]host:port/db, rediss:// for TLS; a Redis Cluster node (or several: "
    "redis://h1:p1,h2:p2; ?cluster=true forces cluster mode); redis+sentinel://h1:p1,h2:p2/service[/db]. "
    "Default redis://localhost:6379.",
)
@click.option("--profile", envvar="CACHEOPS_PROFILE", help="A named profile from the config file.")
@click.option("--username", help="ACL username (overrides the URL's).")
@click.option(
    "--password",
    envvar="REDIS_PASSWORD",
    show_envvar=False,
    help="Password (prefer the REDIS_PASSWORD environment variable).",
)
@click.option("--db", type=int, help="Database number.")
@click.option("--tls-ca-file", type=click.Path(dir_okay=False), help="CA certificate for rediss:// URLs.")
@click.option("--tls-cert", type=click.Path(dir_okay=False), help="Client certificate (PEM) for rediss:// URLs.")
@click.option("--tls-key", type=click.Path(dir_okay=False), help="The client certificate's private key (PEM).")
@click.option(
    "--tls-insecure", is_flag=True, help="Do not verify the server's TLS certificate (testing only; warns on stderr)."
)
@click.option(
    "--connect-timeout",
    type=click.FloatRange(min=0, min_open=True),
    envvar="CACHEOPS_CONNECT_TIMEOUT",
    help="Seconds to connect and finish the TLS handshake (default 5).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    envvar="CACHEOPS_TIMEOUT",
    help="Seconds to wait for one reply from the server (default 60).",
)
@click.option(
    "--read-from-replicas",
    is_flag=True,
    help="Scan replicas instead of primaries (Redis Cluster shards, Sentinel): inspection stays off the primaries.",
)
@click.option("--embedded", is_flag=True, help="Use the local embedded Redis (started by `cacheops demo`).")
@click.version_option(package_name="cacheops")
@click.pass_context
def cli(
    ctx,
    url,
    profile,
    username,
    password,
    db,
    tls_ca_file,
    tls_cert,
    tls_key,
    tls_insecure,
    connect_timeout,
    timeout,
    read_from_replicas,
    embedded,
):
    """Inspect and operate the LLM response caches (LangChain, RedisVL) that live in Redis.

    \b
    Example:
        cacheops --url redis://localhost:6379 caches
    """
    from .app import AppState

    ctx.obj = AppState(
        url=url,
        profile=profile,
        username=username,
        password=password,
        db=db,
        tls_ca_file=tls_ca_file,
        tls_cert_file=tls_cert,
        tls_key_file=tls_key,
        tls_insecure=tls_insecure,
        connect_timeout=connect_timeout,
        timeout=timeout,
        read_from_replicas=read_from_replicas,
        embedded=embedded,
    )


def main() -> None:
    # A listing allocates a dozen short-lived containers per key, nearly all freed by reference
    # count. At the default threshold (700 net allocations) the cyclic collector re-walks the batches
    # in flight again and again: ~10% of `scan --json`'s client CPU. A young collection every 100k
    # allocations costs a fraction of that; the few cycles cacheops makes wait a little longer.
    gc.set_threshold(100_000, 50, 50)
    cli(prog_name="cacheops")
