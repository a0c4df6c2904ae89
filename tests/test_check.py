"""`cacheops check`: the post-deploy gate; its JUnit file read back by a JUnit parser (xml.etree);
the CI jobs of docs/ci.md run against the test server."""

from __future__ import annotations

import json
import re
import shlex
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml
from test_warm import HASHING, write_playbook
from test_warm_verify import PROMPTS, exact_key, playbook

from cacheops.exit_codes import ExitCode

DOCS = Path(__file__).parent.parent / "docs" / "ci.md"


def junit_cases(path: Path) -> list[tuple[str, str, str | None]]:
    """(suite, name, failure message or None) of every testcase, as a JUnit consumer reads them."""
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    out = []
    for suite in root.iter("testsuite"):
        assert int(suite.get("tests")) == len(suite.findall("testcase"))
        for case in suite.findall("testcase"):
            failure = case.find("failure")
            out.append((suite.get("name"), case.get("name"), None if failure is None else failure.get("message")))
    return out


def test_check_warm_then_all_pass_with_a_junit_report(run, client, tmp_path):
    path = playbook(tmp_path)
    junit = tmp_path / "junit.xml"
    result = run("check", path, "--warm", "--junit", str(junit), "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["ok"] and doc["warmed"]
    assert doc["suites"]["verify"] == {"passed": 13, "failed": 0, "skipped": 0}
    assert doc["suites"]["warm"]["passed"] == 3 and doc["suites"]["audit"]["passed"] == 2
    cases = junit_cases(junit)
    assert len(cases) == len(doc["cases"]) and all(failure is None for _, _, failure in cases)
    assert {s for s, _, _ in cases} == {
        "cacheops.doctor",
        "cacheops.warm",
        "cacheops.verify",
        "cacheops.audit",
        "cacheops.suspects",
    }
    assert (
        "cacheops.verify",
        "semcache / gpt-4o-mini / Can I get a refund? / paraphrase: a refund, can I get",
        None,
    ) in cases


def test_every_failure_is_a_failing_testcase_and_one_exit_code(run, client, tmp_path, monkeypatch):
    path = playbook(tmp_path)
    assert run("warm", path, "--json").exit_code == 0
    assert run("evict", "--key", exact_key("Can I get a refund?"), "--yes").exit_code == 0
    # a colliding pair in the semantic cache: the same words, another answer, stored by the library
    from redisvl.extensions.cache.llm import SemanticCache
    from redisvl.utils.vectorize import CustomVectorizer

    from cacheops.demo import hashing_embeddings

    rvl = SemanticCache(
        name="rvl",
        redis_url=run.url,
        filterable_fields=[{"name": "tier", "type": "tag"}],
        vectorizer=CustomVectorizer(embed=hashing_embeddings(64).embed_query),
    )
    rvl.store("hello say", "Salut!", filters={"tier": "pro"})
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    junit = tmp_path / "junit.xml"
    result = run("check", path, "--junit", str(junit), "--json")
    assert result.exit_code == ExitCode.CHECK_FAILED, result.output
    doc = json.loads(result.stdout)
    failed = [(c["suite"], c["name"]) for c in doc["cases"] if c["status"] == "failed"]
    assert ("verify", "app:exact / gpt-4o-mini / Can I get a refund?") in failed
    assert ("audit", "rvl") in failed
    # every failure is a failing testcase of the JUnit file, and nothing else fails there
    failing = [(s.removeprefix("cacheops."), n) for s, n, f in junit_cases(junit) if f is not None]
    assert sorted(failing) == sorted(failed)
    # and a GitHub Actions error annotation, on stderr (stdout stays JSON)
    annotations = [line for line in result.stderr.splitlines() if line.startswith("::error ")]
    assert len(annotations) == len(failed)
    assert any("Can I get a refund?" in line and "title=cacheops check%3A verify" in line for line in annotations)
    # the audit allows that many collisions with --max-collisions
    doc = json.loads(run("check", path, "--max-collisions", "5", "--json").stdout)
    assert [c["suite"] for c in doc["cases"] if c["status"] == "failed"] == ["verify"]


def test_a_cached_outage_in_a_playbook_cache_fails_the_gate(run, client, tmp_path):
    """The suspects check: an error text the app's model returned during an outage, cached as the
    answer by the app's own RedisCache, fails the gate; --suspects-fail-on decides from which severity."""
    import writers

    path = playbook(tmp_path)
    assert run("warm", path, "--json").exit_code == 0
    outage = "Error: 503 Service Unavailable. Please retry later."
    writers.langchain_exact(run.url, [("Is the status page up?", outage)], prefix="app:exact")
    result = run("check", path, "--json")
    assert result.exit_code == ExitCode.CHECK_FAILED, result.output
    doc = json.loads(result.stdout)
    failed = [c for c in doc["cases"] if c["status"] == "failed"]
    assert [(c["suite"], c["name"]) for c in failed] == [("suspects", "app:exact: error_text")]
    assert outage not in result.stdout  # counts only: a cached answer's text stays out of CI logs
    assert run("check", path, "--suspects-fail-on", "off", "--json").exit_code == 0


def ci_commands(doc: str) -> list[list[str]]:
    """The cacheops command lines of every CI job in docs/ci.md (the YAML blocks' run/script lines)."""

    def strings(node):
        if isinstance(node, dict):
            for value in node.values():
                yield from strings(value)
        elif isinstance(node, list):
            for value in node:
                yield from strings(value)
        elif isinstance(node, str):
            yield node

    commands = []
    for block in re.findall(r"```yaml\n(.*?)```", doc, re.S):
        for text in strings(yaml.safe_load(block)):
            commands += [shlex.split(line) for line in text.splitlines() if line.startswith("cacheops ")]
    return commands


def test_the_ci_jobs_in_docs_ci_md_run_against_the_server(run, client, tmp_path, monkeypatch):
    """Both jobs' cacheops lines, as the jobs run them: the server from REDIS_URL (no --url), the
    embedded test server standing in for the deployed one."""
    monkeypatch.setenv("REDIS_URL", run.url)
    doc = DOCS.read_text()
    assert "GitHub Actions" in doc and "GitLab" in doc
    commands = ci_commands(doc)
    assert len(commands) >= 2 and all(c[0] == "cacheops" for c in commands)
    caches = [
        {"type": "langchain_exact", "prefix": "app:exact"},
        {"type": "langchain_semantic", "name": "semcache", "embedding": HASHING, "distance_threshold": 0.05},
    ]
    path = write_playbook(tmp_path, caches, prompts=PROMPTS)
    for argv in commands:
        args = [
            path if a.endswith(".yaml") else str(tmp_path / Path(a).name) if a.endswith(".xml") else a for a in argv[1:]
        ]
        result = run(*args, url="")
        assert result.exit_code == 0, (argv, result.output)
    junit = next(tmp_path.glob("*.xml"))
    cases = junit_cases(junit)
    assert all(failure is None for _, _, failure in cases)
    assert {s for s, _, _ in cases} >= {"cacheops.doctor", "cacheops.warm", "cacheops.verify", "cacheops.audit"}
