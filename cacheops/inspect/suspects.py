"""`cacheops suspects`: one streaming pass that finds the entries a rule reports (suspect_rules.py).

Memory stays flat: per rule it keeps counts, bytes, the worst example and at most `max_details`
details, never the keyspace. Every text it keeps is masked (secrets and personal data show their
first and last characters only), so no output built from a report can print a secret.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import redis

from ..config import Config, load_config
from ..layouts import Context, Entry, semantic_layout
from ..server.keyspace import ScanStats
from .catalog import EntryFilter, iter_entries
from .suspect_rules import RANK, Finding, Rule, RuleSet, excerpt, masked, raise_severity, sensitive_spans

MAX_DETAILS = 20  # per rule, by default
PROMPT_WIDTH = 120


@dataclass(slots=True)
class SuspectDetail:
    """One finding on one entry, ready to print: every text is masked."""

    rule: str
    severity: str
    why: str
    key: str
    cache: str
    layout: str
    model: str | None
    prompt: str | None  # masked, cut to PROMPT_WIDTH
    evidence: str  # masked excerpt of the prompt or answer, the match marked «like this»
    evidence_field: str  # "prompt" | "answer"
    ttl_ms: int | None
    inserted_at: float | None
    bytes: int | None
    leak_risk: bool

    def to_dict(self, now: float) -> dict:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "why": self.why,
            "key": self.key,
            "cache": self.cache,
            "layout": self.layout,
            "model": self.model,
            "prompt": self.prompt,
            "evidence": self.evidence,
            "evidence_field": self.evidence_field,
            "ttl_seconds": None if self.ttl_ms is None else round(self.ttl_ms / 1000, 3),
            "age_seconds": None if self.inserted_at is None else round(now - self.inserted_at, 1),
            "inserted_at": self.inserted_at,
            "bytes": self.bytes,
            "leak_risk": self.leak_risk,
        }


@dataclass
class RuleSummary:
    rule: Rule
    entries: int = 0
    bytes: int = 0
    leak_risk: int = 0  # entries found in a semantic cache no user/tenant field scopes
    worst: SuspectDetail | None = None
    details: list[SuspectDetail] = field(default_factory=list)

    @property
    def severity(self) -> str:
        """The rule's severity, or the worst of its findings (a leak risk raises it)."""
        return self.worst.severity if self.worst else self.rule.severity

    def to_dict(self, now: float) -> dict:
        return {
            "rule": self.rule.name,
            "category": self.rule.category,
            "severity": self.severity,
            "what": self.rule.what,
            "entries": self.entries,
            "bytes": self.bytes,
            "leak_risk": self.leak_risk,
            "worst": self.worst.to_dict(now) if self.worst else None,
            "details_shown": len(self.details),
        }


@dataclass
class SuspectsReport:
    rules: dict[str, RuleSummary]
    entries: int = 0  # entries judged
    suspects: int = 0  # entries at least one rule reported
    prompt_unknown: int = 0  # entries that store no prompt text (exact caches): prompt rules could not judge them
    no_insertion_time: int = 0  # with --before: entries that record no insertion time
    scanned_keys: int = 0
    scan_path: str = ""
    seconds: float = 0.0
    now: float = field(default_factory=time.time)

    @property
    def found(self) -> list[RuleSummary]:
        """The rules that reported something, worst first."""
        hits = [s for s in self.rules.values() if s.entries]
        return sorted(hits, key=lambda s: (-RANK[s.severity], -s.entries, s.rule.name))

    @property
    def worst_severity(self) -> str | None:
        found = self.found
        return found[0].severity if found else None

    def fails(self, fail_on: str | None) -> bool:
        """Whether anything at or above `fail_on` was found (the deploy gate)."""
        worst = self.worst_severity
        return fail_on is not None and worst is not None and RANK[worst] >= RANK[fail_on]

    def to_dict(self) -> dict:
        return {
            "summary": [s.to_dict(self.now) for s in self.found],
            "details": [d.to_dict(self.now) for s in self.found for d in s.details],
            "rules_checked": sorted(self.rules),
            "entries": self.entries,
            "suspects": self.suspects,
            "worst_severity": self.worst_severity,
            "prompt_unknown": self.prompt_unknown,
            "no_insertion_time": self.no_insertion_time,
            "scanned_keys": self.scanned_keys,
            "scan_path": self.scan_path,
            "seconds": round(self.seconds, 3),
        }


# -- who else a semantic cache answers ---------------------------------------------------------------

_SCOPE_FIELD = re.compile(
    r"^(?:user|tenant|org|organi[sz]ation|account|customer|owner|member|session|workspace|team|client)"
    r"(?:[_-]?(?:id|key|name))?$",
    re.I,
)


