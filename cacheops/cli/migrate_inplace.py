"""`migrate-embeddings --in-place` / `--flush`: preview (with the phase a re-run resumes), confirm, run."""

from __future__ import annotations

from collections.abc import Callable

from .. import render
from ..errors import UsageError
from ..inspect.catalog import build_context
from ..ops import migrate_inplace as inplace
from ..semantic.vectorizers import load_vectorizer, parse_spec
from .app import AppState, confirmed, suggested

WHAT = {
    "build": "re-embed every entry into the temporary cache",
    "backup": "back up and delete the cache's entries",
    "drop_source_index": "drop the cache's index (not its documents)",
    "move": "move the re-embedded entries under the cache's name",
    "create_index": "create the cache's index with the new dims",
    "drop_temp_index": "drop the temporary cache's index",
    "drop_index": "drop the cache's index (not its documents)",
}


def run_in_place(state: AppState, cache, to_spec, from_spec, target, batch, flush, dry_run, yes, json_flag) -> None:
    if flush and to_spec:
        raise UsageError("--flush starts the cache cold: it re-embeds nothing, so leave out --to")
    if target:
        raise UsageError("--target names a side-by-side cache; --in-place and --flush keep the cache's name")
    if not flush and not to_spec:
        raise UsageError("--in-place needs --to SPEC, the new embedding model")
    if to_spec:
        parse_spec(to_spec)
    if from_spec:
        parse_spec(from_spec)
    mode = inplace.FLUSH if flush else inplace.IN_PLACE
    client = state.client()
    ctx = build_context(client, learn=False)
    with render.status(f"checking {cache}…"):
        plan = inplace.plan(client, cache, mode, to_spec, from_spec, ctx=ctx)
        # only building re-embeds (loaded once per process: the one the plan used)
        vectorizer = load_vectorizer(plan.state.to_spec or "") if plan.needs_model else None
    doc = {"preview": plan.to_dict(), "dry_run": dry_run}
    if not json_flag:
        render_preview(plan)
    if dry_run:
        if json_flag:
            render.json_doc(doc)
        else:
            render.note("dry run: nothing was changed")
        return
    question = (
        f"Replace the {plan.entries:,} entries of {cache!r} with re-embedded copies, under the same name "
        f"(backed up first)?"
        if mode == inplace.IN_PLACE
        else f"Delete the {plan.entries:,} entries of {cache!r} and drop its index (backed up first)?"
    )
    if not confirmed(question, f"refusing to {mode} {cache!r} without confirmation: re-run with --yes", yes):
        render.note("cancelled: nothing was changed")
        return
    with render.status(f"{mode} {cache}…"):
        result = inplace.execute(client, plan, vectorizer=vectorizer, batch=batch, server=state.spec.display)
    if json_flag:
        doc["result"] = result.to_dict()
        render.json_doc(doc)
        return
    render_result(result, restore=lambda path: suggested(state, "restore", path))


def render_preview(plan: inplace.InPlacePlan) -> None:
    e = render.escape
    s = plan.state
    if plan.resuming:
        render.out(
            f"[yellow]resuming[/yellow] the {plan.mode} of {e(plan.cache)} started "
            f"{render.timestamp(s.started_at)}, at phase [bold]{s.phase}[/bold]"
        )
    t = render.table("", "phase", "what", title=f"{plan.mode} {e(plan.cache)} (index {e(s.source_index)})")
    start = plan.phases.index(s.phase)
    for i, phase in enumerate(plan.phases):
        mark = "done" if i < start else ("resume here" if i == start and plan.resuming else "")
        t.add_row(mark, phase, WHAT[phase])
    render.out(t)
    line = f"{plan.entries:,} entries in {e(plan.cache)}"
    if plan.mode == inplace.IN_PLACE:
        line += f"; model {e(s.from_spec or '(not given)')} -> {e(s.to_spec or '')}"
        line += f"; temporary cache {e(s.target or '')} ({plan.temp_entries:,} entries now)"
    render.out(line)
    if s.backups:
        render.note("backups so far: " + ", ".join(s.backups))


def render_result(result: inplace.InPlaceResult, restore: Callable[[str], str]) -> None:
    """restore: the `cacheops restore` line for a backup, with this run's connection options."""
    r, s = result, result.plan.state
    e = render.escape
    if r.plan.mode == inplace.IN_PLACE:
        render.out(
            f"{e(r.plan.cache)} now holds {r.indexed:,} entries embedded with {e(s.to_spec or '')} "
            f"({r.moved:,} moved in, {r.backed_up:,} old entries backed up) in {r.seconds:.1f}s"
        )
        if r.kept:
            render.note(f"{r.kept:,} entries were written by the app meanwhile: kept")
        render.out(f"next: start the app with the new model and the same cache name ({e(r.plan.cache)})")
    else:
        render.out(f"flushed {e(r.plan.cache)}: {r.backed_up:,} entries backed up and deleted, index dropped")
        render.out("next: start the app with the new model: it creates the cache's index for it")
    for path in s.backups:
        render.out(f"backup: {e(path)}")
        render.out_unfolded(f"undo with: {e(restore(path))}  (see docs/migrate.md, Rollback)")
    render.note(f"event {r.event_id}; `cacheops history` lists it")
