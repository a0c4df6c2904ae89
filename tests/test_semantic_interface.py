"""Semantic knowledge lives behind the layout interface (layouts/base.SemanticLayout): a semantic cache
library added in one file is picked up by the neighbour search, the wrong-answer audit and
migrate-embeddings with no other change, and LiteLLM's semantic cache works through the same interface.

The toy library is RedisVL's real SemanticCache with a tag field of its own and prompts stored with a
prefix its app adds before embedding; its layout is a module written into a temp directory and
registered the way a new layout is (layouts.register), then removed again."""

from __future__ import annotations

import importlib.util
import json
import textwrap

import pytest
from writers import MINILM

from cacheops.exit_codes import ExitCode
from cacheops.inspect.catalog import build_context
from cacheops.layouts import BY_ID, unregister
from cacheops.ops import migrate
from cacheops.semantic.audit import AuditOptions, run_audit
from cacheops.semantic.neighbours import iter_nearest, semantic_caches, similar_to_text
from cacheops.semantic.vectorizers import load_vectorizer

TOY_LAYOUT = '''
from cacheops.layouts import register
from cacheops.layouts.redisvl_semantic import RedisVLSemanticLayout


class ToySemanticLayout(RedisVLSemanticLayout):
    """ToyCache: a RedisVL SemanticCache whose app embeds "toy: " + the question, scoped by tenant."""

    id = "toy_semantic"
    library = "ToyCache"
    default_threshold = 0.15
    scope = "toy_tenant"
    warm_type = None

    def claims(self, fields, meta):
        return self._required <= fields.keys() and b"toy_tenant" in fields

    def embedded_text(self, text, system=None, chat=True):
        return "toy: " + text

    def lookup_scope(self, entry):
        return ("tenant", entry.tags.get("toy_tenant"))

    def app_settings(self, name, embedding, filterable):
        return f'ToyCache(name="{name}", model=<{embedding}>)'


register(ToySemanticLayout(), before="redisvl_semantic")
'''

HOURS = "What are your business hours?"
TOY = [  # (question, answer, tenant)
    (HOURS, "Nine to five.", "a"),
    ("what are your business hours", "Closed today.", "a"),  # a paraphrase with another answer: collision
    ("what are your business hours", "Nine to five.", "b"),  # another tenant: never served to tenant a
    ("Can I get a refund?", "Yes, within 30 days.", "a"),
]


