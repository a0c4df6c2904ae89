"""What a new user meets first, on the demo keyspace (`cacheops demo`'s caches, written by the real
LangChain / RedisVL libraries): unknown cache names, tables at 80 and 140 columns, stdout that is
only the output."""

from __future__ import annotations

import re

import pytest
from conftest import Cli

from cacheops.exit_codes import ExitCode
from cacheops.server.embedded import EmbeddedRedis

pytest.importorskip("langchain_redis")


@pytest.fixture(scope="module")
def demo_url():
    from cacheops.demo import fill_demo_cache

    with EmbeddedRedis() as server:
        fill_demo_cache(server.url)
        yield server.url


@pytest.fixture
def demo(demo_url):
    return Cli(demo_url)


CACHE_COMMANDS = [
    ("scan", "--cache", "nosuch"),
    ("stats", "--cache", "nosuch"),
    ("caches", "--cache", "nosuch"),
    ("show", "--prompt", "What is the capital of France?", "--cache", "nosuch"),
    ("evict", "--cache", "nosuch", "--dry-run"),
    ("audit", "--cache", "nosuch"),
    ("migrate-embeddings", "--cache", "nosuch", "--to", "hf:sentence-transformers/all-MiniLM-L6-v2", "--dry-run"),
]


@pytest.mark.parametrize("args", CACHE_COMMANDS, ids=[a[0] for a in CACHE_COMMANDS])
def test_unknown_cache_exits_7_naming_the_known_caches(demo, args):
    result = demo(*args)
    assert result.exit_code == ExitCode.NOT_FOUND, result.output
    assert result.stdout == "" and "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    assert "'nosuch'" in line and "llmcache" in line and "support_cache" in line, line


# Values that change while the test runs (remaining TTLs, times) are not words of the data.
_VOLATILE = re.compile(r"^(\d+[dhms])+$|^\d{2}:\d{2}:\d{2}$|^[\d.,]+$")
TABLE_COMMANDS = [
    ("caches",),
    ("scan", "--limit", "30"),
    ("scan", "--unknown", "--limit", "30"),
    ("stats",),
    ("doctor",),
    ("evict", "--response-contains", "Paris", "--dry-run"),
]


def _cells(output: str) -> list[str]:
    """The text of every table cell line (box rows), split on the column borders."""
    cells = []
    for line in output.splitlines():
        if line.startswith(("│", "┃")):
            cells += [c.strip() for c in re.split(r"[│┃]", line)[1:-1]]
    return cells


@pytest.mark.parametrize("args", TABLE_COMMANDS, ids=[" ".join(a) for a in TABLE_COMMANDS])
def test_tables_fit_80_and_140_columns_without_splitting_a_word(demo, monkeypatch, args):
    import cacheops.render as render

    def at(width: int) -> str:
        monkeypatch.setattr(render.console, "_width", width)
        result = demo(*args, "--table") if args[0] != "evict" else demo(*args)
        assert result.exit_code in (0, ExitCode.PROBLEMS_FOUND), result.output
        return result.stdout

    words = set()
    for cell in _cells(at(1000)):  # nothing is cut at this width: every word whole
        words.update(cell.split())
    for width in (80, 140):
        out = at(width)
        assert all(len(line) <= width for line in out.splitlines()), out
        for cell in _cells(out):
            for word in cell.split():
                if "…" in word or _VOLATILE.match(word) or word in words:
                    continue
                pytest.fail(f"{' '.join(args)} at {width} columns: {word!r} is a piece of a word\n{out}")
