"""`cacheops check PLAYBOOK`: the post-deploy gate in one step, with one verdict.

The checks, in order, each a list of cases (one JUnit testcase each):
  - doctor: every health check (a "problem" fails, a warning passes with its text);
  - warm (with --warm): one case per cache of the playbook, failed when a prompt could not be written;
  - verify: one case per lookup (warm --verify: each prompt, and each paraphrase for semantic caches);
  - audit: one case per semantic cache of the playbook, failed when it has more colliding pairs
    (entries that would serve another question's answer at the cache's threshold) than
    max_collisions. A cache with no index yet is skipped (verify reports its misses);
  - suspects (unless suspects_fail_on is None): per cache of the playbook, one case per rule that found
    entries (poisoned or risky answers: cached errors, refusals, secrets, ...), failed at or above
    suspects_fail_on; counts only, never an answer's text (secrets stay out of CI logs).

The report renders as JSON, as a JUnit XML file (what CI systems read: GitHub Actions reporters,
GitLab's `artifacts:reports:junit`) and as GitHub Actions annotations (front ends do the printing).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import redis

from ..errors import NotFound
from ..inspect.catalog import build_context
from ..inspect.doctor import PROBLEM, WARN, run_doctor
from ..inspect.suspect_rules import RANK
from ..inspect.suspects import find_suspects, rule_set
from ..semantic.audit import AuditOptions, run_audit
from . import verify as verify_lib
from .playbook import LangchainExactTarget, Playbook, playbook_name
from .warm import FAILED as WARM_FAILED
from .warm import warm

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
SUITES = ("doctor", "warm", "verify", "audit", "suspects")


@dataclass
class Case:
    suite: str
    name: str
    status: str
    message: str = ""
    details: str = ""

    def to_dict(self) -> dict:
        return {
            "suite": self.suite,
            "name": self.name,
            "status": self.status,
            "message": self.message,
            "details": self.details,
        }


@dataclass
class CheckReport:
    playbook: str
    file: str
    max_collisions: int
    warmed: bool
    cases: list[Case] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.status != FAILED for c in self.cases)

    @property
    def failures(self) -> list[Case]:
        return [c for c in self.cases if c.status == FAILED]

    def suite_counts(self) -> dict[str, dict[str, int]]:
        out = {}
        for suite in SUITES:
            cases = [c for c in self.cases if c.suite == suite]
            if cases:
                out[suite] = {s: sum(c.status == s for c in cases) for s in (PASSED, FAILED, SKIPPED)}
        return out

    def to_dict(self) -> dict:
        return {
            "playbook": self.playbook,
            "file": self.file,
            "ok": self.ok,
            "warmed": self.warmed,
            "max_collisions": self.max_collisions,
            "suites": self.suite_counts(),
            "cases": [c.to_dict() for c in self.cases],
        }

    def junit_xml(self) -> str:
        """JUnit XML: a <testsuite> per check, a <testcase> per case, <failure>/<skipped> as usual."""
        root = ET.Element("testsuites", name=f"cacheops check {self.playbook}")
        root.set("tests", str(len(self.cases)))
        root.set("failures", str(len(self.failures)))
        for suite in SUITES:
            cases = [c for c in self.cases if c.suite == suite]
            if not cases:
                continue
            el = ET.SubElement(root, "testsuite", name=f"cacheops.{suite}")
            el.set("tests", str(len(cases)))
            el.set("failures", str(sum(c.status == FAILED for c in cases)))
            el.set("skipped", str(sum(c.status == SKIPPED for c in cases)))
            el.set("errors", "0")
            for case in cases:
                tc = ET.SubElement(el, "testcase", classname=f"cacheops.{suite}", name=case.name)
                if case.status == FAILED:
                    failure = ET.SubElement(tc, "failure", message=case.message)
                    failure.text = case.details or case.message
                elif case.status == SKIPPED:
                    ET.SubElement(tc, "skipped", message=case.message)
                elif case.message:
                    ET.SubElement(tc, "system-out").text = case.message
        ET.indent(root)
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def run_check(
    client: redis.Redis,
    playbook: Playbook,
    path: str | Path,
    display_url: str,
    warm_first: bool = False,
    max_collisions: int = 0,
    suspects_fail_on: str | None = "high",
) -> CheckReport:
    """Doctor, optionally warm, verify, audit: every case collected, nothing stops at the first failure."""
    report = CheckReport(playbook_name(playbook, path), str(path), max_collisions, warm_first)
    doctor = run_doctor(client, build_context(client, learn=False), display_url)
    seen: dict[str, int] = {}
    for c in doctor.checks:
        seen[c.area] = seen.get(c.area, 0) + 1  # an area can have several findings: names stay unique
        report.cases.append(
            Case(
                "doctor",
                c.area if seen[c.area] == 1 else f"{c.area} ({seen[c.area]})",
                FAILED if c.status == PROBLEM else PASSED,
                c.message + (f" (fix: {c.fix})" if c.fix and c.status in (PROBLEM, WARN) else ""),
            )
        )
    if warm_first:
        warmed = warm(client, playbook, path)
        for cache in warmed.caches:
            failed = [e for e in warmed.entries if e.cache == cache.cache and e.status == WARM_FAILED]
            report.cases.append(
                Case(
                    "warm",
                    cache.cache,
                    FAILED if failed else PASSED,
                    cache.error
                    or (
                        f"{len(failed)} prompt(s) could not be written"
                        if failed
                        else ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in cache.counts.items() if n)
                    ),
                    "\n".join(f"{e.prompt}: {e.reason}" for e in failed),
                )
            )
    verified = verify_lib.verify(client, playbook, path)
    for x in verified.lookups:
        report.cases.append(Case("verify", x.name, PASSED if x.result == verify_lib.HIT else FAILED, *_verdict(x)))
    ctx = build_context(client, learn=False)  # after warm: its indexes may be new
    for target in playbook.warm.caches:
        if isinstance(target, LangchainExactTarget):
            continue
        name = target.display
        try:
            audit = run_audit(client, ctx, AuditOptions(cache=name, threshold=target.distance_threshold, bare=False))
        except NotFound:
            report.cases.append(Case("audit", name, SKIPPED, "no semantic index for this cache yet"))
            continue
        for result in audit.caches:
            over = result.colliding_pairs > max_collisions
            pairs = "\n".join(
                f"{p.distance:.4f}: {p.a.prompt!r} -> {p.a.answer!r} would be served for {p.b.prompt!r}"
                for p in result.worst
            )
            report.cases.append(
                Case(
                    "audit",
                    result.cache,
                    FAILED if over else PASSED,
                    f"{result.colliding_pairs} colliding pair(s) at threshold {result.threshold:g} "
                    f"(allowed: {max_collisions})"
                    + (f"; largest safe threshold {result.safe_threshold:g}" if result.safe_threshold else ""),
                    pairs,
                )
            )
    if suspects_fail_on is not None:
        _check_suspects(client, ctx, playbook, report, suspects_fail_on)
    return report


def _check_suspects(client: redis.Redis, ctx, playbook: Playbook, report: CheckReport, fail_on: str) -> None:
    rules = rule_set()
    for target in playbook.warm.caches:
        found = find_suspects(client, ctx, rules, cache=target.display).found
        if not found:
            report.cases.append(Case("suspects", target.display, PASSED, "nothing suspect"))
        for s in found:
            report.cases.append(
                Case(
                    "suspects",
                    f"{target.display}: {s.rule.name}",
                    FAILED if RANK[s.severity] >= RANK[fail_on] else PASSED,
                    f"{s.entries} entr{'y' if s.entries == 1 else 'ies'} ({s.severity}): {s.rule.what}; "
                    f"`cacheops suspects --cache {target.display} --rule {s.rule.name}` lists them",
                )
            )


def _verdict(x: verify_lib.Lookup) -> tuple[str, str]:
    """(message, details) of one verify case."""
    if x.result == verify_lib.HIT:
        return "", ""
    if x.result == verify_lib.MISS:
        return f"miss: {x.asked!r} is not served from the cache" + (f" ({x.reason})" if x.reason else ""), ""
    if x.result == verify_lib.FAILED:
        return f"failed: {x.reason}", ""
    served = f" (the answer to {x.served_for!r})" if x.served_for else ""
    return f"wrong answer for {x.asked!r}: served {x.got!r}{served}, expected {x.expected!r}", ""


def github_annotations(report: CheckReport) -> list[str]:
    """GitHub Actions workflow commands (::error) for every failed case."""

    def data(text: str) -> str:
        return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    def prop(text: str) -> str:
        return data(text).replace(":", "%3A").replace(",", "%2C")

    return [
        f"::error title={prop(f'cacheops check: {c.suite}')},file={prop(report.file)}::{data(f'{c.name}: {c.message}')}"
        for c in report.failures
    ]
