import click

from .. import render
from ..demo import fill_demo_cache
from ..inspect.catalog import build_catalog, build_context
from ..server.connection import connect, resolve_spec
from ..server.embedded import ensure_shared, stop_shared
from .app import AppState, pass_state
from .caches import render_catalog


@click.command("demo")
@click.option("--stop", is_flag=True, help="Stop the embedded Redis the demo started.")
@click.option("--into", "into_url", help="Fill this Redis instead of the embedded one (it must be empty of demo data).")
@pass_state
def command(state: AppState, stop, into_url):
    """Start (or reuse) a local Redis with search + JSON, fill it with a realistic LLM cache written
    by the real langchain-redis and RedisVL libraries, and show what cacheops sees.

    \b
    Example:
        cacheops demo
        cacheops --embedded scan --cache llmcache
        cacheops demo --stop
    """
    if stop:
        render.out("stopped the embedded Redis" if stop_shared() else "no embedded Redis was running")
        return
    if into_url:
        url = into_url
    else:
        url, started = ensure_shared()
        render.note(("started" if started else "reusing") + f" the embedded Redis at {url}")
    spec = resolve_spec(url)
    client = connect(spec)
    if client.dbsize():
        render.note("the server already holds keys; adding the demo traffic again (entries are overwritten)")
    with render.status("the demo app is answering its FAQ through LangChain and RedisVL caches…"):
        result = fill_demo_cache(url)
    render.out(
        f"The demo app made {result.llm_calls} LLM calls through LangChain's Redis caches, "
        f"{result.redisvl_stores} RedisVL SemanticCache stores and {result.embeddings} cached embeddings. "
        f"What cacheops sees:"
    )
    render_catalog(build_catalog(client, build_context(client)))  # type: ignore[arg-type]  # a cluster reads alike
    target = "--embedded" if not into_url else f"--url {spec.display}"
    render.out(
        f"\nNext: [bold]cacheops {target} scan[/bold], [bold]cacheops {target} stats[/bold], "
        f'[bold]cacheops {target} show --prompt "What is the capital of France?"[/bold], '
        f"[bold]cacheops {target} doctor[/bold]"
    )
