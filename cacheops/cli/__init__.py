"""The `cacheops` command line: a Click group whose commands are thin layers over the library."""

from __future__ import annotations

import click

from . import audit, caches, demo, doctor, evict, history, migrate, restore, scan, show, stats, tag, tui, warm
from .app import AppState, CacheopsGroup

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(cls=CacheopsGroup, context_settings=CONTEXT)
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
@click.option(
    "--read-from-replicas",
    is_flag=True,
    help="Scan replicas instead of primaries (Redis Cluster shards, Sentinel): inspection stays off the primaries.",
)
@click.option("--embedded", is_flag=True, help="Use the local embedded Redis (started by `cacheops demo`).")
@click.version_option(package_name="cacheops")
@click.pass_context
def cli(ctx, url, profile, username, password, db, tls_ca_file, read_from_replicas, embedded):
    """Inspect and operate the LLM response caches (LangChain, RedisVL) that live in Redis.

    \b
    Example:
        cacheops --url redis://localhost:6379 caches
    """
    ctx.obj = AppState(
        url=url,
        profile=profile,
        username=username,
        password=password,
        db=db,
        tls_ca_file=tls_ca_file,
        read_from_replicas=read_from_replicas,
        embedded=embedded,
    )


for module in (caches, scan, show, stats, doctor, audit, demo, evict, restore, history, tag, tui, warm, migrate):
    cli.add_command(module.command)


def main() -> None:
    cli(prog_name="cacheops")
