import time

import click
from prometheus_client import generate_latest, start_http_server

from .. import render
from ..errors import UsageError
from ..inspect.catalog import build_context
from ..inspect.metrics import metrics_registry
from ..ops.selection import parse_duration
from .app import AppState, pass_state


@click.command("metrics")
@click.option("--serve", metavar="HOST:PORT", help="Serve the metrics for Prometheus to scrape (read-only endpoint).")
@click.option(
    "--catalog-every",
    default="5m",
    show_default=True,
    help="With --serve: recount entries and bytes (a SCAN of the keyspace) at most this often.",
)
@click.option("--for", "serve_for", help="With --serve: stop after this long (e.g. 30s); default: until interrupted.")
@pass_state
def command(state: AppState, serve, catalog_every, serve_for):
    """Prometheus text exposition: tracked lookups (hit/miss) and tokens and money saved per cache
    and model, the lookup latency histogram, entries and bytes per cache. Never a label per entry.

    \b
    Example:
        cacheops metrics
        cacheops metrics --serve 0.0.0.0:9464
    """
    interval = parse_duration(catalog_every)
    client = state.client()
    registry = metrics_registry(client, build_context(client), interval)
    if not serve:
        render.raw(generate_latest(registry).decode("utf-8"))
        return
    host, sep, port = serve.rpartition(":")
    if not sep or not port.isdigit():
        raise UsageError(f"--serve {serve!r}: write HOST:PORT, e.g. 127.0.0.1:9464")
    deadline = time.monotonic() + parse_duration(serve_for) if serve_for else None
    try:
        server, thread = start_http_server(int(port), addr=host or "0.0.0.0", registry=registry)
    except OSError as exc:  # the port is taken, or the address is not this machine's
        raise UsageError(
            f"--serve {serve}: cannot listen there ({exc.strerror or exc}); choose another HOST:PORT"
        ) from None
    render.info(f"serving metrics on http://{host or '0.0.0.0'}:{port}/metrics (Ctrl-C stops)")
    try:
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
