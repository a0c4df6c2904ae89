import click

from .. import render
from ..errors import NotFound
from ..inspect.catalog import build_context, require_cache
from ..ops import evict as evict_lib
from .app import AppState, confirmed, pass_state, suggested
from .selectors import SELECTOR_PARAMS, build_selection, plan_options, selector_options


@click.command("evict")
@selector_options
@plan_options("the backup", "delete nothing")
@pass_state
def command(
    state: AppState,
    backup_path,
    dry_run,
    yes,
    sample,
    json_flag,
    **selectors,
):
    """Delete cache entries precisely: preview, confirm, back up, delete, log.

    Selectors combine (all must hold). Always previews first (counts per cache and a sample); on a
    terminal it asks before deleting, otherwise it needs --yes. Before deleting it writes a backup
    that `cacheops restore FILE` puts back exactly. Each key is re-checked at delete time: an entry
    the app rewrote since the preview is deleted only if it still matches. Keys that are not cache
    entries are never deleted. Exit codes: 0 done (or previewed), 7 nothing matched, 2 bad usage or
    --yes missing off a terminal.

    \b
    Example:
        cacheops evict --prompt "What is the refund policy?" --dry-run
        cacheops evict --response-contains "never possible" --cache llmcache --yes
        cacheops evict --cold 30d --cache redis --dry-run
        cacheops evict --suspect error_text --dry-run
    """
    selection = build_selection(**{name: selectors[name] for name in SELECTOR_PARAMS})
    client = state.client()
    ctx = build_context(client, known_texts=selection.prompts)
    require_cache(client, ctx, selectors["cache"])
    with render.status("selecting entries…"):
        plan = evict_lib.plan(client, selection, ctx, sample_size=sample)
    try:
        doc = {"preview": plan.to_dict(), "dry_run": dry_run}
        if not json_flag:
            render_preview(plan)
        if plan.total == 0:
            if json_flag:
                render.json_doc(doc)
            raise NotFound("nothing matched those selectors; nothing was deleted")
        if dry_run:
            if json_flag:
                render.json_doc(doc)
            else:
                render.note("dry run: nothing was deleted")
            return
        if not confirmed(
            f"Delete {render.plural(plan.total, 'entry', 'entries')} (a backup is written first)?",
            f"refusing to delete {render.plural(plan.total, 'entry', 'entries')} without confirmation: "
            f"re-run with --yes (or --dry-run to only preview)",
            yes,
        ):
            render.note("cancelled: nothing was deleted")
            return
        with render.progress(plan.total, "evicting") as advance:
            result = evict_lib.execute(
                client, plan, backup_path=backup_path, server=state.spec.display, on_progress=advance, ctx=ctx
            )
    finally:
        plan.close()
    if json_flag:
        doc["result"] = result.to_dict()
        render.json_doc(doc)
        return
    render_result(result, undo=suggested(state, "restore", result.backup or ""))


def render_preview(plan) -> None:
    p = plan
    if p.total:
        C = render.Column
        t = render.table(C("cache", "key", min=16), C("entries", "fixed", justify="right"))
        for cache, n in p.per_cache.most_common():
            t.add_row(cache, f"{n:,}")
        render.out(t)
        columns = [
            C("key", "key", min=16),
            C("prompt", "text", min=14),
            C("model", "text", drop=2, min=8),
            C("answer", "text", min=14),
            C("TTL", "fixed", drop=1, justify="right"),
        ] + ([C("distance", "fixed", justify="right")] if p.distances else [])
        sample = render.table(*columns, title=f"sample ({len(p.sample)} of {p.total:,})")
        for e in p.sample:
            prompt = e.prompt if e.prompt is not None else f"md5 {(e.prompt_hash or '')[:12]}… (not stored)"
            row = [
                render.short_key(e.key, None),
                render.escape(render.preview(prompt, 40)),
                render.escape(e.model or "-"),
                render.escape(render.preview(e.answer, 40)),
                render.human_duration(None if e.ttl_ms is None else e.ttl_ms / 1000),
            ]
            if p.distances:
                d = p.distances.get(e.key)
                row.append("-" if d is None else f"{d:.4f}")
            sample.add_row(*row)
        render.out(sample)
    render.out(
        f"{render.plural(p.total, 'entry', 'entries')} selected ({render.human_bytes(p.bytes)}) "
        f"from {render.plural(p.candidates, 'candidate')} ({p.source})"
    )
    if p.not_entries:
        what = ", ".join(f"{n:,} {kind}" for kind, n in p.not_entries_kinds.most_common())
        verb = "is not a cache entry" if p.not_entries == 1 else "are not cache entries"
        render.note(f"{render.plural(p.not_entries, 'candidate key')} {verb} ({what}): never deleted")
    if p.missing and p.source == "keys":
        render.note(f"{render.plural(p.missing, 'candidate key')} {'does' if p.missing == 1 else 'do'} not exist")
    if p.no_age:
        render.note(
            f"{render.plural(p.no_age, 'entry', 'entries')} record{'s' if p.no_age == 1 else ''} no insertion time, "
            f"so --older-than did not select {'it' if p.no_age == 1 else 'them'}"
        )
    if p.selection.cold is not None:
        render.note(
            f"{render.plural(p.untracked, 'entry', 'entries')} ha{'s' if p.untracked == 1 else 've'} no hit-tracker "
            "record (untracked), so --cold did not consider them"
        )


def render_result(result, undo: str) -> None:
    r = result
    render.out(
        f"deleted {render.plural(r.deleted, 'entry', 'entries')} of {r.plan.total:,} selected"
        + (f" (+{r.companions_deleted:,} companion keys)" if r.companions_deleted else "")
        + f" in {r.seconds:.2f}s"
    )
    for cache, n in r.per_cache.most_common():
        render.out(f"  {render.escape(cache)}: {n:,}")
    if r.no_longer_matching:
        render.note(f"{r.no_longer_matching:,} rewritten since the preview and no longer matching: kept")
    if r.gone:
        render.note(f"{r.gone:,} already gone (expired or deleted by the app)")
    if r.kept_busy:
        render.warn(f"{r.kept_busy:,} kept changing while being deleted: left alone; run again")
    render.out(f"backup: {render.escape(r.backup)}")
    render.out_unfolded(f"undo with: {render.escape(undo)}")
    actor = r.actor or {}
    render.note(
        f"event {r.event_id} by {actor.get('redis_user')} ({actor.get('os_user')}@{actor.get('host')}); "
        f"`cacheops history` lists it"
    )
