from itertools import chain

import click

from .. import render
from ..errors import NotFound, UsageError
from ..inspect.catalog import build_context
from ..ops import evict as evict_lib
from ..ops.selection import Neighbourhood, Selection, parse_duration
from ..ownkeys import parse_pair
from .app import AppState, confirmed, pass_state


def _key_stream(keys: tuple[str, ...], keys_from):
    """--key values, then --keys-from lines, streamed (a large file is never held whole)."""
    given = (k.encode("utf-8") for k in keys)
    if keys_from is None:
        return given
    from_file = (line.rstrip("\r\n").encode("utf-8") for line in keys_from if line.strip())
    return chain(given, from_file)


@click.command("evict")
@click.option(
    "--prompt",
    "prompts",
    multiple=True,
    metavar="TEXT",
    help="The user's text: every cached copy, in every cache, for every model (repeatable).",
)
@click.option("--system", metavar="TEXT", help="With --prompt: the system message the app sends before it.")
@click.option(
    "--prompt-hash",
    "prompt_hashes",
    multiple=True,
    metavar="HASH",
    help="The md5 key segment (exact caches) or sha256 entry id (semantic caches), e.g. from logs.",
)
@click.option(
    "--key",
    "keys",
    multiple=True,
    metavar="KEY",
    help="An entry's key (repeatable; taken literally, never as a pattern).",
)
@click.option("--keys-from", type=click.File("r"), metavar="FILE", help="Keys, one per line ('-' for stdin).")
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="NAME=VALUE",
    help="A RedisVL filterable field, or a cacheops tag (`cacheops tag`), equal to VALUE.",
)
@click.option(
    "--response-contains",
    multiple=True,
    metavar="TEXT",
    help="The cached answer contains TEXT (case-sensitive; repeatable, all must appear).",
)
@click.option("--response-regex", metavar="RE", help="The cached answer matches this Python regular expression.")
@click.option("--model", help="Only entries of this model (name, or a piece of the llm_string).")
@click.option(
    "--older-than",
    metavar="DURATION",
    help="Inserted more than DURATION ago (90s, 30m, 12h, 7d, 2w); "
    "entries that record no insertion time (LangChain exact) are never selected by age.",
)
@click.option(
    "--cold",
    metavar="DURATION",
    help="Not hit for DURATION (or never, and written longer ago), as the app's hit tracker "
    "(cacheops_track) recorded; untracked entries are never selected by it.",
)
@click.option("--cache", help="Only entries of this cache (its key prefix); alone, the whole cache.")
@click.option("--unreachable", is_flag=True, help="Only entries their cache can no longer serve.")
@click.option("--similar-to", metavar="TEXT", help="The semantic neighbourhood of TEXT (needs --threshold).")
@click.option("--threshold", type=float, metavar="D", help="With --similar-to: the largest distance selected.")
@click.option(
    "--embedding",
    metavar="SPEC",
    help="With --similar-to: the cache's embedding model, a RedisVL "
    "vectorizer spec (default: the cache's setting in the config file).",
)
@click.option(
    "--backup",
    "backup_path",
    type=click.Path(dir_okay=False),
    metavar="PATH",
    help="Where to write the backup (default: a timestamped file in the state dir).",
)
@click.option("--dry-run", is_flag=True, help="Preview only: delete nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask (required when not on a terminal).")
@click.option(
    "--sample", type=click.IntRange(0, 1000), default=10, show_default=True, help="Rows in the preview's sample table."
)
@click.option("--json", "json_flag", is_flag=True, help="One JSON document: the preview and the result.")
@pass_state
def command(
    state: AppState,
    prompts,
    system,
    prompt_hashes,
    keys,
    keys_from,
    tags,
    response_contains,
    response_regex,
    model,
    older_than,
    cold,
    cache,
    unreachable,
    similar_to,
    threshold,
    embedding,
    backup_path,
    dry_run,
    yes,
    sample,
    json_flag,
):
    """Delete cache entries precisely: preview, confirm, back up, delete, audit.

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
    """
    if (similar_to is None) != (threshold is None):
        raise UsageError("--similar-to TEXT and --threshold D go together")
    if embedding and similar_to is None:
        raise UsageError("--embedding goes with --similar-to")
    key_stream = _key_stream(keys, keys_from) if (keys or keys_from is not None) else None
    source = " ".join(
        filter(
            None,
            [f"--key x{len(keys)}" if keys else "", f"--keys-from {keys_from.name}" if keys_from is not None else ""],
        )
    )
    selection = Selection(
        prompts=list(prompts),
        system=system,
        prompt_hashes=list(prompt_hashes),
        keys=key_stream,
        key_source=source,
        tags=dict(parse_pair(t) for t in tags),
        response_contains=list(response_contains),
        response_regex=response_regex,
        model=model,
        older_than=parse_duration(older_than) if older_than else None,
        older_than_text=older_than,
        cold=parse_duration(cold) if cold else None,
        cold_text=cold,
        cache=cache,
        unreachable=unreachable,
        similar=Neighbourhood(similar_to, threshold, embedding) if similar_to is not None else None,
    )
    if selection.empty:
        raise UsageError(
            "give at least one selector (--prompt, --key, --tag, --response-contains, ... or "
            "--cache NAME to evict a whole cache)"
        )
    client = state.client()
    ctx = build_context(client, known_texts=selection.prompts)
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
            f"Delete {plan.total:,} entries (a backup is written first)?",
            f"refusing to delete {plan.total:,} entries without confirmation: "
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
    render_result(result)


def render_preview(plan) -> None:
    p = plan
    if p.total:
        t = render.table("cache", "entries")
        for cache, n in p.per_cache.most_common():
            t.add_row(render.escape(cache), f"{n:,}")
        render.out(t)
        columns = ["key", "prompt", "model", "answer", "TTL"] + (["distance"] if p.distances else [])
        sample = render.table(*columns, title=f"sample ({len(p.sample)} of {p.total:,})")
        for e in p.sample:
            prompt = e.prompt if e.prompt is not None else f"md5 {(e.prompt_hash or '')[:12]}… (not stored)"
            row = [
                render.escape(render.preview(e.key, 40)),
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
        f"{p.total:,} entries selected ({render.human_bytes(p.bytes)}) from {p.candidates:,} candidates ({p.source})"
    )
    if p.not_entries:
        render.note(f"{p.not_entries:,} candidate key(s) are not cache entries: never deleted")
    if p.missing and p.source == "keys":
        render.note(f"{p.missing:,} candidate key(s) do not exist")
    if p.no_age:
        render.note(f"{p.no_age:,} entries record no insertion time, so --older-than did not select them")
    if p.selection.cold is not None:
        render.note(f"{p.untracked:,} entries have no hit-tracker record (untracked), so --cold did not consider them")


def render_result(result) -> None:
    r = result
    render.out(
        f"deleted {r.deleted:,} of {r.plan.total:,} entries"
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
    render.out(f"backup: {render.escape(r.backup)}  (undo with: cacheops restore {render.escape(r.backup)})")
    actor = r.actor or {}
    render.note(
        f"audit {r.audit_id} by {actor.get('redis_user')} ({actor.get('os_user')}@{actor.get('host')}); "
        f"`cacheops history` lists it"
    )