def leak_risk(entry: Entry, config: Config) -> bool:
    """Whether anyone who asks something similar may be served this entry: it sits in a semantic cache
    whose lookups no user or tenant field scopes. From the config (caches.NAME.user_scoped), else from
    what the layout says a lookup must share with the entry (SemanticLayout.lookup_scope: RedisVL's
    filter fields, LangChain's llm_string, LiteLLM's litellm_cache_key)."""
    if entry.kind != "semantic":
        return False
    setting = config.caches.get(entry.cache)
    if setting is not None and setting.user_scoped is not None:
        return not setting.user_scoped
    return not any(_SCOPE_FIELD.match(name) for name in scope_fields(entry))


def scope_fields(entry: Entry) -> list[str]:
    """The names of the fields a lookup must match to be served this entry (besides the vector)."""
    layout = semantic_layout(entry.layout)
    if layout is None:
        return list(entry.tags or ())
    scope = layout.lookup_scope(entry)  # (name, value) pairs, or a single (name, value) pair
    pairs = scope if scope and isinstance(scope[0], tuple) else [scope] if scope else []
    return [str(pair[0]) for pair in pairs if pair]


# -- the pass -------------------------------------------------------------------------------------------


def find_suspects(
    client: redis.Redis,
    ctx: Context,
    rules: RuleSet,
    cache: str | None = None,
    config: Config | None = None,
    max_details: int = MAX_DETAILS,
    server_side: bool | None = None,
    stats: ScanStats | None = None,
) -> SuspectsReport:
    """Stream every entry (of `cache`) through the rules; keep counts, bytes, the worst example and up
    to max_details details per rule."""
    started = time.monotonic()
    config = config if config is not None else load_config()
    stats = stats if stats is not None else ScanStats()
    report = SuspectsReport({name: RuleSummary(rules.rules[name]) for name in sorted(rules.wanted)}, now=rules.now)
    entries = iter_entries(client, ctx, EntryFilter(cache=cache), stats=stats, server_side=server_side, full=False)
    for entry in entries:
        if not isinstance(entry, Entry):  # the filter asks for entries only; infrastructure is never a suspect
            continue
        report.entries += 1
        if entry.prompt is None:
            report.prompt_unknown += 1
        if rules.before is not None and entry.inserted_at is None:
            report.no_insertion_time += 1
        findings = rules.check(entry)
        if not findings:
            continue
        report.suspects += 1
        leak = any(f.rule in ("secret", "personal_data") for f in findings) and leak_risk(entry, config)
        spans = None
        for finding in findings:
            summary = report.rules[finding.rule]
            if leak and finding.rule in ("secret", "personal_data"):
                finding.leak_risk = True
                finding.severity = raise_severity(finding.severity)
                finding.why += "; a semantic cache no user or tenant field scopes: served to anyone asking alike"
                summary.leak_risk += 1
            summary.entries += 1
            summary.bytes += entry.bytes or 0
            keep = len(summary.details) < max_details
            better = summary.worst is None or _rank(finding, entry) > _rank_detail(summary.worst)
            if keep or better:
                if spans is None:
                    spans = (
                        sensitive_spans(entry.prompt, rules.custom_secret),
                        sensitive_spans(entry.answer, rules.custom_secret),
                    )
                detail = _detail(entry, finding, spans)
                if keep:
                    summary.details.append(detail)
                if better:
                    summary.worst = detail
    report.scanned_keys = stats.keys
    report.scan_path = stats.path
    report.seconds = time.monotonic() - started
    return report


def _rank(finding: Finding, entry: Entry) -> tuple:
    return RANK[finding.severity], entry.bytes or 0


def _rank_detail(detail: SuspectDetail) -> tuple:
    return RANK[detail.severity], detail.bytes or 0


def _detail(entry: Entry, finding: Finding, spans: tuple[list, list]) -> SuspectDetail:
    prompt_spans, answer_spans = spans
    if finding.field == "prompt":
        evidence = excerpt(entry.prompt, finding.span, prompt_spans)
    else:
        evidence = excerpt(entry.answer, finding.span if finding.field == "answer" else None, answer_spans)
    prompt = None
    if entry.prompt is not None:
        prompt = " ".join(masked(entry.prompt, prompt_spans).text.split())
        if len(prompt) > PROMPT_WIDTH:
            prompt = prompt[: PROMPT_WIDTH - 1] + "…"
    return SuspectDetail(
        finding.rule,
        finding.severity,
        masked(finding.why, sensitive_spans(finding.why)).text,  # it may quote the text it matched
        entry.key,
        entry.cache,
        entry.layout,
        entry.model,
        prompt,
        evidence,
        finding.field or "answer",
        entry.ttl_ms,
        entry.inserted_at,
        entry.bytes,
        finding.leak_risk,
    )


def rule_set(only=None, before: float | None = None, config: Config | None = None) -> RuleSet:
    """The rules in force: the config's settings and custom rules, narrowed to `only` (names or categories)."""
    config = config if config is not None else load_config()
    return RuleSet(config.suspects, set(only) if only else None, before)
