import click
from rich.panel import Panel

from .. import render
from ..errors import NotFound, UsageError
from ..inspect.catalog import NOT_ENTRIES, UnknownKey, build_context, require_cache
from ..inspect.finder import find_by_prompt, read_entry
from ..inspect.hits import attach_hits
from ..layouts import Entry, Infrastructure, PromptQuery
from .app import AppState, output_format, output_options, pass_state


@click.command("show")
@click.argument("key", required=False)
@click.option("--prompt", help="Find the entries for this user text, keyed the way LangChain/RedisVL key it.")
@click.option("--system", help="With --prompt: the system message the app sends before it.")
@click.option("--cache", help="With --prompt: only this cache.")
@output_options
@pass_state
def command(state: AppState, key, prompt, system, cache, json_flag, table_flag):
    """One entry in full, decoded: messages, answer, model and parameters, usage, TTL, bytes.

    Give a KEY, or --prompt "TEXT" to find every cached copy of that prompt in every cache and for
    every model (exit code 7 when there is none).

    \b
    Example:
        cacheops show --prompt "What is the capital of France?"
        cacheops show 'llmcache:5435a7d3…'
    """
    if bool(key) == bool(prompt):
        raise UsageError("give either a KEY or --prompt TEXT")
    client = state.client()
    ctx = build_context(client)
    require_cache(client, ctx, cache)
    if key:
        entries: list[Entry | Infrastructure | UnknownKey] = [read_entry(client, ctx, key)]
    else:
        entries = list(find_by_prompt(client, ctx, PromptQuery(prompt, system), cache))
        if not entries:
            where = f" in cache {cache!r}" if cache else ""
            how = (
                "with that system message"
                if system is not None
                else "sent without a system message (if the app sends one, give it with --system)"
            )
            raise NotFound(
                f"no cached entry for that prompt {how}{where}; check the exact text, "
                f"or list entries with `cacheops scan`"
            )
    entries = list(attach_hits(client, entries))
    if output_format(json_flag, table_flag) == "json":
        # an unknown key or a library's infrastructure key has no fuller form than its summary
        docs = [e.to_dict(full=True) if isinstance(e, Entry) else e.to_dict() for e in entries]
        render.json_doc(docs[0] if key else docs)
        return
    if len(entries) > 1:
        render.out(f"{len(entries)} cached entries for that prompt:")
    for number, item in enumerate(entries, 1):
        if len(entries) > 1:
            render.rule(f"{number} of {len(entries)}: {getattr(item, 'cache', '')} {getattr(item, 'model', '') or ''}")
        render_entry(item)


def render_entry(item) -> None:
    if isinstance(item, NOT_ENTRIES):
        render.out(
            f"{render.escape(item.key)}: a {item.type} key that is not a known cache entry "
            f"({render.human_bytes(item.bytes)}); cacheops does not decode or touch it."
        )
        return
    if isinstance(item, Infrastructure):
        render.out(
            f"{render.escape(item.key)}: a {item.type} key {render.escape(item.library)} keeps beside the entries of "
            f"cache {render.escape(item.cache)} ({render.escape(item.role)}); not an entry, cacheops does not touch it."
        )
        return
    e: Entry = item
    t = render.table(render.Column("field", "fixed"), render.Column("value", "full"))
    rows = [
        ("key", e.key),
        ("cache", f"{e.cache} ({e.library}, {e.kind})"),
        ("index", e.index or "-"),
        ("model", e.model or "-"),
        (
            "TTL",
            render.human_duration(None if e.ttl_ms is None else e.ttl_ms / 1000)
            + (f" (expires {render.timestamp(e.expires_at)})" if e.ttl_ms is not None else ""),
        ),
        ("size", render.human_bytes(e.bytes)),
        ("prompt hash", e.prompt_hash or "-"),
        ("inserted", render.timestamp(e.inserted_at)),
        ("updated", render.timestamp(e.updated_at)),
    ]
    if e.vector:
        rows.append(
            (
                "vector",
                f"{e.vector.field}: {e.vector.dims} dims {e.vector.dtype or ''}, "
                f"{e.vector.nbytes} bytes"
                + ("" if e.vector.matches_index is not False else " (does NOT match the index)"),
            )
        )
    if e.hits:
        rows.append(("hits (tracked)", f"{e.hits['hits']:,}, last {render.timestamp(e.hits['last_hit'])}"))
        if e.hits.get("system"):
            rows.append(("system (tracked)", e.hits["system"]))
    if e.tags:
        rows.append(("tags", ", ".join(f"{k}={v}" for k, v in e.tags.items())))
    if e.usage:
        rows.append(("usage", ", ".join(f"{k}={v}" for k, v in e.usage.items() if not isinstance(v, dict))))
    if e.model_params:
        rows.append(("model params", ", ".join(f"{k}={v!r}" for k, v in e.model_params.items())))
    elif e.llm_string:
        rows.append(("llm_string", e.llm_string))
    if e.metadata and not (set(e.metadata) <= {"llm_string"}):
        rows.append(("metadata", str(e.metadata)))
    for name, value in rows:
        t.add_row(name, render.escape(str(value)))
    render.out(t)
    if e.messages:
        for m in e.messages:
            render.out(Panel(render.escape(m.content), title=m.role, title_align="left", expand=False))
    else:
        render.out(
            Panel(
                render.escape(e.prompt or "(prompt text not stored)"), title="prompt", title_align="left", expand=False
            )
        )
    render.out(Panel(render.escape(e.answer or "-"), title="answer", title_align="left", expand=False))
    for text in e.notes:
        render.note(text)
