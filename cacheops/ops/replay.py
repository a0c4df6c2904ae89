"""`cacheops replay PROMPTS`: what the cache would do for a real prompt log, measured on the real cache.

Each prompt of the log is looked up in each cache of a playbook's `warm:` section (which says how the
app looks up: caches, models, system message, embedding model) exactly as `warm --verify` does: the
library's own lookup, with the app's llm_string, through TTL-less cache objects on the no-touch
client. Nothing is written, no LLM is called, no TTL slides, no LRU/LFU counter moves.

Reported: per prompt the result (hit / miss / wrong_answer when the log labels the right answer),
the lookup's latency, and the tokens the hit would save (the cached generation's usage metadata, as
LangChain stores it on the message); per cache the hit rate, latency p50/p95 and tokens saved; and,
for semantic caches, the same per distance threshold (the nearest entry's distance, judged as the
library judges it: one nearest entry, then for LangChain its llm_string), with the wrong-answer rate
where labels say the right answer. Money: the saved tokens at list price (pricing.py's table, with the
date it was taken), for the models the table knows.

The log is JSON lines ({"prompt": ..., "answer": <the right answer, optional>, "system": ...}) or a
text file with one prompt per line.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis

from ..errors import CacheopsError, UsageError
from ..pricing import PriceTable, load_prices
from ..semantic.labelled import LabelledPrompt
from .appcache import AppCache, failure_reason, is_fatal
from .appmodel import AppModel, load_embedding, prompt_string, resolve_model
from .playbook import LangchainExactTarget, LangchainSemanticTarget, Playbook, models_of
from .verify import same_answer

HIT, MISS, WRONG = "hit", "miss", "wrong_answer"
THRESHOLDS = (0.02, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4)


@dataclass
class LoggedPrompt:
    prompt: str
    answer: str | None = None  # the label: the right answer, if known
    system: str | None = None


def read_prompts(path: str | Path) -> Iterator[LoggedPrompt]:
    """JSON lines (a line starting with '{') or plain text, one prompt per line; file:line errors."""
    try:
        handle = Path(path).open(encoding="utf-8")  # noqa: SIM115 (closed by the with below)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            text = line.strip()
            if not text:
                continue
            if not text.startswith("{"):
                yield LoggedPrompt(text)
                continue
            try:
                doc = json.loads(text)
            except json.JSONDecodeError as exc:
                raise UsageError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
            prompt = doc.get("prompt")
            if not isinstance(prompt, str) or not prompt.strip():
                raise UsageError(f'{path}:{number}: give the prompt as {{"prompt": "...", "answer": "..."}}')
            answer, system = doc.get("answer"), doc.get("system")
            if answer is not None and not isinstance(answer, str):
                raise UsageError(f"{path}:{number}: answer must be a string")
            yield LoggedPrompt(prompt, answer, system if isinstance(system, str) else None)


@dataclass
class Replayed:
    cache: str
    model: str | None
    prompt: str
    result: str
    ms: float
    got: str | None = None
    expected: str | None = None
    tokens: int | None = None  # tokens the hit saves (the cached call's input + output)
    input_tokens: int | None = None  # of those, the prompt's (a price table prices them apart)
    output_tokens: int | None = None
    distance: float | None = None  # semantic: the nearest entry's distance (None: nothing near)
    nearest_answer: str | None = None

    def to_dict(self) -> dict:
        return {
            "cache": self.cache,
            "model": self.model,
            "prompt": self.prompt,
            "result": self.result,
            "lookup_ms": round(self.ms, 3),
            "got": self.got,
            "expected": self.expected,
            "tokens_saved": self.tokens,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "distance": self.distance,
        }


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


@dataclass
class CacheReplay:
    cache: str
    model: str | None
    threshold: float | None  # semantic: the cache's threshold
    results: list[Replayed] = field(default_factory=list)
    prices: PriceTable | None = None

    def money_saved(self) -> tuple[float | None, int]:
        """(money the hits save at list price, hits that could not be priced: no usage or unknown model)."""
        hits = [x for x in self.results if x.result in (HIT, WRONG)]
        total, unpriced = 0.0, 0
        for x in hits:
            cost = None
            if self.prices is not None and x.input_tokens is not None and x.output_tokens is not None:
                cost = self.prices.cost(x.model, x.input_tokens, x.output_tokens)
            if cost is None:
                unpriced += 1
            else:
                total += cost
        return (round(total, 9) if len(hits) > unpriced else None), unpriced

    def summary(self) -> dict:
        r = self.results
        hits = [x for x in r if x.result in (HIT, WRONG)]
        labelled_hits = [x for x in hits if x.expected is not None]
        latencies = [x.ms for x in r]
        out: dict[str, object] = {
            "cache": self.cache,
            "model": self.model,
            "lookups": len(r),
            "hits": len(hits),
            "hit_rate": round(len(hits) / len(r), 4) if r else None,
            "wrong_answers": sum(x.result == WRONG for x in r),
            "wrong_answer_rate": round(sum(x.result == WRONG for x in labelled_hits) / len(labelled_hits), 4)
            if labelled_hits
            else None,
            "lookup_ms_p50": _round(percentile(latencies, 0.5)),
            "lookup_ms_p95": _round(percentile(latencies, 0.95)),
            "tokens_saved": sum(x.tokens or 0 for x in hits),
            "input_tokens_saved": sum(x.input_tokens or 0 for x in hits),
            "output_tokens_saved": sum(x.output_tokens or 0 for x in hits),
            "hits_without_usage": sum(x.tokens is None for x in hits),
        }
        out["money_saved"], out["hits_not_priced"] = self.money_saved()
        if self.threshold is not None:
            out["threshold"] = self.threshold
            out["per_threshold"] = self.per_threshold()
        return out

    def per_threshold(self) -> list[dict]:
        """Hit and wrong-answer rates had the cache used another distance threshold."""
        rows = []
        for t in sorted({*THRESHOLDS, *([self.threshold] if self.threshold is not None else [])}):
            hits = [x for x in self.results if x.distance is not None and x.distance <= t]
            labelled = [x for x in hits if x.expected is not None]
            wrong = [x for x in labelled if not same_answer(x.expected, x.nearest_answer)]
            rows.append(
                {
                    "threshold": t,
                    "hits": len(hits),
                    "hit_rate": round(len(hits) / len(self.results), 4) if self.results else None,
                    "wrong_answers": len(wrong),
                    "wrong_answer_rate": round(len(wrong) / len(labelled), 4) if labelled else None,
                }
            )
        return rows


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


@dataclass
class ReplayReport:
    file: str
    prompts: int = 0
    caches: list[CacheReplay] = field(default_factory=list)
    prices: PriceTable | None = None

    def money(self) -> dict | None:
        if self.prices is None:
            return None
        saved = [c.money_saved()[0] for c in self.caches]
        known = [m for m in saved if m is not None]
        return {
            "saved": round(sum(known), 9) if known else None,
            "currency": self.prices.currency,
            "prices_taken": self.prices.taken,
        }

    def to_dict(self) -> dict:
        return {
            "file": self.file,
            "prompts": self.prompts,
            "money": self.money(),
            "caches": [c.summary() for c in self.caches],
            "lookups": [x.to_dict() for c in self.caches for x in c.results],
        }


def replay(
    client: redis.Redis, playbook: Playbook, playbook_path: str | Path, prompts_path: str | Path
) -> ReplayReport:
    """Look every logged prompt up in every cache of the playbook, as the app would; write nothing."""
    source = str(playbook_path)
    logged = list(read_prompts(prompts_path))  # a log of prompts to replay: held, it is read once per cache
    report = ReplayReport(str(prompts_path), len(logged), prices=load_prices())
    for target in playbook.warm.caches:
        models = [resolve_model(m, source) for m in models_of(playbook, target)]
        embedding = None if isinstance(target, LangchainExactTarget) else load_embedding(target.embedding, source)
        opener = AppCache(client, playbook, target, models, embedding)
        try:
            cache = opener.open_cache()
        except Exception as exc:
            if is_fatal(exc):
                raise
            raise CacheopsError(
                f"cache {target.display}: cannot open it as the app does: {failure_reason(exc)}"
            ) from None
        semantic = not isinstance(target, LangchainExactTarget)
        choices: list[AppModel | None] = [*models] or [None]
        for model in choices:
            threshold = getattr(target, "distance_threshold", None)  # semantic targets only
            run = CacheReplay(
                target.display,
                model.label if model else None,
                threshold if semantic else None,
                prices=report.prices,
            )
            report.caches.append(run)
            for item in logged:
                run.results.append(_one(opener, cache, model, item, semantic))
    return report


def _one(opener: AppCache, cache, model: AppModel | None, item: LoggedPrompt, semantic: bool) -> Replayed:
    label = model.label if model else None
    p = LabelledPrompt(prompt=item.prompt, answer=item.answer, system=item.system)
    if cache is None:  # a semantic cache whose index does not exist: every lookup misses
        return Replayed(opener.display, label, item.prompt, MISS, 0.0, expected=item.answer)
    started = time.perf_counter()
    generations, got = _lookup(opener, cache, model, p)
    ms = (time.perf_counter() - started) * 1000
    if got is None:
        result = MISS
    elif item.answer is not None and not same_answer(item.answer, got):
        result = WRONG
    else:
        result = HIT
    out = Replayed(opener.display, label, item.prompt, result, ms, got, item.answer, *_tokens(generations))
    if semantic:
        out.distance, out.nearest_answer = _nearest(opener, cache, model, p)
    return out


def _lookup(opener: AppCache, cache, model, p) -> tuple[list | None, str | None]:
    """The app's own lookup (verify's), keeping the generations for their usage metadata."""
    t = opener.target
    if isinstance(t, (LangchainExactTarget, LangchainSemanticTarget)):
        generations = cache.lookup(prompt_string(p.prompt, opener.system_of(p), model.chat), model.llm_string)
        return generations, (generations[0].text if generations else None)
    return None, opener.lookup(cache, model, p, p.prompt)


def _tokens(generations) -> tuple[int | None, int | None, int | None]:
    """(total, input, output) tokens of the cached call, from the message's usage metadata if stored."""
    usage = getattr(getattr(generations[0], "message", None), "usage_metadata", None) if generations else None
    if not usage:
        return None, None, None
    given, taken = int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
    total = usage.get("total_tokens")
    return (int(total) if total is not None else given + taken), given, taken


