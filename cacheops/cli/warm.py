import click

from .. import render
from ..errors import UsageError
from ..exit_codes import ExitCode
from ..ops import verify as verify_lib
from ..ops.playbook import load_playbook
from ..ops.warm import CACHED, FAILED, SKIPPED, WOULD_WRITE, WRITTEN, WarmReport, describe, warm
from . import app
from .app import AppState, output_format, output_options


@click.command("warm")
@click.argument("playbook_path", metavar="PLAYBOOK", type=click.Path(dir_okay=False))
@click.option("--refresh", is_flag=True, help="Rewrite prompts that are already cached (default: leave them).")
@click.option("--dry-run", is_flag=True, help="Show what would be written; write nothing.")
@click.option(
    "--generate",
    is_flag=True,
    help="Prompts without an answer: ask the app's model through the cache, as the app would "
    "(calls the model; default: skip them).",
)
@click.option(
    "--replace-other-models",
    is_flag=True,
    help="In caches that key on the prompt only (langchain-redis RedisSemanticCache), replace another "
    "model's entry for a prompt without asking (default: ask on a terminal, else keep it and skip).",
)
@click.option(
    "--verify",
    is_flag=True,
    help="Write nothing: look every prompt (and paraphrase, semantic caches) up as the app does and "
    "report right hits, wrong answers and misses; exit 15 unless all are right hits.",
)
@output_options
@click.pass_context
def command(ctx, playbook_path, refresh, dry_run, generate, replace_other_models, verify, json_flag, table_flag):
    """Pre-fill LLM caches with a playbook's curated answers, so a deploy does not start cold.

    PLAYBOOK is a labelled set (prompts with answers, as for `audit --labels`) with a `warm:` section
    naming the caches (langchain_exact, langchain_semantic, redisvl_semantic), the app's model (an
    import path + kwargs, constructed but only called with --generate, or a verbatim llm_string) and the
    embedding model. Entries are written by the cache libraries themselves, under the keys the app looks
    up, with the playbook's TTL and tags (playbook=NAME, for `evict --tag`). Prompts already cached are
    left alone unless --refresh. A cache that keys on the prompt only holds one model's entry per
    prompt: replacing another model's entry is asked first (once per cache), or done with
    --replace-other-models; off a terminal without it those prompts are skipped. Prompts without an
    answer are skipped, or with --generate answered by the app's model through the cache. Exits 8 when
    any prompt failed (a CI gate), 9 when the playbook is invalid. --verify writes nothing and calls no
    model: it looks each prompt up the way the app does (no TTL refresh, no LRU/LFU bump) and exits 15
    unless every lookup is a hit with the playbook's answer.

    \b
    Example:
        cacheops --embedded warm playbooks/faq.yaml --dry-run
        cacheops --url redis://localhost:6379 warm playbooks/faq.yaml
        cacheops --url redis://localhost:6379 warm playbooks/faq.yaml --verify
    """
    state: AppState = ctx.obj
    playbook = load_playbook(playbook_path)
    if verify:
        if refresh or dry_run or generate:
            raise UsageError("--verify writes nothing: leave out --refresh, --dry-run and --generate")
        checked = verify_lib.verify(state.client(), playbook, playbook_path)
        if output_format(json_flag, table_flag) == "json":
            render.json_doc(checked.to_dict())
        else:
            render_verify(checked)
        if not checked.ok:
            ctx.exit(int(ExitCode.VERIFY_FAILED))
        return
    ask = (lambda question: click.confirm(question, default=False, err=True)) if app.interactive() else None
    report = warm(
        state.client(),
        playbook,
        playbook_path,
        refresh=refresh,
        dry_run=dry_run,
        generate=generate,
        replace_other_models=replace_other_models,
        ask=ask,
    )
    if output_format(json_flag, table_flag) == "json":
        render.json_doc(report.to_dict())
    else:
        render_report(report)
    if report.failed:
        ctx.exit(int(ExitCode.PROBLEMS_FOUND))


