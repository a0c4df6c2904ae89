import click

from .. import render
from ..config import load_config
from ..exit_codes import ExitCode
from ..inspect.catalog import build_context, require_cache
from ..inspect.suspect_rules import BUILTIN, SEVERITIES, parse_date
from ..inspect.suspects import MAX_DETAILS, find_suspects, rule_set
from ..server.keyspace import ScanStats
from .app import AppState, output_format, output_options

SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "info": "dim"}


@click.command("suspects")
@click.option("--cache", help="Only entries of this cache (its key prefix).")
@click.option(
    "--rule",
    "rules",
    multiple=True,
    metavar="RULE",
    help=f"Only this rule or category (repeatable): {', '.join(BUILTIN)}, a custom rule from the config, "
    "or failure, secrets, time, stale, custom.",
)
@click.option(
    "--before",
    metavar="DATE",
    help="Report entries written before DATE (2026-11-01, UTC) as stale: e.g. after a prompt or policy change.",
)
@click.option(
    "--fail-on",
    type=click.Choice(SEVERITIES),
    help="Exit 14 when anything at or above this severity is found (a deploy gate).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=MAX_DETAILS,
    show_default=True,
    help="Details kept per rule (the counts are always complete).",
)
@click.option("--plain", is_flag=True, help="Do not use the server-side script (for servers that forbid scripts).")
@output_options
@click.pass_context
def command(ctx, cache, rules, before, fail_on, limit, plain, json_flag, table_flag):
    """Find poisoned and risky entries without knowing their prompt: errors, refusals, empty or cut-off
    answers cached as answers; secrets and personal data (a leak risk in a semantic cache no user
    field scopes); time-sensitive prompts cached too long; stale models or dates; your own rules
    from the config file.

    One streaming pass (memory stays flat). Prints a summary per rule (entries, bytes, worst example)
    then the details; matched secrets are always masked. `cacheops evict --suspect RULE` removes
    exactly what a rule reports. Exit codes: 0 done, 14 something at or above --fail-on was found.

    \b
    Example:
        cacheops suspects
        cacheops suspects --rule failure --rule secrets --fail-on high --json
    """
    state: AppState = ctx.obj
    config = load_config()
    ruleset = rule_set(rules, parse_date(before) if before else None, config)
    client = state.client()
    context = build_context(client)  # (ctx is Click's)
    require_cache(client, context, cache)
    stats = ScanStats()
    with render.scan_progress(stats, "judging entries"):
        report = find_suspects(
            client,
            context,
            ruleset,
            cache=cache,
            config=config,
            max_details=limit,
            server_side=False if plain else None,
            stats=stats,
        )
    if output_format(json_flag, table_flag) == "json":
        render.json_doc(report.to_dict())
    else:
        render_report(report)
    if report.fails(fail_on):
        ctx.exit(int(ExitCode.SUSPECTS_FOUND))


def _severity(name: str) -> str:
    style = SEVERITY_STYLE.get(name, "")
    return f"[{style}]{name}[/{style}]" if style else name


def render_report(report) -> None:
    found = report.found
    C = render.Column
    if found:
        t = render.table(
            C("rule", "text", min=10),
            C("severity", "fixed"),
            C("entries", "fixed", justify="right"),
            C("bytes", "fixed", drop=2, justify="right"),
            C("worst example", "key", drop=1, min=16),
            C("why", "text", min=14),
        )
        for s in found:
            worst = s.worst
            t.add_row(
                render.escape(s.rule.name),
                _severity(s.severity),
                f"{s.entries:,}" + (f" ({s.leak_risk:,} leak risk)" if s.leak_risk else ""),
                render.human_bytes(s.bytes),
                render.short_key(worst.key, None) if worst else "-",
                render.escape(worst.why) if worst else "-",
            )
        render.out(t)
        d = render.table(
            C("rule", "text", min=10),
            C("key", "key", min=16),
            C("model", "text", drop=3, min=8),
            C("prompt", "text", drop=4, min=14),
            C("evidence", "text", min=20),
            C("why", "text", drop=5, min=14),
            C("TTL", "fixed", drop=2, justify="right"),
            C("age", "fixed", drop=1, justify="right"),
            title="details",
        )
        for s in found:
            for detail in s.details:
                age = None if detail.inserted_at is None else report.now - detail.inserted_at
                d.add_row(
                    render.escape(detail.rule),
                    render.short_key(detail.key, None),
                    render.escape(detail.model or "-"),
                    render.escape(render.preview(detail.prompt, 60)),
                    render.escape(render.preview(detail.evidence, 80)),
                    render.escape(detail.why),
                    render.human_duration(None if detail.ttl_ms is None else detail.ttl_ms / 1000),
                    render.human_duration(age) if age is not None else "-",
                )
        if d.rows:
            render.out(d)
        for s in found:
            if s.entries > len(s.details):
                render.note(f"{s.rule.name}: {s.entries - len(s.details):,} more not shown (--limit N, or --json)")
    render.out(
        f"{render.plural(report.suspects, 'suspect entry', 'suspect entries')} of {report.entries:,} "
        f"({report.scanned_keys:,} keys scanned, {report.scan_path}, {report.seconds:.1f}s)"
    )
    if report.prompt_unknown:
        render.note(
            f"{report.prompt_unknown:,} entries store no prompt text (exact caches keep only its hash): "
            f"rules on the prompt could not judge them"
        )
    if report.no_insertion_time:
        render.note(f"{report.no_insertion_time:,} entries record no insertion time: --before could not judge them")
