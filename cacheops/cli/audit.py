import click

from .. import render
from ..exit_codes import ExitCode
from ..inspect.catalog import build_context
from ..semantic.audit import WRAPPER_EXPLANATION, AuditOptions, CacheAudit, run_audit
from ..semantic.labelled import load_labelled_set
from .app import AppState, output_format, output_options


@click.command("audit")
@click.option("--cache", help="Only this semantic cache (default: every semantic cache).")
@click.option(
    "--threshold",
    type=click.FloatRange(0, 2),
    help="The cache's distance threshold. Default: caches.<name>.distance_threshold in the config "
    "file, else the library's default (LangChain 0.2, RedisVL 0.1).",
)
@click.option("--model", help="Only entries of this model.")
@click.option(
    "--k",
    "k",
    type=click.IntRange(1, 100),
    default=10,
    show_default=True,
    help="Nearest neighbours examined per entry.",
)
@click.option(
    "--method",
    type=click.Choice(["auto", "exact", "ivf", "knn"]),
    default="auto",
    show_default=True,
    help="How neighbours are found: exact all-pairs by blocks from the stored vectors; ivf, an "
    "approximate inverted file (k-means lists) whose recall is measured against exact on a sample; auto, exact up to "
    "40,000 entries per scope, ivf beyond; knn, one query of the cache's own index per entry (slow: quadratic; "
    "exact instead on a Redis Cluster without a search coordinator, whose index covers one shard).",
)
@click.option("--top", type=click.IntRange(0, 1000), default=10, show_default=True, help="Worst pairs shown.")
@click.option(
    "--labels",
    "labels_path",
    type=click.Path(dir_okay=False),
    help="Labelled set (YAML: prompts with their paraphrases) for precision/recall per threshold.",
)
@click.option(
    "--min-precision",
    type=click.FloatRange(0, 1),
    default=0.99,
    show_default=True,
    help="With --labels: the precision the recommended threshold must reach.",
)
@click.option(
    "--embedding",
    metavar="SPEC",
    help="The cache's embedding model, a RedisVL vectorizer spec, e.g. "
    "hf:sentence-transformers/all-MiniLM-L6-v2 (default: caches.<name>.embedding).",
)
@click.option(
    "--bare/--no-bare",
    default=True,
    show_default=True,
    help="Also audit the bare user text (needs the model) when the library embeds a wrapper.",
)
@click.option(
    "--bare-sample",
    type=click.IntRange(2, 100_000),
    default=300,
    show_default=True,
    help="Entries embedded for the bare-text comparison.",
)
@click.option(
    "--max-collisions",
    type=click.IntRange(0),
    default=0,
    show_default=True,
    help="Exit 11 when more colliding pairs than this are found (CI gate).",
)
@output_options
@click.pass_context
def command(
    ctx,
    cache,
    threshold,
    model,
    k,
    method,
    top,
    labels_path,
    min_precision,
    embedding,
    bare,
    bare_sample,
    max_collisions,
    json_flag,
    table_flag,
):
    """Find cached answers a semantic cache would serve for the wrong question, and a safe threshold.

    For every entry, its nearest other entries of the same scope by the stored vectors (no model
    needed: exact all-pairs by blocks, an approximate index on large caches); pairs closer than the
    threshold whose answers differ (same model) are collisions.
    Shows the worst pairs, the nearest-neighbour distance histogram and the largest threshold with no
    collision. With --labels and the cache's embedding model: precision and recall per threshold.
    Exits 11 when collisions exceed --max-collisions.

    \b
    Example:
        cacheops audit --cache llmcache --embedding hf:sentence-transformers/all-MiniLM-L6-v2 \\
            --labels playbooks/faq.yaml --min-precision 0.99
    """
    state: AppState = ctx.obj
    labelled = load_labelled_set(labels_path) if labels_path else None
    client = state.client()
    opts = AuditOptions(
        cache=cache,
        threshold=threshold,
        k=k,
        top=top,
        model=model,
        embedding=embedding,
        labelled=labelled,
        min_precision=min_precision,
        bare=bare,
        bare_sample=bare_sample,
        method=method,
    )
    report = run_audit(client, build_context(client, learn=False), opts)
    if output_format(json_flag, table_flag) == "json":
        render.json_doc(report.to_dict())
    else:
        for result in report.caches:
            render_cache(result)
    if report.colliding_pairs > max_collisions:
        ctx.exit(int(ExitCode.COLLISIONS_FOUND))


