import click

from .. import render
from ..ops.tagging import set_tags
from ..ownkeys import parse_pair
from .app import AppState, pass_state


@click.command("tag")
@click.argument("key")
@click.argument("pairs", nargs=-1, metavar="[NAME=VALUE]...")
@click.option("--remove", multiple=True, metavar="NAME", help="Remove this tag (repeatable).")
@click.option("--json", "json_flag", is_flag=True, help="JSON output.")
@pass_state
def command(state: AppState, key, pairs, remove, json_flag):
    """Label a cache entry with NAME=VALUE tags, for `cacheops evict --tag NAME=VALUE`.

    For caches with no fields of their own (langchain-redis exact caches) cacheops keeps the tags
    beside the entry, in cacheops:tags:<key>, expiring with it. With no NAME=VALUE, shows the tags.

    \b
    Example:
        cacheops tag 'redis:0a9e4ca2…:af35f72c…' source=warmup tenant=acme
    """
    tags = dict(parse_pair(p) for p in pairs)
    now = set_tags(state.client(), key, tags, list(remove))
    if json_flag:
        render.json_doc({"key": key, "tags": now})
        return
    render.out(f"{render.escape(key)}: " + (", ".join(f"{k}={v}" for k, v in sorted(now.items())) or "no tags"))
