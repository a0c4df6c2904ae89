import click

from .. import render
from ..ops import oplog as audit_log
from .app import AppState, output_format, output_options, pass_state


@click.command("history")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Newest N events.")
@click.option(
    "--action",
    type=click.Choice(["evict", "restore", "warm", "migrate-embeddings", "expire"]),
    help="Only this kind of event.",
)
@output_options
@pass_state
def command(state: AppState, limit, action, json_flag, table_flag):
    """The audit trail of evictions, restores and cache warming runs on this server, newest first.

    Each event says who (Redis ACL user, OS user and host), when, the selectors, the counts and
    the backup file. It lives in the capped stream cacheops:audit on the server itself.

    \b
    Example:
        cacheops history --limit 5
    """
    events = audit_log.history(state.client(), limit=limit, action=action)
    if output_format(json_flag, table_flag) == "json":
        for event in events:
            render.json_line(event)
        render.flush()
        return
    if not events:
        render.out("No evictions, restores or warm runs recorded on this server.")
        return
    t = render.table("when", "action", "who", "selectors", "counts", "backup")
    for e in events:
        counts = e.get("counts") or {}
        shown = {
            k: v
            for k, v in counts.items()
            if v
            and k
            in (
                "matched",
                "deleted",
                "restored",
                "kept_newer",
                "no_longer_matching",
                "overwritten",
                "written",
                "already_cached",
                "failed",
                "migrated",
                "skipped",
            )
        }
        selectors = {k: v for k, v in (e.get("selectors") or {}).items() if v is not None}
        t.add_row(
            render.timestamp(e["at"]),
            e["action"],
            render.escape(f"{e.get('redis_user')} ({e.get('os_user')}@{e.get('host')})"),
            render.escape(render.preview(", ".join(f"{k}={v}" for k, v in selectors.items()), 60)),
            ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in shown.items()),
            render.escape(e.get("backup") or "-"),
        )
    render.out(t)
