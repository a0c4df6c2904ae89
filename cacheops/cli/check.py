"""`cacheops check PLAYBOOK`: the post-deploy gate (doctor, warm, verify, audit), one exit code."""

from __future__ import annotations

import os
from pathlib import Path

import click

from .. import render
from ..errors import UsageError
from ..exit_codes import ExitCode
from ..inspect.suspect_rules import SEVERITIES
from ..ops.check import FAILED, PASSED, SKIPPED, CheckReport, github_annotations, run_check
from ..ops.playbook import load_playbook
from .app import AppState, output_format, output_options

STYLE = {PASSED: "[green]passed[/green]", FAILED: "[red]failed[/red]", SKIPPED: "[dim]skipped[/dim]"}


@click.command("check")
@click.argument("playbook_path", metavar="PLAYBOOK", type=click.Path(dir_okay=False))
@click.option("--warm", "warm_first", is_flag=True, help="Warm the playbook's caches first (writes, as `warm`).")
@click.option(
    "--max-collisions",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="Colliding pairs (wrong answers at the cache's threshold) allowed per semantic cache.",
)
@click.option(
    "--junit",
    "junit_path",
    type=click.Path(dir_okay=False, writable=True),
    metavar="PATH",
    help="Write a JUnit XML report: a test suite per check, a test case per check / per prompt.",
)
@click.option(
    "--suspects-fail-on",
    type=click.Choice([*SEVERITIES, "off"]),
    default="high",
    show_default=True,
    help="Fail on suspect entries (cached errors, refusals, secrets, ...) of this severity or worse; off: skip.",
)
@output_options
@click.pass_context
def command(ctx, playbook_path, warm_first, max_collisions, junit_path, suspects_fail_on, json_flag, table_flag):
    """The post-deploy gate: doctor, warm (with --warm), verify, the audit and suspects, one verdict.

    Runs every check and collects every failure: doctor problems, prompts warm could not write,
    playbook prompts (and paraphrases) the app's own lookup misses or answers wrongly, semantic
    caches with more colliding pairs than --max-collisions, suspect entries (`cacheops suspects`)
    at or above --suspects-fail-on. Exits 16 when anything failed, 9 for an
    invalid playbook. With --junit, writes a JUnit XML file for the CI system; when GITHUB_ACTIONS is
    set, each failure is also a GitHub Actions error annotation. See docs/ci.md.

    \b
    Example:
        cacheops --url "$REDIS_URL" check playbooks/faq.yaml --warm --junit cacheops-junit.xml
    """
    state: AppState = ctx.obj
    playbook = load_playbook(playbook_path)
    if junit_path and Path(junit_path).parent and not Path(junit_path).parent.is_dir():
        raise UsageError(f"--junit {junit_path}: the directory {Path(junit_path).parent} does not exist")
    report = run_check(
        state.client(),
        playbook,
        playbook_path,
        state.spec.display,
        warm_first=warm_first,
        max_collisions=max_collisions,
        suspects_fail_on=None if suspects_fail_on == "off" else suspects_fail_on,
    )
    if junit_path:
        Path(junit_path).write_text(report.junit_xml(), encoding="utf-8")
    if os.environ.get("GITHUB_ACTIONS") == "true":
        for line in github_annotations(report):
            render.workflow_command(line)
    if output_format(json_flag, table_flag) == "json":
        render.json_doc(report.to_dict())
    else:
        render_report(report)
    if not report.ok:
        ctx.exit(int(ExitCode.CHECK_FAILED))


def render_report(report: CheckReport, shown: int = 30) -> None:
    e = render.escape
    t = render.table("check", "passed", "failed", "skipped", title=f"check {e(report.playbook)} ({e(report.file)})")
    for suite, n in report.suite_counts().items():
        t.add_row(suite, str(n[PASSED]), f"[red]{n[FAILED]}[/red]" if n[FAILED] else "0", str(n[SKIPPED]))
    render.out(t)
    failures = report.failures
    if failures:
        f = render.table("check", "case", "why")
        for c in failures[:shown]:
            f.add_row(c.suite, e(render.preview(c.name, 60)), e(c.message))
        render.out(f)
        if len(failures) > shown:
            render.note(f"{len(failures) - shown} more: --json or --junit lists every case")
    render.out("[green]all checks passed[/green]" if report.ok else f"[red]{len(failures)} check(s) failed[/red]")