def render_cache(r: CacheAudit) -> None:
    e = render.escape
    render.out(
        f"[bold]{e(r.cache)}[/bold] ({e(r.library)}, index {e(r.index)}): "
        f"{render.plural(r.entries, 'entry', 'entries')}, {render.plural(r.scopes, 'lookup scope')} "
        f"(model or filter values), threshold {r.threshold:g} ({e(r.threshold_source)})"
    )
    verdict = (
        "[green]no collisions[/green]"
        if not r.colliding_pairs
        else f"[red]{r.colliding_pairs}{'' if r.pairs_exact else '+'} colliding "
        f"pair{'' if r.colliding_pairs == 1 else 's'}[/red]"
    )
    render.out(
        f"{verdict}: {r.colliding_entries} entr{'y' if r.colliding_entries == 1 else 'ies'} would be "
        f"served another question's answer at threshold {r.threshold:g}"
    )
    if r.worst:
        C = render.Column
        t = render.table(
            C("distance", "fixed", justify="right"),
            C("question", min=16),
            C("cached answer", min=14),
            C("would be served for", min=16),
            C("its own answer", drop=1, min=14),
            title="worst pairs (same model, different answers)",
        )
        for p in r.worst:
            t.add_row(
                f"{p.distance:.4f}",
                e(render.preview(p.a.prompt, 40)),
                e(render.preview(p.a.answer, 30)),
                e(render.preview(p.b.prompt, 40)),
                e(render.preview(p.b.answer, 30)),
            )
        render.out(t)
    if r.search and r.search.get("method") != "knn":
        s = r.search
        line = f"neighbours: {s['method']} search over {s['rows']:,} entries"
        if s["recall_at_k"] is not None:
            line += (
                f"; approximate index recall@{r.k} {s['recall_at_k']:.3f} against exact on {s['recall_sample']} sampled"
            )
        render.out(line)
    rows = r.nn.rows(include=r.threshold)
    if rows:
        render.out(f"nearest-neighbour distance (median {r.nn.quantile(0.5)}):")
        top = max(c for _, _, c in rows)
        for lo, hi, count in rows:
            mark = "  ◀ threshold" if lo <= r.threshold < hi else ""
            render.out(f"  {lo:6.3f}-{hi:<6.3f} {render.bar(count, top, 30):<30} {count}{mark}")
    if r.closest_conflict is not None:
        render.out(
            f"closest different answers: {r.closest_conflict:.6f} apart; "
            f"largest threshold with no collision: [bold]{r.safe_threshold:g}[/bold]"
        )
    if r.labelled:
        lab = r.labelled
        t = render.table(
            "threshold",
            "precision",
            "recall",
            "right",
            "wrong",
            "missed",
            title=f"labelled set: {lab.prompts} prompts, {lab.paraphrases} paraphrases",
        )
        for point in lab.points:
            t.add_row(
                f"{point.threshold:g}",
                f"{point.precision:.3f}",
                f"{point.recall:.3f}",
                str(point.right),
                str(point.wrong),
                str(point.missed),
            )
        render.out(t)
        if lab.recommended is None:
            render.out(f"no threshold reaches precision {lab.min_precision:g} on the labelled set")
    if r.recommended is not None:
        render.out(f"recommended threshold: [bold]{r.recommended:g}[/bold] ({e(r.recommended_because)})")
    if r.wrapper_compresses:
        render.note(WRAPPER_EXPLANATION)
    if r.bare:
        b = r.bare
        render.out(
            f"same audit on {b.sample} entries, every pair compared (not only the --k nearest), "
            f"stored string vs bare user text: median nearest "
            f"distance {b.median_nn_stored} vs {b.median_nn_bare}; collisions at {b.threshold:g}: "
            f"{b.collisions_stored} vs {b.collisions_bare}; largest safe threshold: "
            f"{b.safe_threshold_stored} vs {b.safe_threshold_bare}"
        )
        if b.labelled and b.labelled.recommended is not None and b.labelled.at_recommended:
            at = b.labelled.at_recommended
            render.out(
                f"with bare text the labelled set would allow {b.labelled.recommended:g} "
                f"(precision {at.precision:.3f}, recall {at.recall:.3f})"
            )
    for text in r.notes:
        render.note(text)
    render.out("")
