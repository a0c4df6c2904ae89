import contextlib

import click

from .. import render
from ..errors import UsageError
from ..inspect.catalog import build_context
from ..inspect.hitevents import NEEDED_FLAGS, follow_hits
from ..ops.keyspace_events import events_enabled
from ..ops.selection import parse_duration
from .app import AppState, output_format, output_options, pass_state


@click.command("hits")
@click.option("--follow", is_flag=True, help="Count semantic hits live from keyspace events (required for now).")
@click.option("--cache", help="Only this semantic cache.")
@click.option("--for", "duration", metavar="DURATION", help="Stop after DURATION (e.g. 30s, 5m); default: Ctrl-C.")
@click.option(
    "--enable-events",
    is_flag=True,
    help=f"Add {NEEDED_FLAGS!r} to the server's notify-keyspace-events while following (put back after).",
)
@output_options
@pass_state
def command(state: AppState, follow, cache, duration, enable_events, json_flag, table_flag):
    """Semantic hits per entry, live, from the keyspace `expire` events RedisVL's check() causes on
    caches with a TTL (no change to the app). Needs notify-keyspace-events with Egh.

    \b
    Example:
        cacheops hits --follow --cache llmcache --for 5m
    """
    if not follow:
        raise UsageError("give --follow (tracked hit counts are in `cacheops stats`)")
    seconds = parse_duration(duration) if duration else None
    client = state.client()
    ctx = build_context(client)
    as_json = output_format(json_flag, table_flag) == "json"

    def on_hit(name: str, key: str, at: float) -> None:
        if as_json:
            render.json_line({"event": "hit", "cache": name, "key": key, "at": at, "source": "events"})
            render.flush()
        else:
            render.out(f"{render.timestamp(at)}  hit  {render.escape(name)}  {render.escape(render.short_key(key))}")

    scope = events_enabled(client, NEEDED_FLAGS) if enable_events else contextlib.nullcontext()
    render.info("following semantic hits (keyspace expire events); Ctrl-C stops")
    try:
        with scope:
            counts = follow_hits(client, ctx, cache, seconds, on_hit)
    except KeyboardInterrupt:
        return
    summary = counts.to_dict()
    if as_json:
        render.json_line({"event": "summary", **summary})
        return
    t = render.table("entry", "hits")
    for row in summary["top_entries"]:
        t.add_row(render.escape(render.short_key(row["key"])), f"{row['hits']:,}")
    render.out(t)
    render.out(f"{summary['hits']:,} hits, {summary['writes']:,} writes in {summary['seconds']:.0f}s (source: events)")
