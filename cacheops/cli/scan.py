import click

from .. import render
from ..inspect.catalog import NOT_ENTRIES, EntryFilter, build_context, iter_entries, iter_rows, require_cache
from ..inspect.hits import attach_hit_rows, attach_hits
from ..server.keyspace import ScanStats
from .app import AppState, output_format, output_options, pass_state

TTY_DEFAULT_LIMIT = 100


@click.command("scan")
@click.option("--cache", help="Only entries of this cache (its key prefix).")
@click.option("--match", help="SCAN MATCH glob on key names, e.g. 'redis:*'.")
@click.option(
    "--model",
    help="Only entries of this model (its name, or a whole value in the llm_string: gpt-4o is not gpt-4o-mini).",
)
@click.option("--limit", type=click.IntRange(min=1), help=f"Stop after N entries (on a terminal: {TTY_DEFAULT_LIMIT}).")
@click.option(
    "--count", type=click.IntRange(1, 100_000), default=1000, show_default=True, help="SCAN COUNT hint per batch."
)
@click.option("--unknown", is_flag=True, help="Also list keys that are not cache entries.")
@click.option(
    "--prompts",
    "prompts_file",
    type=click.File("r"),
    help="A file of known prompts, one per line: exact caches store only md5(prompt), so "
    "this lets their entries show text.",
)
@click.option("--plain", is_flag=True, help="Do not use the server-side script (for servers that forbid scripts).")
@output_options
@pass_state
def command(state: AppState, cache, match, model, limit, count, unknown, prompts_file, plain, json_flag, table_flag):
    """Stream cache entries: key, layout, model, prompt and answer previews, TTL, size, and the hits
    the app's tracker recorded (cacheops_track; "-" for untracked entries).

    SCAN only (never KEYS); memory stays flat whatever the keyspace size. Off a terminal (or with
    --json) each entry is one JSON line.

    \b
    Example:
        cacheops scan --cache llmcache --limit 20
        cacheops scan --json | jq -r 'select(.ttl_seconds == null) | .key'
    """
    client = state.client()
    known = [line.rstrip("\n") for line in prompts_file if line.strip()] if prompts_file else ()
    ctx = build_context(client, known_texts=known)
    require_cache(client, ctx, cache)
    fmt = output_format(json_flag, table_flag)
    if fmt == "table" and limit is None:
        limit = TTY_DEFAULT_LIMIT
    stats = ScanStats()
    flt = EntryFilter(cache=cache, model=model)
    server_side = False if plain else None
    if fmt == "json":  # rows built straight from the values: no Entry per key (Layout.list_row)
        rows = iter_rows(client, ctx, flt, match, count, limit, unknown, stats, server_side)
        for batch in attach_hit_rows(client, rows):
            render.json_lines(batch)
        render.flush()
        return
    items = iter_entries(
        client,
        ctx,
        flt,
        match=match,
        count=count,
        limit=limit,
        include_unknown=unknown,
        stats=stats,
        server_side=server_side,
        full=False,
    )
    items = attach_hits(client, items)
    C = render.Column
    t = render.table(
        C("key", "key", min=16),
        C("layout", "text", drop=2, min=14),
        C("model", "text", drop=4, min=8),
        C("prompt", "text", min=14),
        C("answer", "text", min=14),
        C("TTL", "fixed", drop=5, justify="right"),
        C("size", "fixed", drop=3, justify="right"),
        C("inserted", "fixed", drop=1),
        C("hits", "fixed", drop=6, justify="right"),
    )
    shown = 0
    for item in items:
        shown += 1
        if isinstance(item, NOT_ENTRIES):
            t.add_row(
                render.short_key(item.key, None),
                "[dim]unknown[/dim]",
                "-",
                f"({item.type})",
                "-",
                render.human_duration(None if item.ttl_ms is None else item.ttl_ms / 1000),
                render.human_bytes(item.bytes),
                "-",
                "-",
            )
            continue
        prompt = (
            item.prompt
            if item.prompt is not None
            else f"hash {item.prompt_hash[:12]}… (not stored)"
            if item.prompt_hash
            else "(not stored)"
        )
        t.add_row(
            render.short_key(item.key, None),
            item.layout,
            render.escape(item.model or "-"),
            render.escape(render.preview(prompt, 48)),
            render.escape(render.preview(item.answer, 48)),
            render.human_duration(None if item.ttl_ms is None else item.ttl_ms / 1000),
            render.human_bytes(item.bytes),
            render.timestamp(item.inserted_at),
            f"{item.hits['hits']:,}" if item.hits else "-",
        )
    render.out(t)
    more = " (limit reached: --limit N or --json for more)" if limit is not None and shown >= limit else ""
    render.note(f"{shown} shown, {stats.keys:,} keys scanned ({stats.path}){more}")
