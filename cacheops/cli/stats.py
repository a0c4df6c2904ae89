import click

from .. import render
from ..inspect.catalog import TTL_BUCKETS, EntryFilter, build_context, require_cache
from ..inspect.hits import HitReport, hit_report, tracked_caches
from ..inspect.stats import FREQ_BUCKETS, IDLE_BUCKETS, collect_stats
from ..ops.selection import parse_duration
from ..server.keyspace import ScanStats
from .app import AppState, output_format, output_options, pass_state


@click.command("stats")
@click.option("--cache", help="Only this cache.")
@click.option(
    "--since", default="24h", show_default=True, help="Tracked hit rates over this window (e.g. 1h, 24h, 7d, 90d)."
)
@click.option(
    "--cold-after",
    default="7d",
    show_default=True,
    help="Tracked entries not hit (or never hit since written) for this long are listed as cold.",
)
@click.option("--top", type=click.IntRange(0, 1000), default=10, show_default=True, help="Most hit entries to list.")
@click.option(
    "--full",
    is_flag=True,
    help="Read every value (exact entries, memory, TTLs, models, age, access) instead of a sample of "
    "1,000 keys per cache.",
)
@output_options
@pass_state
def command(state: AppState, cache, since, cold_after, top, full, json_flag, table_flag):
    """Per cache: entries, bytes, TTL histogram, entries per model, oldest/newest; server: version,
    memory policy, hit ratio; per entry access: LFU frequency or idle time, whichever the policy keeps.

    Every key name is counted (as `cacheops caches` does); entries, memory and TTLs of a cache larger
    than its sample are the sample's scaled to its keys, and models, age, unreachable entries and the
    access histogram come from the sample (labelled as sampled) unless --full.

    For caches the app tracks (cacheops_track): hit rate now and over --since with a sparkline, per
    model; tokens and money saved per day; the most hit entries and the cold ones.

    \b
    Example:
        cacheops stats --cache llmcache --since 7d
    """
    window, cold = parse_duration(since), parse_duration(cold_after)
    client = state.client()
    ctx = build_context(client)
    require_cache(client, ctx, cache)
    progress = ScanStats()
    with render.scan_progress(progress):
        report = collect_stats(client, ctx, EntryFilter(cache=cache), scan_stats=progress, full=full)
        hits = hit_report(client, window, cache, top=top, cold_after=cold) if tracked_caches(client) else None
    if output_format(json_flag, table_flag) == "json":
        render.json_doc({**report.to_dict(), "hits": hits.to_dict() if hits else None})
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
        "LFU frequency (OBJECT FREQ: a decaying logarithmic counter, not a hit count)"
        if report.access.measure == "lfu_frequency"
        else "idle time since last access (OBJECT IDLETIME)"
    )
    for c in report.catalog.caches:
        render.out("")
        render.out(
            f"[bold]{render.escape(c.name)}[/bold]  {c.kind}, {', '.join(c.libraries) or 'empty'}"
            f"{', index ' + c.index if c.index else ''}: {render.plural(c.entries, 'entry', 'entries')}, "
            f"{render.human_bytes(c.bytes)}"
            f", inserted {render.timestamp(c.oldest)} .. {render.timestamp(c.newest)}"
        )
        C = render.Column
        t = render.table(C("TTL left", "fixed"), C("entries", "fixed", justify="right"), C("", "fixed"))
        for name, _ in TTL_BUCKETS:
            n = c.ttl_histogram.get(name, 0)
            t.add_row(name, f"{n:,}", render.bar(n, c.entries))
        render.out(t)
        if c.models:
            heading = f"entries (of {c.sampled['keys']:,} sampled)" if c.sampled else "entries"
            t = render.table(C("model", "text", min=16), C(heading, "fixed", justify="right"), C("", "fixed"))
            for model, n in c.models.most_common(10):
                t.add_row(render.escape(model), f"{n:,}", render.bar(n, sum(c.models.values())))
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
    if hits is not None:
        render_hits(hits, since)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def render_hits(hits: HitReport, since: str) -> None:
    money = hits.currency
    render.out("")
    render.out(
        f"[bold]Tracked hits[/bold] [dim](recorded by cacheops_track in the app; prices of {hits.prices_taken})[/dim]"
    )
    t = render.table("cache", "model", "now (5m)", f"last {since}", "", "hits", "misses", "tokens saved", "saved")
    for c in hits.caches:
        t.add_row(
            render.escape(c.name),
            "(all)",
            _rate(c.now.hit_rate),
            _rate(c.window.hit_rate),
            c.sparkline,
            f"{c.window.hits:,}",
            f"{c.window.misses:,}",
            f"{c.window.input_saved + c.window.output_saved:,}" + (" (est.)" if c.window.estimated else ""),
            f"{c.window.money_saved:.4f} {money}",
        )
        for model, m in sorted(c.per_model.items()):
            t.add_row(
                "",
                render.escape(model),
                "",
                _rate(m.hit_rate),
                "",
                f"{m.hits:,}",
                f"{m.misses:,}",
                f"{m.input_saved + m.output_saved:,}",
                f"{m.money_saved:.4f} {money}" if m.unpriced_hits < m.hits or not m.hits else "(no price)",
            )
    render.out(t)
    days = sorted({d for c in hits.caches for d in c.per_day})[-14:]
    if days:
        t = render.table("day (UTC)", "hits", "tokens saved", "saved")
        for day in days:
            rows = [c.per_day[day] for c in hits.caches if day in c.per_day]
            t.add_row(
                day,
                f"{sum(r.hits for r in rows):,}",
                f"{sum(r.input_saved + r.output_saved for r in rows):,}",
                f"{sum(r.money_saved for r in rows):.4f} {money}",
            )
        render.out(t)
    if hits.top:
        t = render.table("top entries", "cache", "model", "hits", "last hit", "prompt")
        for e in hits.top:
            t.add_row(
                render.escape(render.short_key(e.key)),
                render.escape(e.cache or "-"),
                render.escape(e.model or "-"),
                f"{e.hits:,}",
                render.timestamp(e.last_hit),
                render.escape(render.preview(e.prompt, 40)),
            )
        render.out(t)
    render.out(
        f"cold (not hit for {render.human_duration(hits.cold_after)}): {hits.cold_entries:,} of "
        f"{hits.tracked_entries:,} tracked entries, {render.human_bytes(hits.cold_bytes)}"
        + (" [dim](evict them with `cacheops evict --cold DURATION`)[/dim]" if hits.cold_entries else "")
    )
