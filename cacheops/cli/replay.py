"""`cacheops replay PROMPTS`: hit rate, latency and tokens saved for a prompt log, on the real cache."""

from __future__ import annotations

import click

from .. import render
from ..ops.playbook import load_playbook
from ..ops.replay import HIT, MISS, WRONG, ReplayReport, replay
from .app import AppState, output_format, output_options

STYLE = {HIT: "[green]hit[/green]", MISS: "[yellow]miss[/yellow]", WRONG: "[red]wrong answer[/red]"}


@click.command("replay")
@click.argument("prompts_path", metavar="PROMPTS", type=click.Path(dir_okay=False))
@click.option(
    "--playbook",
    "playbook_path",
    required=True,
    type=click.Path(dir_okay=False),
    metavar="PLAYBOOK",
    help="A warm playbook: its `warm:` section says how the app looks up (caches, models, embedding).",
)
@click.option("--show", type=click.IntRange(0, 100_000), default=20, show_default=True, help="Per-prompt rows shown.")
@output_options
@click.pass_context
def command(ctx, prompts_path, playbook_path, show, json_flag, table_flag):
    """What the cache would do for a prompt log: hit rate, lookup latency, tokens saved, per threshold.

    PROMPTS is JSON lines ({"prompt": ..., "answer": <the right answer, optional>, "system": ...}) or
    a text file with one prompt per line. Each prompt is looked up in every cache of the playbook
    exactly as the app looks it up (the library's own lookup, the app's llm_string), without calling
    a model, writing, refreshing a TTL or touching LRU/LFU data. Reports per prompt hit / miss /
    wrong answer (where the log says the right answer), latency p50/p95, the tokens the hits save
    (from the cached generation's usage metadata) and, for semantic caches, hit and wrong-answer
    rates per distance threshold, and the money the hits save at list prices (the price table's date).

    \b
    Example:
        cacheops --url redis://localhost:6379 replay prompts.jsonl --playbook playbooks/faq.yaml
    """
    state: AppState = ctx.obj
    playbook = load_playbook(playbook_path)
    with render.status("replaying…"):
        report = replay(state.client(), playbook, playbook_path, prompts_path)
    if output_format(json_flag, table_flag) == "json":
        render.json_doc(report.to_dict())
        return
    render_report(report, show)


def _ms(value) -> str:
    return "-" if value is None else f"{value:.2f} ms"


def _rate(value) -> str:
    return "-" if value is None else f"{value:.1%}"


def render_report(report: ReplayReport, show: int) -> None:
    e = render.escape
    t = render.table(
        "cache",
        "model",
        "lookups",
        "hit rate",
        "wrong answers",
        "p50",
        "p95",
        "tokens saved",
        title=f"replay {e(report.file)} ({report.prompts} prompts)",
    )
    summaries = [c.summary() for c in report.caches]
    for s in summaries:
        t.add_row(
            e(s["cache"]),
            e(s["model"] or "-"),
            str(s["lookups"]),
            f"{_rate(s['hit_rate'])} ({s['hits']})",
            f"{s['wrong_answers']}" + (f" ({_rate(s['wrong_answer_rate'])})" if s["wrong_answer_rate"] else ""),
            _ms(s["lookup_ms_p50"]),
            _ms(s["lookup_ms_p95"]),
            f"{s['tokens_saved']:,}"
            + (f" (+{s['hits_without_usage']} hits without usage)" if s["hits_without_usage"] else ""),
        )
    render.out(t)
    for s in summaries:
        if "per_threshold" not in s:
            continue
        th = render.table("threshold", "hit rate", "wrong answers", title=f"{e(s['cache'])}: per distance threshold")
        for row in s["per_threshold"]:
            mark = " (the cache's)" if row["threshold"] == s["threshold"] else ""
            th.add_row(
                f"{row['threshold']:g}{mark}",
                f"{_rate(row['hit_rate'])} ({row['hits']})",
                f"{row['wrong_answers']}"
                + (f" ({_rate(row['wrong_answer_rate'])})" if row["wrong_answer_rate"] else ""),
            )
        render.out(th)
    rows = [x for c in report.caches for x in c.results]
    if show and rows:
        p = render.table("result", "cache", "prompt", "lookup", "distance", "served")
        for x in rows[:show]:
            p.add_row(
                STYLE[x.result],
                e(x.cache),
                e(render.preview(x.prompt, 40)),
                _ms(x.ms),
                "-" if x.distance is None else f"{x.distance:.4f}",
                e(render.preview(x.got or "", 40)),
            )
        render.out(p)
        if len(rows) > show:
            render.note(f"{len(rows) - show} more lookups: --json lists them all")
    money = report.money()
    if money and money["saved"] is not None:
        render.note(
            f"the hits would save {money['saved']:.4f} {money['currency']} at list prices of {money['prices_taken']} "
            "(hits without usage metadata or of models the price table does not know are not priced)"
        )
