import click

from .. import render
from ..exit_codes import ExitCode
from ..inspect.catalog import build_context
from ..inspect.doctor import OK, PROBLEM, run_doctor
from .app import AppState, output_format, output_options

STYLE = {OK: "[green]ok[/green]", "warn": "[yellow]warn[/yellow]", PROBLEM: "[red]problem[/red]"}


@click.command("doctor")
@click.option(
    "--full",
    is_flag=True,
    help="Read every value for the caches' findings instead of a sample of 1,000 keys per cache "
    "(exact counts of unreachable entries).",
)
@output_options
@click.pass_context
def command(ctx, full, json_flag, table_flag):
    """Check the server and every cache: modules, ACL permissions, memory policy, index health,
    vector/schema mismatches, prefix bleed. Exits 8 when a problem is found (for CI).

    The caches are read as `cacheops caches` reads them: every key name, and the values of a sample
    per cache (caches up to 1,000 keys are read whole); --full reads every value.

    \b
    Example:
        cacheops doctor || echo "cache needs attention"
    """
    state: AppState = ctx.obj
    client = state.client()
    report = run_doctor(client, build_context(client, learn=False), state.spec.display, full=full)
    if output_format(json_flag, table_flag) == "json":
        render.json_doc(report.to_dict())
    else:
        C = render.Column
        t = render.table(C("status", "fixed"), C("area", "text", min=12), C("finding", min=24), C("fix", min=16))
        for c in report.checks:
            t.add_row(STYLE[c.status], render.escape(c.area), render.escape(c.message), render.escape(c.fix))
        render.out(t)
        render.out(f"{render.plural(report.problems, 'problem')}, {render.plural(report.warnings, 'warning')}")
    if report.problems:
        ctx.exit(int(ExitCode.PROBLEMS_FOUND))
