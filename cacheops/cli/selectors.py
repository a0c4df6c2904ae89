"""The entry selectors evict and expire share: one set of options, one Selection built from them."""

from __future__ import annotations

from itertools import chain

import click

from ..errors import UsageError
from ..inspect.suspect_rules import parse_date
from ..ops.selection import Selection, SimilarTo, parse_duration
from ..ownkeys import parse_pair

SELECTOR_PARAMS = (
    "prompts",
    "system",
    "prompt_hashes",
    "keys",
    "keys_from",
    "tags",
    "response_contains",
    "response_regex",
    "model",
    "older_than",
    "cold",
    "cache",
    "unreachable",
    "suspect",
    "before",
    "similar_to",
    "threshold",
    "embedding",
)


def _key_stream(keys: tuple[str, ...], keys_from):
    """--key values, then --keys-from lines, streamed (a large file is never held whole)."""
    given = (k.encode("utf-8") for k in keys)
    if keys_from is None:
        return given
    from_file = (line.rstrip("\r\n").encode("utf-8") for line in keys_from if line.strip())
    return chain(given, from_file)


def selector_options(fn):
    """evict's selectors (ANDed), as Click options."""
    options = [
        click.option(
            "--prompt",
            "prompts",
            multiple=True,
            metavar="TEXT",
            help="The user's text: every cached copy, in every cache, for every model (repeatable).",
        ),
        click.option("--system", metavar="TEXT", help="With --prompt: the system message the app sends before it."),
        click.option(
            "--prompt-hash",
            "prompt_hashes",
            multiple=True,
            metavar="HASH",
            help="The md5 key segment (exact caches) or sha256 entry id (semantic caches), e.g. from logs.",
        ),
        click.option(
            "--key",
            "keys",
            multiple=True,
            metavar="KEY",
            help="An entry's key (repeatable; taken literally, never as a pattern).",
        ),
        click.option("--keys-from", type=click.File("r"), metavar="FILE", help="Keys, one per line ('-' for stdin)."),
        click.option(
            "--tag",
            "tags",
            multiple=True,
            metavar="NAME=VALUE",
            help="A RedisVL filterable field, or a cacheops tag (`cacheops tag`), equal to VALUE.",
        ),
        click.option(
            "--response-contains",
            multiple=True,
            metavar="TEXT",
            help="The cached answer contains TEXT (case-sensitive; repeatable, all must appear).",
        ),
        click.option(
            "--response-regex", metavar="RE", help="The cached answer matches this Python regular expression."
        ),
        click.option("--model", help="Only entries of this model (name, or a piece of the llm_string)."),
        click.option(
            "--older-than",
            metavar="DURATION",
            help="Inserted more than DURATION ago (90s, 30m, 12h, 7d, 2w); "
            "entries that record no insertion time (LangChain exact) are never selected by age.",
        ),
        click.option(
            "--cold",
            metavar="DURATION",
            help="Not hit for DURATION (or never, and written longer ago), as the app's hit tracker "
            "(cacheops_track) recorded; untracked entries are never selected by it.",
        ),
        click.option("--cache", help="Only entries of this cache (its key prefix); alone, the whole cache."),
        click.option("--unreachable", is_flag=True, help="Only entries their cache can no longer serve."),
        click.option(
            "--suspect",
            metavar="RULE",
            help="Exactly the entries this `cacheops suspects` rule (or category) reports, e.g. error_text, secret.",
        ),
        click.option(
            "--before", metavar="DATE", help="With --suspect stale: entries written before DATE (2026-11-01, UTC)."
        ),
        click.option("--similar-to", metavar="TEXT", help="The semantic neighbourhood of TEXT (needs --threshold)."),
        click.option("--threshold", type=float, metavar="D", help="With --similar-to: the largest distance selected."),
        click.option(
            "--embedding",
            metavar="SPEC",
            help="With --similar-to: the cache's embedding model, a RedisVL "
            "vectorizer spec (default: the cache's setting in the config file).",
        ),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def build_selection(
    prompts,
    system,
    prompt_hashes,
    keys,
    keys_from,
    tags,
    response_contains,
    response_regex,
    model,
    older_than,
    cold,
    cache,
    unreachable,
    suspect,
    before,
    similar_to,
    threshold,
    embedding,
    what: str = "evict",
) -> Selection:
    """The Selection the options describe; UsageError when they do not go together or select nothing."""
    if (similar_to is None) != (threshold is None):
        raise UsageError("--similar-to TEXT and --threshold D go together")
    if embedding and similar_to is None:
        raise UsageError("--embedding goes with --similar-to")
    key_stream = _key_stream(keys, keys_from) if (keys or keys_from is not None) else None
    source = " ".join(
        filter(
            None,
            [f"--key x{len(keys)}" if keys else "", f"--keys-from {keys_from.name}" if keys_from is not None else ""],
        )
    )
    selection = Selection(
        prompts=list(prompts),
        system=system,
        prompt_hashes=list(prompt_hashes),
        keys=key_stream,
        key_source=source,
        tags=dict(parse_pair(t) for t in tags),
        response_contains=list(response_contains),
        response_regex=response_regex,
        model=model,
        older_than=parse_duration(older_than) if older_than else None,
        older_than_text=older_than,
        cold=parse_duration(cold) if cold else None,
        cold_text=cold,
        cache=cache,
        unreachable=unreachable,
        suspect=suspect,
        before=parse_date(before) if before else None,
        before_text=before,
        similar=SimilarTo(similar_to, threshold, embedding) if similar_to is not None else None,
    )
    if selection.empty:
        raise UsageError(
            "give at least one selector (--prompt, --key, --tag, --response-contains, ... or "
            f"--cache NAME to {what} a whole cache)"
        )
    return selection


def plan_options(backed_up: str, nothing: str):
    """The options every previewed, backed-up change shares (evict, expire): where the backup goes,
    --dry-run, --yes, the preview's sample size and --json. backed_up: what the backup holds ("the
    backup", "the backup of the old TTLs"); nothing: what a dry run leaves alone ("delete nothing")."""

    def decorate(fn):
        options = [
            click.option(
                "--backup",
                "backup_path",
                type=click.Path(dir_okay=False),
                metavar="PATH",
                help=f"Where to write {backed_up} (default: a timestamped file in the state dir).",
            ),
            click.option("--dry-run", is_flag=True, help=f"Preview only: {nothing}."),
            click.option("--yes", "-y", is_flag=True, help="Do not ask (required when not on a terminal)."),
            click.option(
                "--sample",
                type=click.IntRange(0, 1000),
                default=10,
                show_default=True,
                help="Rows in the preview's sample table.",
            ),
            click.option("--json", "json_flag", is_flag=True, help="One JSON document: the preview and the result."),
        ]
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate
