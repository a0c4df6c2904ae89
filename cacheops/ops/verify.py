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

from ..server.connection import library_client
from .appmodel import (
    AppModel,
    as_langchain_embeddings,
    as_redisvl_vectorizer,
    load_embedding,
    prompt_string,
    resolve_model,
)
from .playbook import (
    LangchainExactTarget,
    LangchainSemanticTarget,
    Playbook,
    models_of,
    playbook_name,
)
from .warm import STANDARD_FIELDS, _fatal, _reason

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


class TargetVerify:
    """One cache of the playbook: open it with its library (never creating it), look each prompt up."""

    def __init__(self, client, playbook: Playbook, target, models: list[AppModel], embedding, report: VerifyReport):
        self.client, self.playbook, self.target, self.models = client, playbook, target, models
        self.lib_client = library_client(client)
        self.embedding, self.report = embedding, report
        self.display = target.display
        report.caches.append(self.display)

    @property
    def models_or_none(self) -> list[AppModel | None]:
        """The models to look up for; [None] for a cache that keys on no model (RedisVL)."""
        return list(self.models) or [None]

    def system_of(self, prompt) -> str | None:
        if prompt.system is not None:
            return prompt.system
        return self.target.system if self.target.system is not None else self.playbook.warm.system

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
            cache = self.open()
        except Exception as exc:
            if _fatal(exc):
                raise
            cache, reason = None, _reason(exc)
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
                        if _fatal(exc):
                            raise
                        self.add(model, p, asked, FAILED, reason=_reason(exc))
                        continue
                    if got is None:
                        self.add(model, p, asked, MISS)
                    elif p.answer is None or same_answer(p.answer, got):
                        self.add(model, p, asked, HIT, got)
                    else:
                        self.add(model, p, asked, WRONG, got)

    def index_exists(self, name: str) -> bool:
        names = self.client.execute_command("FT._LIST")
        return any((n.decode() if isinstance(n, bytes) else str(n)) == name for n in names)

    def open(self):
        """The library's cache object, without a TTL (check() then refreshes nothing); None when the
        semantic cache's index is missing (opening it would create it)."""
        t = self.target
        if isinstance(t, LangchainExactTarget):
            from langchain_redis import RedisCache

            return RedisCache(redis_client=self.lib_client, prefix=t.prefix, ttl=None)
        if not self.index_exists(t.display):
            return None
        if isinstance(t, LangchainSemanticTarget):
            from langchain_redis import RedisSemanticCache

            return RedisSemanticCache(
                embeddings=as_langchain_embeddings(self.embedding),
                redis_client=self.lib_client,
                distance_threshold=t.distance_threshold,
                ttl=None,
                name=t.name,
                prefix=t.prefix,
            )
        from redisvl.extensions.cache.llm import SemanticCache
        from redisvl.index import SearchIndex

        schema = SearchIndex.from_existing(t.name, redis_client=self.lib_client).schema.to_dict()
        fields = [f for f in schema["fields"] if f["name"] not in STANDARD_FIELDS]
        return SemanticCache(
            name=t.name,
            redis_client=self.lib_client,
            vectorizer=as_redisvl_vectorizer(self.embedding),
            distance_threshold=t.distance_threshold,
            ttl=None,
            filterable_fields=fields or None,
        )

    def lookup(self, cache, model: AppModel | None, p, asked: str) -> str | None:
        """The answer the app would be served for `asked`, or None (a miss)."""
        t = self.target
        if isinstance(t, (LangchainExactTarget, LangchainSemanticTarget)):
            assert model is not None  # the playbook requires a model for LangChain caches
            generations = cache.lookup(prompt_string(asked, self.system_of(p), model.chat), model.llm_string)
            return generations[0].text if generations else None
        hits = cache.check(prompt=asked, num_results=1, filter_expression=self.filter_expression())
        return hits[0].get("response") if hits else None

    def filter_expression(self):
        """The app's filter: the playbook's filters for this RedisVL cache, ANDed (None: no filter)."""
        from redisvl.query.filter import Num, Tag

        expression = None
        for name, value in self.target.filters.items():
            term = Num(name) == value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
            term = term if term is not None else Tag(name) == str(value)
            expression = term if expression is None else expression & term
        return expression


def describe(report: VerifyReport) -> str:
    t = report.counts()
    total = len(report.lookups)
    return (
        f"playbook {report.playbook}: {t[HIT]}/{total} right hits, {t[WRONG]} wrong answer(s), "
        f"{t[MISS]} miss(es)" + (f", {t[FAILED]} failed" if t[FAILED] else "")
    )
