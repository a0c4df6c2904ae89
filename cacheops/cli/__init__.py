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
    help="Redis URL: redis://[user:pass@]host:port/db or rediss:// for TLS. Default redis://localhost:6379.",
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
    embedded,
):
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
        tls_cert_file=tls_cert,
        tls_key_file=tls_key,
        tls_insecure=tls_insecure,
        connect_timeout=connect_timeout,
        timeout=timeout,
        embedded=embedded,
    )


for module in (caches, scan, show, stats, doctor, audit, demo, evict, restore, history, tag, tui, warm, migrate):
    cli.add_command(module.command)


def main() -> None:
    cli(prog_name="cacheops")