@pytest.fixture
def toy_layout(tmp_path):
    path = tmp_path / "toy_semantic.py"
    path.write_text(textwrap.dedent(TOY_LAYOUT))
    spec = importlib.util.spec_from_file_location("toy_semantic", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        yield BY_ID["toy_semantic"]
    finally:
        unregister("toy_semantic")


def toy_cache(url: str):
    from redisvl.extensions.cache.llm import SemanticCache

    cache = SemanticCache(
        name="toycache",
        redis_url=url,
        vectorizer=load_vectorizer(MINILM),
        filterable_fields=[{"name": "toy_tenant", "type": "tag"}],
    )
    for question, answer, tenant in TOY:
        cache.store(prompt="toy: " + question, response=answer, filters={"toy_tenant": tenant})
    return cache


def test_a_new_semantic_layout_in_one_file_is_used_by_neighbours_audit_and_migrate(client, redis_url, toy_layout):
    toy_cache(redis_url)
    ctx = build_context(client)
    (sc,) = semantic_caches(client, ctx, "toycache")
    assert sc.layout == "toy_semantic" and sc.semantic is toy_layout

    # neighbours: the query is embedded the toy way ("toy: " + text), so the stored entry is at distance 0
    found = similar_to_text(client, ctx, HOURS, 0.01, cache="toycache", embedding=MINILM)
    assert found[0].entry.layout == "toy_semantic" and found[0].entry.answer == "Nine to five."
    assert found[0].distance < 1e-5
    lists = list(iter_nearest(client, ctx, "toycache", k=3))
    assert len(lists) == len(TOY)

    # audit: the toy default threshold, and collisions only within one tenant
    (audit,) = run_audit(client, ctx, AuditOptions(cache="toycache")).caches
    assert (audit.library, audit.threshold, audit.threshold_source) == ("toy_semantic", 0.15, "toy_semantic default")
    assert audit.entries == len(TOY) and audit.scopes == 2
    assert audit.colliding_pairs == 1
    (pair,) = audit.worst
    assert {pair.a.answer, pair.b.answer} == {"Nine to five.", "Closed today."}
    assert pair.a.tags == pair.b.tags == {"toy_tenant": "a"}

    # migrate-embeddings: the toy entries are copied under the target with their ids and tenants
    plan = migrate.plan(client, "toycache", MINILM, target="toy-v2", ctx=ctx)
    assert (plan.layout, plan.library, plan.filterable_fields) == ("toy_semantic", "ToyCache", ["toy_tenant"])
    assert migrate.app_settings(plan) == f'ToyCache(name="toy-v2", model=<{MINILM}>)'
    result = migrate.execute(client, plan, ctx=ctx)
    assert result.migrated == len(TOY) and result.not_entries == 0
    copied = [e for e in semantic_caches(client, build_context(client), "toy-v2")]
    assert copied[0].layout == "toy_semantic"
    assert sorted(client.hget(k, "toy_tenant") for k in client.scan_iter("toy-v2:*")) == [b"a", b"a", b"a", b"b"]


def test_without_the_layout_the_toy_entries_are_plain_redisvl(client, redis_url):
    toy_cache(redis_url)
    (sc,) = semantic_caches(client, build_context(client), "toycache")
    assert sc.layout == "redisvl_semantic"


LITELLM_CALLS = [
    ("What is the capital of France?", "Paris."),
    ("Do you have a mobile app?", "Yes, for iOS and Android."),
    ("Is there an API?", "Yes, a REST API."),
]


def test_litellm_semantic_cache_works_through_the_interface(run, client, redis_url, venv_writers):
    venv_writers["litellm"](
        redis_url,
        "semantic",
        calls=[{"messages": [{"role": "user", "content": q}], "answer": a} for q, a in LITELLM_CALLS],
    )
    ctx = build_context(client)
    (sc,) = semantic_caches(client, ctx, "litellm_semantic_cache_index")
    assert sc.layout == "litellm_semantic"
    # LiteLLM embeds the messages' contents concatenated: the stored prompt itself
    assert sc.semantic.embedded_text("hi", "be terse") == "be tersehi"
    lists = list(iter_nearest(client, ctx, "litellm_semantic_cache_index", k=2))
    assert sorted(nl.entry.answer for nl in lists) == sorted(a for _, a in LITELLM_CALLS)

    # LiteLLM has no default threshold (the app must set similarity_threshold): the audit asks for one
    bad = run("audit", "--cache", "litellm_semantic_cache_index")
    assert bad.exit_code != 0 and "--threshold" in bad.output
    found = run("audit", "--cache", "litellm_semantic_cache_index", "--threshold", "2", "--json")
    assert found.exit_code == ExitCode.COLLISIONS_FOUND, found.output
    (audit,) = json.loads(found.output)["caches"]
    assert audit["library"] == "litellm_semantic" and audit["entries"] == len(LITELLM_CALLS)
    assert audit["scopes"] == 1  # one model, so one litellm_cache_key
    assert audit["colliding_pairs"] == 3  # threshold 2 (the whole cosine range): every pair collides

    plan = migrate.plan(client, "litellm_semantic_cache_index", MINILM, ctx=ctx)
    assert plan.layout == "litellm_semantic" and plan.filterable_fields == ["litellm_cache_key"]
    assert "redis_semantic_cache_index_name" in migrate.app_settings(plan)
    result = migrate.execute(client, plan, ctx=ctx)
    assert result.migrated == len(LITELLM_CALLS)
    rows = run.json_lines("scan", "--cache", plan.target)
    assert {r["layout"] for r in rows} == {"litellm_semantic"} and len(rows) == len(LITELLM_CALLS)


def test_warm_type_is_the_playbook_target_that_writes_the_library():
    """A layout's warm_type names the playbook `type:` whose target writes its caches through the
    library (ops/playbook.py); each target type is exactly one layout's, so the two cannot drift."""
    from typing import get_args

    from cacheops.layouts import LAYOUTS
    from cacheops.ops.playbook import CacheTarget

    (targets, _field) = get_args(CacheTarget)
    target_types = {get_args(t.model_fields["type"].annotation)[0] for t in get_args(targets)}
    warm_types = [layout.warm_type for layout in LAYOUTS if layout.warm_type is not None]
    assert sorted(warm_types) == sorted(target_types)
    assert all(BY_ID[t].warm_type == t for t in target_types)  # each the id of the layout it writes