def render_report(report: WarmReport) -> None:
    e = render.escape
    first = "would write" if report.dry_run else "written"
    C = render.Column
    t = render.table(
        C("cache", "key", min=12),
        C("type", "text", drop=1, min=14),
        C("model(s)", "text", drop=3, min=12),
        C("TTL", "fixed", drop=2),
        C(first, "fixed", justify="right"),
        C("already cached", "fixed", justify="right"),
        C("skipped", "fixed", justify="right"),
        C("failed", "fixed", justify="right"),
        title=f"warm {e(report.playbook)} ({e(report.file)})" + (" (dry run)" if report.dry_run else ""),
    )
    for c in report.caches:
        n = c.counts
        t.add_row(
            c.cache,
            c.type,
            e(", ".join(c.models) or "-"),
            render.human_duration(c.ttl) if c.ttl else "none",
            str(n[WOULD_WRITE] if report.dry_run else n[WRITTEN]),
            str(n[CACHED]),
            str(n[SKIPPED]),
            f"[red]{n[FAILED]}[/red]" if n[FAILED] else "0",
        )
    render.out(t)
    failures = [x for x in report.entries if x.status == FAILED]
    for c in report.caches:
        if c.error:
            render.out(f"[red]{e(c.cache)}: cannot open the cache: {e(c.error)}[/red]")
    for x in [x for x in failures if not any(c.error and c.cache == x.cache for c in report.caches)][:20]:
        render.out(
            f"[red]failed[/red] {e(x.cache)} {e(x.model or '')}: {e(render.preview(x.prompt, 50))}: {e(x.reason or '')}"
        )
    reasons = sorted({x.reason for x in report.entries if x.status == SKIPPED and x.reason})
    for reason in reasons:
        count = sum(1 for x in report.entries if x.status == SKIPPED and x.reason == reason)
        render.note(f"{count} skipped: {reason}")
    for c in report.caches:
        if c.replaced:
            models = ", ".join(f"{n:,} of {model}" for model, n in c.replaced.most_common())
            verb = "would replace" if report.dry_run else "replaced"
            render.note(
                f"{c.cache}: {verb} {render.plural(sum(c.replaced.values()), 'entry', 'entries')} of other models "
                f"({models}): this cache keys on the prompt only, one model's answer per prompt"
            )
    notes = sorted(
        {
            x.reason
            for x in report.entries
            if x.status in (WRITTEN, WOULD_WRITE) and x.reason and "another model" not in x.reason
        }
    )
    for note in notes:
        render.note(note)
    render.out(describe(report))


VERIFY_STYLE = {
    verify_lib.WRONG: "[red]wrong answer[/red]",
    verify_lib.MISS: "[yellow]miss[/yellow]",
    verify_lib.FAILED: "[red]failed[/red]",
}


def render_verify(report: verify_lib.VerifyReport, shown: int = 30) -> None:
    e = render.escape
    t = render.table(
        "cache",
        "right hits",
        "wrong answers",
        "misses",
        "failed",
        title=f"verify {e(report.playbook)} ({e(report.file)})",
    )
    for cache in report.caches:
        n = report.counts(cache)
        t.add_row(
            e(cache),
            str(n[verify_lib.HIT]),
            f"[red]{n[verify_lib.WRONG]}[/red]" if n[verify_lib.WRONG] else "0",
            f"[yellow]{n[verify_lib.MISS]}[/yellow]" if n[verify_lib.MISS] else "0",
            f"[red]{n[verify_lib.FAILED]}[/red]" if n[verify_lib.FAILED] else "0",
        )
    render.out(t)
    failures = report.failures
    if failures:
        f = render.table("result", "cache", "asked", "expected", "served")
        for x in failures[:shown]:
            served = x.got if x.got is not None else (x.reason or "")
            if x.served_for:
                served += f" (the answer to {x.served_for!r})"
            f.add_row(
                VERIFY_STYLE[x.result],
                e(x.cache),
                e(render.preview(x.asked, 40)) + (" (paraphrase)" if x.paraphrase else ""),
                e(render.preview(x.expected or "-", 30)),
                e(render.preview(served, 40)),
            )
        render.out(f)
        if len(failures) > shown:
            render.note(f"{len(failures) - shown} more: --json lists every lookup")
    render.out(verify_lib.describe(report))
