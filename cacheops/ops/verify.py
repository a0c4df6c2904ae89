"""`warm --verify`: after a deploy, does every playbook prompt hit its own answer, the way the app asks?

Every prompt (and, for semantic caches, every paraphrase) is looked up by the cache library's own
lookup, with the strings the app's own model computes (appmodel.py), and judged:
  - hit: the cached answer is the playbook's answer (or the playbook gives none: any hit counts);
  - wrong_answer: a hit with another answer (a semantic cache served a neighbour's answer, or an
    entry was overwritten);
  - miss: nothing the app would be served.

The lookups are the app's: RedisCache.lookup(prompt, llm_string), RedisSemanticCache.lookup (one
nearest entry within the threshold, then its llm_string), RedisVL SemanticCache.check(prompt,
filter_expression=the playbook's filters). Nothing is written and no LLM is called; the embedding
model embeds the prompts, as the app's would. The cache objects are built without a TTL, so RedisVL's
check() (which EXPIREs every key it returns when its cache has a TTL) slides nothing, and the
client is CLIENT NO-TOUCH, so neither LRU idle time nor LFU counters move. A semantic cache whose
index does not exist is not opened (opening creates it): its lookups are misses.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import redis

from .appcache import AppCache, failure_reason, is_fatal
from .appmodel import AppModel, load_embedding, resolve_model
from .playbook import (
    LangchainExactTarget,
    Playbook,
    models_of,
    playbook_name,
)

HIT, WRONG, MISS, FAILED = "hit", "wrong_answer", "miss", "failed"
RESULTS = (HIT, WRONG, MISS, FAILED)
NO_INDEX = "the cache's search index does not exist"


@dataclass
class Lookup:
    """One lookup the app would make, and what it was served."""

    cache: str
    model: str | None
    prompt: str  # the playbook prompt
    asked: str  # what was looked up: the prompt or one of its paraphrases
    result: str
    expected: str | None
    got: str | None = None
    served_for: str | None = None  # wrong_answer: the playbook prompt whose answer was served, if any
    reason: str | None = None

    @property
    def paraphrase(self) -> bool:
        return self.asked != self.prompt

    @property
    def name(self) -> str:
        """A stable test-case name: cache / model / prompt (/ paraphrase)."""
        parts = [self.cache] + ([self.model] if self.model else []) + [self.prompt]
        return " / ".join(parts + ([f"paraphrase: {self.asked}"] if self.paraphrase else []))

    def to_dict(self) -> dict:
        return {
            "cache": self.cache,
            "model": self.model,
            "prompt": self.prompt,
            "asked": self.asked,
            "paraphrase": self.paraphrase,
            "result": self.result,
            "expected": self.expected,
            "got": self.got,
            "served_for": self.served_for,
            "reason": self.reason,
        }


@dataclass
class VerifyReport:
    playbook: str
    file: str
    lookups: list[Lookup] = field(default_factory=list)
    caches: list[str] = field(default_factory=list)

    def counts(self, cache: str | None = None) -> dict[str, int]:
        got = Counter(x.result for x in self.lookups if cache is None or x.cache == cache)
        return {r: got[r] for r in RESULTS}

    @property
    def ok(self) -> bool:
        return all(x.result == HIT for x in self.lookups)

    @property
    def failures(self) -> list[Lookup]:
        return [x for x in self.lookups if x.result != HIT]

    def to_dict(self) -> dict:
        return {
            "playbook": self.playbook,
            "file": self.file,
            "ok": self.ok,
            "totals": self.counts(),
            "caches": [{"cache": c, **self.counts(c)} for c in self.caches],
            "lookups": [x.to_dict() for x in self.lookups],
        }


def same_answer(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and " ".join(a.split()) == " ".join(b.split())


def verify(client: redis.Redis, playbook: Playbook, path: str | Path) -> VerifyReport:
    """Look every playbook prompt (and paraphrase, semantic caches) up as the app does; write nothing."""
    source = str(path)
    report = VerifyReport(playbook_name(playbook, path), source)
    models = {id(t): [resolve_model(m, source) for m in models_of(playbook, t)] for t in playbook.warm.caches}
    embeddings = {
        id(t): load_embedding(t.embedding, source)
        for t in playbook.warm.caches
        if not isinstance(t, LangchainExactTarget)
    }
    for target in playbook.warm.caches:
        TargetVerify(client, playbook, target, models[id(target)], embeddings.get(id(target)), report).go()
    return report


class TargetVerify(AppCache):
    """One cache of the playbook: open it with its library (never creating it), look each prompt up."""

    def __init__(self, client, playbook: Playbook, target, models: list[AppModel], embedding, report: VerifyReport):
        super().__init__(client, playbook, target, models, embedding)
        self.report = report
        report.caches.append(self.display)

    def asks(self, p) -> list[str]:
        """The prompt, and its paraphrases for a semantic cache (an exact cache misses them by design)."""
        return [p.prompt] + ([] if isinstance(self.target, LangchainExactTarget) else list(p.paraphrases))

    def add(self, model: AppModel | None, p, asked: str, result: str, got=None, reason=None) -> None:
        served_for = None
        if result == WRONG:
            served_for = next((q.prompt for q in self.playbook.prompts if same_answer(q.answer, got)), None)
        self.report.lookups.append(
            Lookup(
                self.display, model.label if model else None, p.prompt, asked, result, p.answer, got, served_for, reason
            )
        )

    def go(self) -> None:
        reason: str | None
        try:
            cache = self.open_cache()
        except Exception as exc:
            if is_fatal(exc):
                raise
            cache, reason = None, failure_reason(exc)
        else:
            reason = None if cache is not None else NO_INDEX
        for model in self.models_or_none:
            for p in self.playbook.prompts:
                for asked in self.asks(p):
                    if cache is None:
                        self.add(model, p, asked, FAILED if reason != NO_INDEX else MISS, reason=reason)
                        continue
                    try:
                        got = self.lookup(cache, model, p, asked)
                    except Exception as exc:
                        if is_fatal(exc):
                            raise
                        self.add(model, p, asked, FAILED, reason=failure_reason(exc))
                        continue
                    if got is None:
                        self.add(model, p, asked, MISS)
                    elif p.answer is None or same_answer(p.answer, got):
                        self.add(model, p, asked, HIT, got)
                    else:
                        self.add(model, p, asked, WRONG, got)


def describe(report: VerifyReport) -> str:
    t = report.counts()
    total = len(report.lookups)
    return (
        f"playbook {report.playbook}: {t[HIT]}/{total} right hits, {t[WRONG]} wrong answer(s), "
        f"{t[MISS]} miss(es)" + (f", {t[FAILED]} failed" if t[FAILED] else "")
    )
