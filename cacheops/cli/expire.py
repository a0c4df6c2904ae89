"""`cacheops expire`: change the TTL of selected entries in bulk (preview, confirm, backup, log)."""

from __future__ import annotations

import click

from .. import render
from ..errors import NotFound, UsageError
from ..inspect.catalog import build_context, require_cache
from ..ops import expire as expire_lib
from ..ops.selection import parse_duration
from .app import AppState, confirmed, pass_state, suggested
from .evict import render_preview as render_selection
from .selectors import SELECTOR_PARAMS, build_selection, plan_options, selector_options

WHAT = {
    "lengthen": "lengthened",
    "shorten": "shortened",
    "add_ttl": "get a TTL (none now)",
    "remove_ttl": "lose their TTL",
    "unchanged": "unchanged",
    "gone": "gone since selected",
}


@click.command("expire")
@selector_options
@click.option("--ttl", "ttl", metavar="DURATION", help="Every selected entry expires DURATION from now (7d, 12h, 90s).")
@click.option(
    "--ttl-max",
    metavar="DURATION",
    help="Only shorten: entries that would live longer than DURATION (or forever) expire DURATION from now.",
)
@click.option("--persist", is_flag=True, help="The selected entries no longer expire.")
@plan_options("the backup of the old TTLs", "change nothing")
@pass_state
def command(state: AppState, ttl, ttl_max, persist, backup_path, dry_run, yes, sample, json_flag, **selectors):
    """Change the TTL of cache entries in bulk: preview, confirm, back up the old TTLs, change, log.

    The entries are chosen with evict's selectors (all must hold). --ttl sets every selected entry's
    TTL (the preview counts how many are lengthened and shortened); --ttl-max only shortens those
    that would live longer, or forever; --persist removes the TTL. Entries not selected, and keys
    that are not cache entries, are never touched; an entry's tag hash and hit record follow its
    TTL. An entry whose TTL the app changed since the preview (a refresh, a rewrite) is left alone.
    The old TTLs are backed up first: `cacheops restore BACKUP` puts them back. Runs on a Redis
    Cluster too (per hash slot). Exit codes: 0 done (or previewed), 7 nothing matched, 2 bad usage
    or --yes missing off a terminal, 3 a cluster primary lost mid-run (the backup is named).

    \b
    Example:
        cacheops expire --tag topic=faq --ttl 7d --dry-run
        cacheops expire --cache llmcache --response-regex "today|this week" --ttl-max 1h --yes
    """
    given = [flag for flag, value in (("--ttl", ttl), ("--ttl-max", ttl_max), ("--persist", persist)) if value]
    if len(given) != 1:
        raise UsageError("give exactly one of --ttl DURATION, --ttl-max DURATION or --persist")
    if persist:
        change = expire_lib.TtlChange(expire_lib.PERSIST)
    elif ttl:
        change = expire_lib.TtlChange(expire_lib.SET, parse_duration(ttl), ttl)
    else:
        change = expire_lib.TtlChange(expire_lib.CAP, parse_duration(ttl_max), ttl_max)
    selection = build_selection(**{name: selectors[name] for name in SELECTOR_PARAMS}, what="expire")
    client = state.client()
    ctx = build_context(client, known_texts=selection.prompts)
    require_cache(client, ctx, selectors["cache"])
    with render.status("selecting entries…"):
        plan = expire_lib.plan(client, selection, change, ctx, sample_size=sample)
    try:
        doc = {"preview": plan.to_dict(), "dry_run": dry_run}
        if not json_flag:
            render_preview(plan)
        if plan.selection.total == 0:
            if json_flag:
                render.json_doc(doc)
            raise NotFound("nothing matched those selectors; no TTL was changed")
        if dry_run or plan.total == 0:
            if json_flag:
                render.json_doc(doc)
            else:
                render.note("dry run: no TTL was changed" if dry_run else "every selected TTL is already so")
            return
        if not confirmed(
            f"Change the TTL of {plan.total:,} entries (the old TTLs are backed up first)?",
            f"refusing to change {plan.total:,} TTLs without confirmation: re-run with --yes "
            "(or --dry-run to only preview)",
            yes,
        ):
            render.note("cancelled: no TTL was changed")
            return
        with render.progress(plan.total, "expiring") as advance:
            result = expire_lib.execute(
                client, plan, backup_path=backup_path, server=state.spec.display, on_progress=advance
            )
    finally:
        plan.close()
    if json_flag:
        doc["result"] = result.to_dict()
        render.json_doc(doc)
        return
    render_result(result, undo=suggested(state, "restore", result.backup or ""))


def render_preview(plan: expire_lib.ExpirePlan) -> None:
    render_selection(plan.selection)
    change = ", ".join(f"{k.replace('_', ' ')} {v}" if v is not True else k for k, v in plan.change.describe().items())
    t = render.table("TTL", "entries", title=f"{change}: what happens to the selected entries")
    for kind, label in WHAT.items():
        if plan.counts[kind]:
            t.add_row(label, f"{plan.counts[kind]:,}")
    render.out(t)
    render.out(f"{plan.total:,} TTLs would change")


def render_result(result: expire_lib.ExpireResult, undo: str) -> None:
    r = result
    render.out(f"changed the TTL of {r.changed:,} of {r.plan.total:,} entries in {r.seconds:.2f}s")
    for cache, n in r.per_cache.most_common():
        render.out(f"  {render.escape(cache)}: {n:,}")
    if r.changed_meanwhile:
        render.note(f"{r.changed_meanwhile:,} had their TTL changed by the app since the preview: left alone")
    if r.gone:
        render.note(f"{r.gone:,} already gone (expired or deleted by the app)")
    if r.unchanged:
        render.note(f"{r.unchanged:,} came within the cap by themselves: unchanged")
    render.out(f"backup: {render.escape(r.backup or '')}")
    render.out_unfolded(f"undo with: {render.escape(undo)}")
    render.note(f"event {r.event_id}; `cacheops history` lists it")
