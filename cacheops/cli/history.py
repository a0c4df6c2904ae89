import click

from .. import render
from ..ops import oplog
from .app import AppState, output_format, output_options, pass_state


@click.command("history")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Newest N events.")
@click.option(
    "--action",
    type=click.Choice(["evict", "restore", "warm", "migrate-embeddings", "expire", "config"]),
    help="Only this kind of event (config: notify-keyspace-events switched on by `hits --enable-events`).",
)
@output_options
@pass_state
def command(state: AppState, limit, action, json_flag, table_flag):
    """The operations log: evictions, restores, warm runs and migrations on this server, newest first.

    Each event says who (Redis ACL user, OS user and host), when, the selectors, the counts and
    the backup file. It lives in the capped stream cacheops:oplog on the server itself (events
    that earlier versions wrote to cacheops:audit are shown too). A run that never recorded its
    result (killed, failed part-way, or still running) is listed as unfinished, with its backup.

    \b
    Example:
        cacheops history --limit 5
    """
    events = oplog.history(state.client(), limit=limit, action=action)
    if output_format(json_flag, table_flag) == "json":
        for event in events:
            render.json_line(event)
        render.flush()
        return
    if not events:
        render.out("No evictions, restores or warm runs recorded on this server.")
        return
    C = render.Column
    t = render.table(
        C("when", "fixed", drop=3),
        C("action", "fixed"),
        C("who", "text", drop=1, min=12),
        C("selectors", "text", min=16),
        C("counts", min=16),
        C("backup", "key", drop=2, min=16),
    )
    for e in events:
        unfinished = e.get("state") == oplog.UNFINISHED
        t.add_row(
            render.timestamp(e["at"]),
            f"{e['action']} (unfinished)" if unfinished else e["action"],
            render.escape(f"{e.get('redis_user')} ({e.get('os_user')}@{e.get('host')})"),
            render.escape(render.preview(describe_selectors(e.get("selectors") or {}), 60)),
            UNFINISHED_COUNTS if unfinished else render.escape(describe_counts(e.get("counts") or {})),
            e.get("backup") or "-",
        )
    render.out(t)


UNFINISHED_COUNTS = "no result recorded"  # the run was killed, failed part-way, or is still running


def describe_selectors(selectors: dict) -> str:
    """`prompt=What is X?, prompt=Y, cache=llmcache`: one NAME=VALUE per value, as the flags were given."""
    parts = []
    for name, value in selectors.items():
        if value is None or value is False or value == [] or value == "":
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        parts += [f"{name}={v}" for v in values]
    return ", ".join(parts) or "-"


def describe_counts(counts: dict) -> str:
    """Every non-zero count the event recorded (`deleted 2, identical 2`), whatever the action."""
    shown = [
        f"{name.replace('_', ' ')} {value:,}"
        for name, value in counts.items()
        if isinstance(value, int) and not isinstance(value, bool) and value
    ]
    return ", ".join(shown) or "nothing changed"
