"""`cacheops migrate-embeddings`: re-embed a semantic cache with a new model, into a new cache."""

from __future__ import annotations

import click

from .. import render
from ..errors import UsageError
from ..inspect.catalog import build_context
from ..ops import migrate as migrate_lib
from ..semantic.vectorizers import load_vectorizer, parse_spec
from .app import AppState, confirmed, pass_state, suggested


@click.command("migrate-embeddings")
@click.option(
    "--cache",
    required=True,
    metavar="NAME",
    help="The semantic cache to migrate (its key prefix, as `cacheops caches` names it).",
)
@click.option(
    "--to",
    "to_spec",
    metavar="SPEC",
    help="The new embedding model, a RedisVL vectorizer spec, e.g. hf:sentence-transformers/all-MiniLM-L6-v2.",
)
@click.option(
    "--from",
    "from_spec",
    metavar="SPEC",
    help="The model the cache was written with (recorded in the operations log; the old vectors are never needed).",
)
@click.option(
    "--target",
    metavar="NAME",
    help="The new cache's name (default: <model>-<cache>, which never shares a key prefix with the source).",
)
@click.option(
    "--batch",
    type=click.IntRange(1, 10_000),
    default=migrate_lib.DEFAULT_BATCH,
    show_default=True,
    help="Entries read, embedded and written per step.",
)
@click.option(
    "--in-place",
    is_flag=True,
    help="Keep the cache's name: build beside it, back up and replace its entries, recreate its index "
    "with the new dims (resumable; `cacheops restore` of the backup is the rollback).",
)
@click.option(
    "--flush",
    is_flag=True,
    help="Start cold instead: back up and delete the cache's entries and drop its index (no --to needed).",
)
@click.option("--dry-run", is_flag=True, help="Preview only: write nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask (required when not on a terminal).")
@click.option("--json", "json_flag", is_flag=True, help="One JSON document: the preview and the result.")
@pass_state
def command(state: AppState, cache, to_spec, from_spec, target, batch, in_place, flush, dry_run, yes, json_flag):
    """Re-embed every entry of a semantic cache with a new embedding model, into a new cache.

    Side by side, never in place: the source cache is only read. The target gets the source index's
    schema (fields, filterable fields, metric, algorithm) with the new model's dims, under its own
    prefix, exactly as langchain-redis RedisSemanticCache / RedisVL SemanticCache create it for that
    name; every entry keeps its id, its fields (byte for byte) and its remaining TTL, with the vector
    re-computed from the stored prompt. Re-running skips what is already migrated. Then point the
    app at the target name and the new model, and evict the old cache (`cacheops evict --cache`).
    With --in-place the app keeps the cache's name (it restarts on the new model with the same
    config): the new cache is built beside it, the old entries are backed up and deleted, the index is
    dropped, the new entries moved under the cache's own prefix and the index recreated with the new
    dims. --flush backs up and deletes the entries and drops the index (the app starts cold). Both are
    resumable: a re-run after a crash finishes from the phase the preview names (docs/migrate.md).
    Exit codes: 0 done (or previewed), 7 no such cache, 2 bad usage, not a semantic cache or --yes
    missing off a terminal, 12 model not available, 13 target taken or overlapping another index.

    \b
    Example:
        cacheops migrate-embeddings --cache llmcache --to hf:sentence-transformers/all-MiniLM-L6-v2 --dry-run
        cacheops migrate-embeddings --cache llmcache --to hf:sentence-transformers/all-MiniLM-L6-v2 --yes
        cacheops migrate-embeddings --cache llmcache --to hf:sentence-transformers/all-MiniLM-L6-v2 --in-place --yes
    """
    if in_place or flush:
        from .migrate_inplace import run_in_place

        return run_in_place(state, cache, to_spec, from_spec, target, batch, flush, dry_run, yes, json_flag)
    if not to_spec:
        raise UsageError("give --to SPEC, the new embedding model (or --flush to start cold)")
    parse_spec(to_spec)  # a bad SPEC fails before any connection or model load
    if from_spec:
        parse_spec(from_spec)
    client = state.client()
    ctx = build_context(client, learn=False)
    # The source is checked before the model loads (seconds), the target after (it needs the dims).
    with render.status(f"checking {cache} and loading {to_spec}…"):
        plan = migrate_lib.plan(client, cache, to_spec, from_spec=from_spec, target=target, ctx=ctx)
    vectorizer = load_vectorizer(plan.to_spec)  # loaded once per process: the one plan used
    doc = {"preview": plan.to_dict(), "dry_run": dry_run}
    if not json_flag:
        render_preview(plan)
    if dry_run:
        if json_flag:
            render.json_doc(doc)
        else:
            render.note("dry run: nothing was written")
        return
    if not confirmed(
        f"Create/fill cache {plan.target!r} with {plan.entries:,} re-embedded entries (the source is not modified)?",
        f"refusing to migrate {render.plural(plan.entries, 'entry', 'entries')} without confirmation: "
        "re-run with --yes (or --dry-run to only preview)",
        yes,
    ):
        render.note("cancelled: nothing was written")
        return
    with render.progress(plan.entries, "re-embedding", threshold=1) as advance:
        result = migrate_lib.execute(client, plan, vectorizer=vectorizer, batch=batch, on_progress=advance, ctx=ctx)
    if json_flag:
        doc["result"] = result.to_dict()
        render.json_doc(doc)
        return
    render_result(result, evict_source=suggested(state, "evict", "--cache", result.plan.source))


def render_preview(plan) -> None:
    p = plan
    t = render.table("", "source", "target")
    t.add_row(
        "cache",
        render.escape(p.source),
        render.escape(p.target) + (" (exists: resuming)" if p.target_exists else " (new)"),
    )
    t.add_row("index", render.escape(p.source_index), render.escape(p.target))
    t.add_row("library", render.escape(p.library), render.escape(p.library))
    t.add_row("model", render.escape(p.from_spec or "(not given)"), render.escape(p.to_spec))
    t.add_row("vectors", f"{p.source_dims} {p.source_dtype}", f"{p.target_dims} {p.target_dtype}")
    t.add_row("entries", f"{p.entries:,}", f"{p.target_docs:,} already there")
    render.out(t)
    schema = render.table("field", "type", title=f"target index {p.target!r} (prefix {p.target!r})")
    for name, desc in p.index_fields():
        schema.add_row(render.escape(name), render.escape(desc))
    render.out(schema)
    for note in p.notes:
        render.warn(note)


def render_result(result, evict_source: str) -> None:
    r, p = result, result.plan
    render.out(
        f"migrated {render.plural(r.migrated, 'entry', 'entries')} to {render.escape(p.target)!s} in {r.seconds:.1f}s "
        f"({r.rate:,.1f}/s)" + (f", {r.refreshed:,} of them newer than the target's copy" if r.refreshed else "")
    )
    if r.skipped:
        render.note(f"{r.skipped:,} already migrated: skipped")
    if r.expired:
        render.note(f"{r.expired:,} expired (or were deleted) before they could be copied")
    if r.not_entries:
        render.note(f"{r.not_entries:,} keys under {p.source}: are not entries of this cache: not copied")
    if r.conflicts:
        render.warn(f"{r.conflicts:,} target keys exist and are not hashes: left alone")
    render.note(f"event {r.event_id}; `cacheops history` lists it")
    name = render.escape(p.target)
    render.out(f"next: configure the app with {render.escape(migrate_lib.app_settings(p))}")
    render.out_unfolded(
        f"then, once it serves from {name}, remove the old cache: {render.escape(evict_source)} "
        f"(it backs up first); re-run this command before that to copy entries the app wrote meanwhile"
    )
