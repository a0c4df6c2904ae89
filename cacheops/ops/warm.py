"""Cache warming: write a playbook's curated answers into the caches the app reads, before it does.

Every entry is written by the cache library's own code, with the strings the app's own model
computes, so the app's next lookup is a hit:
  - prompt: langchain_core.load.dumps of the message list (system message first, if any) for a chat
    model, the raw text for a plain LLM (docs/layouts.md section 1);
  - llm_string: the app's model, built from the playbook (import path + kwargs, constructed and
    never called) -> model._get_llm_string(stop=...), or given verbatim;
  - write: RedisCache.update / RedisSemanticCache.update / SemanticCache.store, with the playbook's TTL.

Prompts without an answer are skipped, or with generate asked of the app's model the app's way:
set_llm_cache(cache) + model.invoke, so LangChain's own lookup/update writes the reply (and then
the entry must be where warm computed it, a check of the playbook's model settings).

A prompt already cached is left alone unless refresh: exact caches by their key (the library's own
_key), semantic caches by the library's own check() for the same prompt, which must return the very
entry this prompt would be stored as (and, for LangChain, the same llm_string). The checking cache
objects have no TTL, so check() does not slide any entry's expiry; the client is NO-TOUCH.

Tags (playbook=<name>, warm.tags, per-prompt tags) go where `evict --tag` reads them: RedisVL
filterable fields when the cache has a field of that name, else cacheops' tag hash beside the
entry (tags.py). A run that writes is recorded in the operations log (action "warm").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

from .. import faults
from ..errors import CacheopsError, NotOnCluster
from ..layouts import Context
from ..layouts.langchain_format import parse_llm_string
from ..server import permissions
from ..server.topology import has_search_coordinator, is_cluster, primary_nodes
from . import oplog
from .appcache import STANDARD_FIELDS, AppCache, failure_reason, is_fatal
from .appmodel import (
    AppModel,
    generations,
    load_embedding,
    prompt_string,
    resolve_model,
)
from .playbook import (
    LangchainExactTarget,
    LangchainSemanticTarget,
    Playbook,
    RedisvlSemanticTarget,
    models_of,
    playbook_name,
    ttl_of,
)
from .tagging import set_tags

WRITTEN, WOULD_WRITE, CACHED, SKIPPED, FAILED = "written", "would_write", "already_cached", "skipped", "failed"
NO_ANSWER = "no answer in the playbook (--generate asks the app's model for one)"
NO_MODEL_TO_ASK = "no answer in the playbook, and RedisVL SemanticCache has no model to ask"
NO_IMPORT_TO_ASK = "no answer in the playbook; --generate needs the model as an import, not an llm_string"
ASKS_MODEL = "would ask the model"
GENERATED = "answered by the model through the cache (--generate)"
KEEPS_OTHER_MODEL = (
    "kept another model's entry: this cache keys on the prompt only (--replace-other-models to replace it)"
)
# check() returns the nearest entries; the prompt's own entry is at distance 0, so a few suffice
# even when other entries embed identically.
CHECK_RESULTS = 10
CHECK_MIN_THRESHOLD = 0.01


@dataclass
class EntryOutcome:
    cache: str
    model: str | None
    prompt: str
    status: str
    key: str | None = None
    reason: str | None = None

    def to_dict(self) -> dict:
        return {
            "cache": self.cache,
            "model": self.model,
            "prompt": self.prompt,
            "status": self.status,
            "key": self.key,
            "reason": self.reason,
        }


@dataclass
class CacheOutcome:
    cache: str
    type: str
    models: list[str]
    ttl: int | None
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys((WRITTEN, WOULD_WRITE, CACHED, SKIPPED, FAILED), 0)
    )
    error: str | None = None  # the cache could not be opened: every prompt failed for this reason
    # caches that key on the prompt only: entries of other models replaced (or, in a dry run, that
    # would be), by the model whose entry it was
    replaced: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict:
        return {
            "cache": self.cache,
            "type": self.type,
            "models": self.models,
            "ttl": self.ttl,
            **self.counts,
            "replaced_other_models": dict(self.replaced),
            "error": self.error,
        }


@dataclass
class WarmReport:
    playbook: str
    file: str
    dry_run: bool
    refresh: bool
    generate: bool = False
    caches: list[CacheOutcome] = field(default_factory=list)
    entries: list[EntryOutcome] = field(default_factory=list)
    event_id: str | None = None

    def add(self, outcome: CacheOutcome, entry: EntryOutcome) -> None:
        outcome.counts[entry.status] += 1
        self.entries.append(entry)

    @property
    def totals(self) -> dict[str, int]:
        out = dict.fromkeys((WRITTEN, WOULD_WRITE, CACHED, SKIPPED, FAILED), 0)
        for c in self.caches:
            for k, v in c.counts.items():
                out[k] += v
        return out

    @property
    def failed(self) -> int:
        return self.totals[FAILED]

    @property
    def replaced(self) -> int:
        return sum(sum(c.replaced.values()) for c in self.caches)

    def to_dict(self) -> dict:
        return {
            "playbook": self.playbook,
            "file": self.file,
            "dry_run": self.dry_run,
            "refresh": self.refresh,
            "generate": self.generate,
            "totals": {**self.totals, "replaced_other_models": self.replaced},
            "caches": [c.to_dict() for c in self.caches],
            "entries": [e.to_dict() for e in self.entries],
            "event": self.event_id,
        }


# -- the run ------------------------------------------------------------------------------------------


def warm(
    client: redis.Redis,
    playbook: Playbook,
    path: str | Path,
    refresh: bool = False,
    dry_run: bool = False,
    generate: bool = False,
    replace_other_models: bool = False,
    ask: Callable[[str], bool] | None = None,
) -> WarmReport:
    """Write every prompt's answer into every cache of the playbook (see the module docstring).
    generate: prompts without an answer are asked of the app's model through the cache.
    A cache that keys on the prompt only (langchain-redis RedisSemanticCache) holds one model's
    entry per prompt: another model's entry is replaced with replace_other_models, or if ask(question)
    says yes (asked once per cache), and otherwise kept (the prompt is skipped, with the reason)."""
    source = str(path)
    name = playbook_name(playbook, path)
    report = WarmReport(name, source, dry_run, refresh, generate)
    base_tags = {"playbook": name, **playbook.warm.tags}
    # Resolve every model and embedding before writing anything: a bad import stops the run clean.
    models = {id(t): [resolve_model(m, source) for m in models_of(playbook, t)] for t in playbook.warm.caches}
    embeddings = {
        id(t): load_embedding(t.embedding, source)
        for t in playbook.warm.caches
        if not isinstance(t, LangchainExactTarget)
    }
    selectors = {"playbook": name, "file": source, "refresh": refresh, "generate": generate}
    actor = oplog.whoami(client)
    started_id = None
    if not dry_run:
        for target in playbook.warm.caches:
            needs = ["json"] if isinstance(target, LangchainExactTarget) else []
            permissions.require(client, "warm", [*needs, "hash", "expire", "oplog"], under=f"{target.display}:")
        started_id = oplog.begin(client, "warm", actor, selectors)
    for target in playbook.warm.caches:
        run = TargetRun(
            client,
            playbook,
            target,
            models[id(target)],
            embeddings.get(id(target)),
            base_tags,
            report,
            refresh,
            dry_run,
            generate,
            replace_other_models,
            ask,
        )
        run.go()
    if started_id is not None:
        totals = report.totals
        report.event_id = oplog.record(
            client,
            "warm",
            actor,
            selectors,
            {
                "written": totals[WRITTEN],
                "already_cached": totals[CACHED],
                "skipped": totals[SKIPPED],
                "failed": totals[FAILED],
                "replaced_other_models": report.replaced,
            },
            None,
            {"caches": [c.to_dict() for c in report.caches]},
            started=started_id,
        )
    return report


class TargetRun(AppCache):
    """One cache of the playbook: open it with the library, then check and write each prompt."""

    def __init__(
        self,
        client,
        playbook: Playbook,
        target,
        models: list[AppModel],
        embedding,
        base_tags: dict,
        report: WarmReport,
        refresh: bool,
        dry_run: bool,
        generate: bool = False,
        replace_other_models: bool = False,
        ask: Callable[[str], bool] | None = None,
    ):
        super().__init__(client, playbook, target, models, embedding)
        self.base_tags, self.report = base_tags, report
        self.refresh, self.dry_run, self.generate = refresh, dry_run, generate
        # None until decided: the flag decides at once; ask() once, at the first replacement
        self.replace_ok: bool | None = True if replace_other_models else None
        self.ask_to_replace = ask
        self.ttl = ttl_of(playbook, target)
        self.outcome = CacheOutcome(target.display, target.type, [m.label for m in models], self.ttl)
        report.caches.append(self.outcome)
        self._context: Context | None = None

    def tags_of(self, prompt) -> dict[str, str]:
        return {**self.base_tags, **prompt.tags}

    def record(self, model: str | None, prompt: str, status: str, key=None, reason=None) -> None:
        self.report.add(
            self.outcome,
            EntryOutcome(
                self.outcome.cache, model, prompt, status, key.decode() if isinstance(key, bytes) else key, reason
            ),
        )

    def go(self) -> None:
        try:
            opened = self.open()
        except Exception as exc:
            if is_fatal(exc):
                raise
            self.outcome.error = failure_reason(exc)
            for model in self.models_or_none:
                for p in self.playbook.prompts:
                    self.record(model.label if model else None, p.prompt, FAILED, reason=self.outcome.error)
            return
        if opened is not None and isinstance(self.target, LangchainSemanticTarget):
            self.outcome.cache = opened.cache.index.name  # the name langchain-redis gave the index
        for model in self.models_or_none:
            for p in self.playbook.prompts:
                try:
                    self.one(opened, model, p)
                except Exception as exc:
                    if is_fatal(exc):
                        raise
                    self.record(model.label if model else None, p.prompt, FAILED, reason=failure_reason(exc))

    # -- opening the cache with its library -----------------------------------------------------
    def open(self):
        if not isinstance(self.target, LangchainExactTarget) and not self.semantic_lookups_see_every_shard():
            raise NotOnCluster(
                "no search coordinator on this Redis Cluster: the app's semantic lookups search one shard's "
                "index, so warmed entries stored on the other shards would never be hit (see docs/cluster.md)"
            )
        # a dry run never creates a missing index (opening would): every prompt would be written
        return self.open_cache(exact_ttl=self.ttl, create=not self.dry_run)

    def semantic_lookups_see_every_shard(self) -> bool:
        return not is_cluster(self.client) or has_search_coordinator(primary_nodes(self.client)[0].client)

    def one(self, cache, model: AppModel | None, p) -> None:
        label = model.label if model else None
        if p.answer is None and not self.generate:
            self.record(label, p.prompt, SKIPPED, reason=NO_ANSWER)
            return
        if p.answer is None and (model is None or model.model is None):
            self.record(label, p.prompt, SKIPPED, reason=NO_MODEL_TO_ASK if model is None else NO_IMPORT_TO_ASK)
            return
        key, cached, other_model = self.check(cache, model, p)
        note = None
        if other_model is not None:  # a dry run does not ask: it counts what a run could replace
            if not self.dry_run and not self.may_replace(label, other_model, p.prompt):
                self.record(label, p.prompt, SKIPPED, key, KEEPS_OTHER_MODEL)
                return
            self.outcome.replaced[other_model] += 1
            note = (
                "would replace another model's entry (asked first, or --replace-other-models)"
                if self.dry_run
                else "replaced another model's entry (this cache keys on the prompt only)"
            )
        if cached and (not self.refresh or p.answer is None):
            # --refresh does not re-ask a model: that costs a call; evict the entry to regenerate it
            self.record(
                label,
                p.prompt,
                CACHED,
                key,
                None
                if p.answer is not None or not self.refresh
                else "--refresh does not ask the model again; evict the entry to regenerate it",
            )
        elif self.dry_run:
            self.record(label, p.prompt, WOULD_WRITE, key, note or (ASKS_MODEL if p.answer is None else None))
        elif p.answer is None:
            assert model is not None  # checked above: no model to ask is a skip
            self.ask(cache, model, p, key)
            if not self.check(cache, model, p)[1]:
                raise CacheopsError(
                    f"nothing was cached under {key}: a nearby entry answered the lookup, or the "
                    f"playbook's model settings differ from what the model computed"
                )
            self.tag(cache, key, p)
            self.record(label, p.prompt, WRITTEN, key, GENERATED)
        else:
            key = self.write(cache, model, p) or key
            self.tag(cache, key, p)
            self.record(label, p.prompt, WRITTEN, key, note)
            faults.reached("warm.written")

    def may_replace(self, label: str | None, other_model: str, prompt: str) -> bool:
        if self.replace_ok is None:
            ask = self.ask_to_replace
            self.replace_ok = ask is not None and ask(
                f"{self.outcome.cache} keys on the prompt only: writing {label}'s answer to {prompt!r} "
                f"replaces {other_model}'s entry. Replace other models' entries in {self.outcome.cache}?"
            )
        return self.replace_ok

    # -- per cache type: (key, cached?, the model whose entry it would replace) and the write ---------
    def check(self, cache, model: AppModel | None, p) -> tuple[str, bool, str | None]:
        from redisvl.redis.utils import hashify

        t = self.target
        if isinstance(t, LangchainExactTarget):
            assert model is not None  # the playbook requires a model for LangChain caches
            prompt = prompt_string(p.prompt, self.system_of(p), model.chat)
            key = cache._key(prompt, model.llm_string)  # the library's own key for (prompt, llm_string)
            return key, bool(self.client.exists(key)), None
        if isinstance(t, LangchainSemanticTarget):
            assert model is not None  # the playbook requires a model for LangChain caches
            prompt = prompt_string(p.prompt, self.system_of(p), model.chat)
            if cache is None:  # dry run, the index does not exist yet
                return f"{t.display}:{hashify(prompt)}", False, None
            key = cache.cache.index.key(hashify(prompt))  # RedisVL's entry id for a prompt without filters
            hits = cache.cache.check(prompt=prompt, num_results=CHECK_RESULTS, distance_threshold=self.check_threshold)
            mine = [h for h in hits if h.get("key") == key]
            cached = any((h.get("metadata") or {}).get("llm_string") == model.llm_string for h in mine)
            # The entry id is the prompt's alone: another model's entry for it is replaced, as by the app.
            other = None
            if mine and not cached:
                llm_string = (mine[0].get("metadata") or {}).get("llm_string") or ""
                other = parse_llm_string(llm_string)[0] or "another model"
            return key, cached, other
        filters, _ = self.split_tags(cache, p)
        if cache is None:
            return f"{t.name}:{hashify(p.prompt, filters or None)}", False, None
        key = cache.index.key(hashify(p.prompt, filters or None))  # what store() will name it
        hits = cache.check(prompt=p.prompt, num_results=CHECK_RESULTS, distance_threshold=self.check_threshold)
        return key, any(h.get("key") == key for h in hits), None

    @property
    def check_threshold(self) -> float:
        # The prompt's own entry is at distance ~0 (float noise, or a remote model's jitter): a cache
        # threshold of 0 (exact only) must still find it.
        return max(self.target.distance_threshold, CHECK_MIN_THRESHOLD)

    def split_tags(self, cache, p) -> tuple[dict, dict]:
        """RedisVL: (filters = the target's filters + tags that are filterable fields, the other tags)."""
        t: RedisvlSemanticTarget = self.target
        tags = self.tags_of(p)
        fields = (
            (set(cache.return_fields) - STANDARD_FIELDS)
            if cache is not None
            else {f["name"] for f in (t.filterable_fields or [])}
        )
        return (
            {**t.filters, **{k: v for k, v in tags.items() if k in fields}},
            {k: v for k, v in tags.items() if k not in fields},
        )

    def write(self, cache, model: AppModel | None, p) -> str | None:
        t = self.target
        if isinstance(t, LangchainExactTarget):
            assert model is not None  # the playbook requires a model for LangChain caches
            cache.update(
                prompt_string(p.prompt, self.system_of(p), model.chat),
                model.llm_string,
                generations(p.answer, model.chat),
            )
            return None
        if isinstance(t, LangchainSemanticTarget):
            assert model is not None  # the playbook requires a model for LangChain caches
            cache.cache.set_ttl(self.ttl)
            try:
                cache.update(
                    prompt_string(p.prompt, self.system_of(p), model.chat),
                    model.llm_string,
                    generations(p.answer, model.chat),
                )
            finally:
                cache.cache.set_ttl(None)
            return None
        filters, _ = self.split_tags(cache, p)
        return cache.store(p.prompt, p.answer, metadata=t.metadata or None, filters=filters or None, ttl=self.ttl)

    def ask(self, cache, model: AppModel, p, key: str) -> None:
        """The app's path: the model answers through the cache (set_llm_cache), which stores the reply."""
        from langchain_core.globals import get_llm_cache, set_llm_cache
        from langchain_core.messages import HumanMessage, SystemMessage

        system = self.system_of(p)
        messages = ([SystemMessage(content=system)] if system is not None else []) + [HumanMessage(content=p.prompt)]
        semantic = isinstance(self.target, LangchainSemanticTarget)
        before = get_llm_cache()
        set_llm_cache(cache)
        if semantic:
            cache.cache.set_ttl(self.ttl)
        try:
            assert model.model is not None  # checked in one(): only imported models are asked
            model.model.invoke(messages if model.chat else (p.prompt if system is None else messages), stop=model.stop)
        finally:
            set_llm_cache(before)
            if semantic:
                cache.cache.set_ttl(None)

    def tag(self, cache, key, p) -> None:
        """The prompt's tags beside the entry; for RedisVL only those that are no field of the cache."""
        tags = self.split_tags(cache, p)[1] if isinstance(self.target, RedisvlSemanticTarget) else self.tags_of(p)
        if not tags:
            return
        if self._context is None:  # built once the cache (and its index) exists, so its entries classify
            from ..inspect.catalog import build_context

            self._context = build_context(self.client, learn=False)
        set_tags(self.client, key, tags, context=self._context, check_permissions=False)


def describe(report: WarmReport) -> str:
    """One line for logs: the totals."""
    t = report.totals
    written = f"{t[WOULD_WRITE]} would be written" if report.dry_run else f"{t[WRITTEN]} written"
    replaced = ""
    if report.replaced:
        replaced = f" ({report.replaced} {'would replace' if report.dry_run else 'replacing'} another model's entry)"
    return (
        f"playbook {report.playbook}: {written}{replaced}, {t[CACHED]} already cached, {t[SKIPPED]} skipped, "
        f"{t[FAILED]} failed"
    )
