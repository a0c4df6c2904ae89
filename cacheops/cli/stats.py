import click

from .. import render
from ..inspect.catalog import TTL_BUCKETS, EntryFilter, build_context, require_cache
from ..inspect.stats import FREQ_BUCKETS, IDLE_BUCKETS, collect_stats
from ..server.keyspace import ScanStats
from .app import AppState, output_format, output_options, pass_state


@click.command("stats")
@click.option("--cache", help="Only this cache.")
@output_options
@pass_state
def command(state: AppState, cache, json_flag, table_flag):
    """Per cache: entries, bytes, TTL histogram, entries per model, oldest/newest; server: version,
    memory policy, hit ratio; per entry access: LFU frequency or idle time, whichever the policy keeps.

    \b
    Example:
        cacheops stats --cache llmcache
    """
    client = state.client()
    ctx = build_context(client)
    require_cache(client, ctx, cache)
    progress = ScanStats()
    with render.scan_progress(progress):
        report = collect_stats(client, ctx, EntryFilter(cache=cache), scan_stats=progress)
    if output_format(json_flag, table_flag) == "json":
        render.json_doc(report.to_dict())
        return
    s = report.server
    ratio = f"{report.hit_ratio:.1%}" if report.hit_ratio is not None else "no lookups yet"
    render.out(
        f"[bold]Redis {s.version}[/bold]  maxmemory {render.human_bytes(s.maxmemory) if s.maxmemory else 'unlimited'}"
        f" ({s.policy}), used {render.human_bytes(s.used_memory)}"
    )
    render.out(
        f"keyspace hits {s.keyspace_hits:,} / misses {s.keyspace_misses:,}: hit ratio {ratio} "
        f"[dim](whole server, INFO stats)[/dim]"
    )
    if not report.catalog.caches:
        render.out("No LLM caches found.")
    buckets = FREQ_BUCKETS if report.access.measure == "lfu_frequency" else IDLE_BUCKETS
    label = (
        "LFU frequency (OBJECT FREQ)"
        if report.access.measure == "lfu_frequency"
        else "idle time since last access (OBJECT IDLETIME)"
    )
    for c in report.catalog.caches:
        render.out("")
        render.out(
            f"[bold]{render.escape(c.name)}[/bold]  {c.kind}, {', '.join(c.libraries) or 'empty'}"
            f"{', index ' + c.index if c.index else ''}: {render.plural(c.entries, 'entry', 'entries')}, {render.human_bytes(c.bytes)}"
            f", inserted {render.timestamp(c.oldest)} .. {render.timestamp(c.newest)}"
        )
        C = render.Column
        t = render.table(C("TTL left", "fixed"), C("entries", "fixed", justify="right"), C("", "fixed"))
        for name, _ in TTL_BUCKETS:
            n = c.ttl_histogram.get(name, 0)
            t.add_row(name, f"{n:,}", render.bar(n, c.entries))
        render.out(t)
        if c.models:
            t = render.table(C("model", "text", min=16), C("entries", "fixed", justify="right"), C("", "fixed"))
            for model, n in c.models.most_common(10):
                t.add_row(render.escape(model), f"{n:,}", render.bar(n, c.entries))
            render.out(t)
        hist = report.access.per_cache.get(c.name)
        if hist:
            total = sum(hist.values())
            t = render.table(C(label, "fixed"), C("entries", "fixed", justify="right"), C("", "fixed"))
            for name, _ in buckets:
                t.add_row(name, f"{hist.get(name, 0):,}", render.bar(hist.get(name, 0), total))
            render.out(t)
        for text in c.notes:
            render.warn(f"{c.name}: {text}")
