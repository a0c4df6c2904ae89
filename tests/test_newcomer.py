"""What a new user meets first, on the demo keyspace (`cacheops demo`'s caches, written by the real
LangChain / RedisVL libraries): unknown cache names, tables at 80 and 140 columns, stdout that is
only the output."""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

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
    ("suspects", "--cache", "nosuch"),
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


# -- every README example, verbatim, against the demo keyspace ---------------------------------------

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
CUT_AT = {"|", "||", ">", ">>", "&&", ";"}  # the shell's part of an example line, not cacheops'


def readme_examples() -> list[tuple[int, str, list[str], bool]]:
    """(line number, line, cacheops argv, followed by `||`) for every README line that runs cacheops."""
    out = []
    for number, line in enumerate(README.splitlines(), 1):
        text = line.strip().removeprefix("$ ")
        if not text.startswith("cacheops "):
            continue
        lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        tokens = list(lexer)
        cut = next((i for i, t in enumerate(tokens) if t in CUT_AT), len(tokens))
        out.append((number, line.strip(), tokens[1:cut], cut < len(tokens) and tokens[cut] == "||"))
    return out


def subcommand(argv: list[str]) -> str:
    takes_value = {"--url", "--profile", "--username", "--password", "--db", "--tls-ca-file"}
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        i += 2 if argv[i] in takes_value else 1
    return argv[i] if i < len(argv) else ""


def why_not_run(argv: list[str]) -> str | None:
    """The examples that cannot run against a test's demo server, and why."""
    placeholders = ("redis://user", "rediss://host", "redis://node", "redis+sentinel://")
    if "--profile" in argv or any(a.startswith(placeholders) for a in argv):
        return "names a server of the reader's (placeholder host, cluster seeds, sentinels, credentials or profile)"
    if subcommand(argv) == "metrics" and "--serve" in argv and "--for" not in argv:
        return "serves until stopped (tests/test_hits.py serves the endpoint on a free port)"
    if subcommand(argv) == "hits" and "--for" not in argv:
        return "follows until Ctrl-C (the next example follows for a bounded time)"
    if subcommand(argv) == "demo":
        return "starts, fills or stops a server: the fixture is that demo server"
    if subcommand(argv) == "tui":
        return "interactive (the TUI has its own tests)"
    if subcommand(argv) == "restore" and not Path(argv[-1]).expanduser().exists():
        return "names the backup file an earlier evict wrote"
    return None


# Deleting commands need a confirmation (or --yes): the test previews them instead.
PREVIEWED = {"evict", "migrate-embeddings", "expire"}


def test_every_readme_example_runs_verbatim_against_the_demo(demo_url, tmp_path, monkeypatch):
    from cacheops.server import embedded

    examples = readme_examples()
    assert len(examples) >= 25, "the README's examples were not found"
    # What a reader has after `scripts/demo`: the demo server as the shared embedded one
    # (`--embedded`), REDIS_URL for the rest, the checkout's playbooks, and their own prompts file.
    port = int(demo_url.rsplit(":", 1)[1].split("/")[0])
    embedded._state_file().parent.mkdir(parents=True, exist_ok=True)
    embedded._state_file().write_text(json.dumps({"url": demo_url, "port": port, "pid": 0}))
    monkeypatch.setenv("REDIS_URL", demo_url)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "playbooks").symlink_to(ROOT / "playbooks")
    from cacheops.demo import FAQ

    (tmp_path / "faq.txt").write_text("".join(q + "\n" for q, _ in FAQ))
    (tmp_path / "prompts.jsonl").write_text("".join(json.dumps({"prompt": q, "answer": a}) + "\n" for q, a in FAQ))
    run = Cli("")
    ran, failures = 0, []
    for number, line, argv, gated in examples:
        if why_not_run(argv):
            continue
        argv = [os.path.expandvars(a) for a in argv]  # what the shell does with "$REDIS_URL"
        if subcommand(argv) in PREVIEWED and "--dry-run" not in argv:
            argv = [*argv, "--dry-run"]
        # CI gates: audit exits 11 on collisions (the demo has some, on purpose), doctor 8 on problems
        allowed = {0, ExitCode.COLLISIONS_FOUND} if subcommand(argv) == "audit" else {0}
        # verify and check gate too: the demo's toy (hashing) embedding misses some paraphrases, and
        # warm off a terminal keeps other models' llmcache entries, so those lookups miss (README says so)
        if "--verify" in argv or subcommand(argv) == "check":
            allowed |= {ExitCode.VERIFY_FAILED, ExitCode.CHECK_FAILED}
        if gated:
            allowed |= {ExitCode.PROBLEMS_FOUND, ExitCode.COLLISIONS_FOUND}
        result = run(*argv)
        ran += 1
        if result.exit_code not in allowed or "Traceback" in result.output:
            failures.append(f"README.md:{number}: {line}\n  exit {result.exit_code}: {result.output[-400:]}")
    assert not failures, "\n".join(failures)
    assert ran >= 20


def test_the_readme_examples_not_run_say_why():
    skipped = {line: why_not_run(argv) for _, line, argv, _ in readme_examples() if why_not_run(argv)}
    assert all(skipped.values()) and len(skipped) <= 14, (
        skipped
    )  # placeholders, demo, tui, servers that run until stopped


# -- figures that agree, and text a person reads -------------------------------------------------------


def test_history_caches_evict_and_doctor_speak_plainly(run, redis_url, client, tmp_path):
    import writers

    writers.langchain_exact(redis_url, [("What is the refund policy?", "Refunds are never possible.")])
    writers.langchain_semantic(redis_url, [("What is the refund policy?", "Refunds are never possible.")])
    backup = str(tmp_path / "b.jsonl")
    result = run("evict", "--response-contains", "never possible", "--backup", backup, "--yes")
    assert "2 entries selected" in result.stdout and "deleted 2 entries of 2 selected" in result.stdout
    run("restore", backup)
    run("restore", backup)  # the second finds both entries already there, identical

    table = run("history", "--table").stdout
    assert "identical 2" in table and "restored 2" in table and "deleted 2" in table
    assert "response_contains=never possible" in table and "['" not in table

    # one entry: singular; the operations log stream is named, not just counted
    preview = run("evict", "--prompt", "What is the refund policy?", "--cache", "redis", "--dry-run")
    assert "1 entry selected" in preview.stdout, preview.output
    scan_all = run("evict", "--response-contains", "never possible", "--dry-run")
    assert "1 candidate key is not a cache entry (1 cacheops operations log)" in scan_all.stderr, scan_all.output

    # caches: the infrastructure row agrees with the JSON (keys and bytes are said, not 0 / 0 B)
    infra = next(c for c in run.json("caches")["caches"] if c["name"] == "cacheops")["infrastructure"]
    result = run("caches", "--table")
    row = next(line for line in result.stdout.splitlines() if "cacheops" in line and "infrastructure" in line)
    assert " 0 B " not in row and " - " in row
    assert f"cacheops: {infra['keys']} key" in result.stderr and "1 cacheops operations log" in result.stderr

    assert "['" not in run("doctor", "--table").stdout


def test_show_prompt_numbers_several_entries(run, redis_url, client):
    import writers

    writers.langchain_exact(redis_url, [("What is the capital of France?", "Paris.")], model="gpt-4o")
    writers.langchain_exact(redis_url, [("What is the capital of France?", "Paris!")], model="gpt-4o-mini")
    out = run("show", "--prompt", "What is the capital of France?", "--table").stdout
    assert out.startswith("2 cached entries for that prompt:")
    assert "1 of 2: redis" in out and "2 of 2: redis" in out