def _nearest(opener: AppCache, cache, model, p) -> tuple[float | None, str | None]:
    """The distance and answer of the entry the library would judge at any threshold: the one
    nearest entry (for LangChain: only if it is this model's, as its lookup then checks)."""
    t = opener.target
    widest = max(max(THRESHOLDS), t.distance_threshold)
    if isinstance(t, LangchainSemanticTarget):
        from langchain_core.load import loads

        text = prompt_string(p.prompt, opener.system_of(p), model.chat)
        hits = cache.cache.check(vector=cache.cache._vectorize_prompt(text), num_results=1, distance_threshold=widest)
        if not hits or (hits[0].get("metadata") or {}).get("llm_string") != model.llm_string:
            return None, None
        try:
            with warnings.catch_warnings():  # langchain-core marks loads() beta; the library itself calls it
                warnings.simplefilter("ignore")
                answer = loads(json.loads(hits[0]["response"])[0], allowed_objects="core").text
        except (ValueError, TypeError, KeyError, IndexError):
            answer = None
        return float(hits[0]["vector_distance"]), answer
    hits = cache.check(
        prompt=p.prompt, num_results=1, distance_threshold=widest, filter_expression=opener.filter_expression()
    )
    if not hits:
        return None, None
    return float(hits[0]["vector_distance"]), hits[0].get("response")
