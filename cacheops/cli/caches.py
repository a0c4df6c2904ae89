import click

from .. import render
from ..inspect.catalog import EntryFilter, build_catalog, build_context, require_cache
from ..inspect.quick_catalog import quick_catalog
from ..server.keyspace import ScanStats
from .app import AppState, output_format, output_options, pass_state


@click.command("caches")
@click.option("--cache", help="Only the cache with this name (key prefix).")
@click.option(
    "--full",
    is_flag=True,
    help="Read and decode every value (exact library, models, vectors) instead of a sample of 1,000 keys per cache.",
)
@output_options
@pass_state
def command(state: AppState, cache, full, json_flag, table_flag):
    """Every LLM cache in the keyspace: library, index, entries, memory, TTLs, vectors, models.

    One SCAN pass over key names only: every key is counted by the caches its name could belong to,
    and up to 1,000 keys per group of like names are read; a larger cache's entries, memory and TTLs
    are that sample's scaled to its key count and its library, models and vectors the sample's, all
    labelled as sampled; --full reads every value. Keys that match no known layout are counted as
    unknown, never as entries.

    \b
    Example:
        cacheops caches
        cacheops caches --json | jq '.caches[].name'
    """
    client = state.client()
    ctx = build_context(client)
    require_cache(client, ctx, cache)
    progress = ScanStats()
    with render.scan_progress(progress):
        build = build_catalog if full else quick_catalog
        catalog = build(client, ctx, EntryFilter(cache=cache), stats=progress)
    if output_format(json_flag, table_flag) == "json":
        render.json_doc(catalog.to_dict())
        return
    render_catalog(catalog)


def render_catalog(catalog) -> None:
    if not catalog.caches:
        render.out("No LLM caches found.")
    else:
        C = render.Column
        t = render.table(
            C("cache", "key", min=14),
            C("kind", "text", drop=6, min=8),
            C("library", "wrap", drop=2, min=18),
            C("index", "key", drop=1, min=8),
            C("entries", "fixed", justify="right"),
            C("memory", "fixed", drop=5, justify="right"),
            C("TTL", "text", drop=4, min=9),
            C("vectors", "text", drop=3, min=7),
            C("models", "text", min=12),
        )
        for c in catalog.caches:
            libraries = ", ".join(c.libraries) or "-"
            if c.sampled:  # shares of the sample, not counts
                total = sum(c.models.values()) or 1
                models = ", ".join(f"{m} (~{n / total:.0%})" for m, n in c.models.most_common(3))
            else:
                models = ", ".join(f"{m} ({n})" for m, n in c.models.most_common(3))
            if len(c.models) > 3:
                models += f", +{len(c.models) - 3} more"
            vectors = ", ".join(c.vector_dims) or "-"
            about = "~" if c.sampled else ""  # estimated from the sample
            t.add_row(
                c.name,
                c.kind,
                libraries,
                c.index or "-",
                f"{about}{c.entries:,}" if c.entries or not c.infrastructure else "-",
                about + render.human_bytes(c.bytes) if c.entries or not c.infrastructure else "-",
                c.ttl_policy,
                vectors,
                render.escape(models or "-"),
            )
        render.out(t)
        for c in catalog.caches:
            if c.infrastructure:
                # the same figures as the JSON's "infrastructure": keys beside the entries, not entries
                roles = ", ".join(f"{n:,} {role}" for role, n in c.infrastructure.most_common())
                render.note(
                    f"{c.name}: {render.plural(sum(c.infrastructure.values()), 'key')} beside the entries "
                    f"({roles}), {render.human_bytes(c.infrastructure_bytes)}; not entries, not in the table's figures"
                )
            for text in c.notes:
                render.warn(f"{c.name}: {text}")
    sampled = [c for c in catalog.caches if c.sampled]
    if sampled:
        render.note(
            f"{', '.join(c.name for c in sampled)}: entries, memory and TTLs (~) estimated and library, models "
            f"and vectors read from a sample of {max(c.sampled['keys'] for c in sampled):,} keys; "
            "`--full` reads every value"
        )
    render.note(
        f"{catalog.scanned_keys:,} keys scanned in {catalog.seconds:.2f}s ({catalog.scan_path}); "
        f"{catalog.unknown_keys:,} not recognised as cache entries"
    )
