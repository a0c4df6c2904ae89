"""`cacheops warm`: entries written by the cache libraries are hits for the app's own lookups.

The "app" here is the real thing: a LangChain chat model (demo_chat_model, whose own response is
"-", never the warmed answer) with set_llm_cache(RedisCache / RedisSemanticCache), and RedisVL's
SemanticCache.check. A warmed answer coming back, with the model's response list untouched, proves
the lookup hit the warmed entry and the model was not called.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import writers
import yaml
from langchain_core.messages import HumanMessage, SystemMessage

from cacheops.demo import SYSTEM_PROMPT, demo_chat_model, fill_demo_cache, hashing_embeddings
from cacheops.exit_codes import ExitCode
from cacheops.layouts import langchain_format as lc

HASHING = {"import": "cacheops.demo:hashing_embeddings", "kwargs": {"dims": 64}}
MODEL = {"import": "cacheops.demo:demo_chat_model", "kwargs": {"model_name": "gpt-4o-mini"}}
PROMPTS = [
    {
        "prompt": "What are your business hours?",
        "answer": "Nine to five, Monday to Friday.",
        "paraphrases": ["When are you open?"],
        "tags": {"topic": "hours"},
    },
    {"prompt": "Can I get a refund?", "answer": "Within 30 days, from Billing."},
    {"prompt": "Say hello", "answer": "Bonjour!", "system": "You answer in French."},
]


def write_playbook(tmp_path: Path, caches: list[dict], prompts=PROMPTS, **warm) -> str:
    doc = {
        "prompts": prompts,
        "warm": {"name": "onboarding", "tags": {"source": "warmup"}, "models": [MODEL], "caches": caches, **warm},
    }
    path = tmp_path / "playbook.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


def app_asks(cache, question, model_name: str = "gpt-4o-mini"):
    """The app: a chat model whose own answer is '-', asking through the cache. (answer, model calls)."""
    chat = demo_chat_model(model_name)
    with writers.llm_cache(cache):
        answer = chat.invoke(question).content
    return answer, chat.i


def warm_json(run, path: str, *flags: str, code: int = 0) -> dict:
    result = run("warm", path, "--json", *flags)
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def test_exact_cache_warm_is_a_hit_for_the_app(run, redis_url, client, tmp_path):
    from langchain_redis import RedisCache

    path = write_playbook(tmp_path, [{"type": "langchain_exact", "prefix": "app:exact", "ttl": 600}])
    doc = warm_json(run, path)
    assert doc["totals"]["written"] == 3 and doc["totals"]["failed"] == 0
    cache = RedisCache(redis_url=redis_url, prefix="app:exact")
    assert app_asks(cache, "What are your business hours?") == ("Nine to five, Monday to Friday.", 0)
    # the system message is part of the key, as the app sends it
    assert app_asks(cache, [SystemMessage("You answer in French."), HumanMessage("Say hello")]) == ("Bonjour!", 0)
    assert app_asks(cache, "Say hello")[0] == "-"  # without it: another question, a miss
    assert app_asks(cache, "Can I get a refund?", model_name="gpt-4o")[0] == "-"  # another model: a miss
    # the TTL and the tags beside the entry (expiring with it)
    key = (
        f"app:exact:{lc.md5_hex(lc.chat_prompt('What are your business hours?'))}:"
        f"{lc.md5_hex(demo_chat_model('gpt-4o-mini')._get_llm_string())}"
    )
    assert 590 <= client.ttl(key) <= 600
    assert client.hgetall(b"cacheops:tags:" + key.encode()) == {
        b"playbook": b"onboarding",
        b"source": b"warmup",
        b"topic": b"hours",
    }
    assert 590 <= client.ttl(b"cacheops:tags:" + key.encode()) <= 600
    # `cacheops show` (and scan) recognise what warm wrote
    assert run("show", key).exit_code == 0


def test_second_run_writes_nothing_and_refresh_rewrites(run, redis_url, client, tmp_path):
    # threshold 0 (exact matches only): the check still finds the prompt's own entry
    path = write_playbook(
        tmp_path,
        [{"type": "langchain_exact"}, {"type": "langchain_semantic", "embedding": HASHING, "distance_threshold": 0}],
    )
    assert warm_json(run, path)["totals"]["written"] == 6
    before = {k: client.dump(k) for k in client.scan_iter(match="redis:*")}
    doc = warm_json(run, path)
    assert doc["totals"] == {
        "written": 0,
        "would_write": 0,
        "already_cached": 6,
        "skipped": 0,
        "failed": 0,
        "replaced_other_models": 0,
    }
    assert {k: client.dump(k) for k in client.scan_iter(match="redis:*")} == before
    assert warm_json(run, path, "--refresh")["totals"]["written"] == 6
    # every warm run that writes is in the operations log
    events = run.json_lines("history", "--action", "warm")
    assert [e["counts"]["written"] for e in events] == [6, 0, 6]
    assert events[0]["selectors"]["playbook"] == "onboarding"


def test_dry_run_writes_nothing(run, client, tmp_path):
    path = write_playbook(
        tmp_path,
        [
            {"type": "langchain_exact"},
            {"type": "langchain_semantic", "embedding": HASHING},
            {"type": "redisvl_semantic", "name": "faq_cache", "embedding": HASHING},
        ],
    )
    doc = warm_json(run, path, "--dry-run")
    assert doc["dry_run"] and doc["totals"]["would_write"] == 9 and doc["totals"]["written"] == 0
    assert client.dbsize() == 0 and client.execute_command("FT._LIST") == []  # not even an index
    assert all(e["key"] for e in doc["entries"])
    # after a real run, the dry run sees every entry cached
    warm_json(run, path)
    assert warm_json(run, path, "--dry-run")["totals"]["already_cached"] == 9


def test_semantic_warm_is_a_hit_for_the_app_and_its_paraphrases(run, redis_url, client, tmp_path):
    from langchain_redis import RedisSemanticCache

    path = write_playbook(
        tmp_path,
        [
            {
                "type": "langchain_semantic",
                "name": "semcache",
                "embedding": HASHING,
                "ttl": 3600,
                "distance_threshold": 0.05,
            }
        ],
    )
    doc = warm_json(run, path)
    assert doc["caches"][0]["cache"] == "semcache" and doc["totals"]["written"] == 3
    cache = RedisSemanticCache(
        embeddings=hashing_embeddings(64), redis_url=redis_url, name="semcache", distance_threshold=0.05
    )
    assert app_asks(cache, "What are your business hours?") == ("Nine to five, Monday to Friday.", 0)
    # a paraphrase with the same words (the hashing embedding is a bag of words): a semantic hit
    assert app_asks(cache, "what are your BUSINESS hours") == ("Nine to five, Monday to Friday.", 0)
    assert app_asks(cache, [SystemMessage("You answer in French."), HumanMessage("Say hello")]) == ("Bonjour!", 0)
    key = f"semcache:{lc.sha256_hex(lc.chat_prompt('Can I get a refund?'))}"
    assert 3500 < client.ttl(key) <= 3600
    assert client.hget(b"cacheops:tags:" + key.encode(), "playbook") == b"onboarding"


def test_redisvl_semantic_cache_with_filterable_fields(run, redis_url, client, tmp_path):
    from redisvl.extensions.cache.llm import SemanticCache
    from redisvl.query.filter import Tag
    from redisvl.utils.vectorize import CustomVectorizer

    fields = [{"name": "playbook", "type": "tag"}, {"name": "tier", "type": "tag"}]
    # the app created the cache already: warm learns its filterable fields from the index
    app = SemanticCache(
        name="support",
        redis_url=redis_url,
        filterable_fields=fields,
        vectorizer=CustomVectorizer(embed=hashing_embeddings(64).embed_query),
    )
    app.store("Is there an API?", "Yes.", filters={"tier": "free", "playbook": "none"})
    path = write_playbook(
        tmp_path,
        [
            {
                "type": "redisvl_semantic",
                "name": "support",
                "embedding": HASHING,
                "ttl": 120,
                "filters": {"tier": "pro"},
                "metadata": {"source": "faq"},
            }
        ],
    )
    doc = warm_json(run, path)
    assert doc["totals"]["written"] == 3 and doc["caches"][0]["models"] == []
    hits = app.check(
        "Can I get a refund?", filter_expression=(Tag("playbook") == "onboarding") & (Tag("tier") == "pro")
    )
    assert hits and hits[0]["response"] == "Within 30 days, from Billing." and hits[0]["metadata"] == {"source": "faq"}
    assert 100 < client.ttl(hits[0]["key"]) <= 120
    # tags that are no field of the cache live beside the entry
    assert client.hgetall(b"cacheops:tags:" + hits[0]["key"].encode()) == {b"source": b"warmup"}
    assert warm_json(run, path)["totals"]["already_cached"] == 3
    # filters must name fields of the cache: the cache fails, nothing is written, exit 8
    bad = write_playbook(
        tmp_path, [{"type": "redisvl_semantic", "name": "support", "embedding": HASHING, "filters": {"region": "eu"}}]
    )
    doc = warm_json(run, bad, code=ExitCode.PROBLEMS_FOUND)
    assert doc["totals"]["failed"] == 3 and "region" in doc["caches"][0]["error"]


def test_evict_by_playbook_tag_removes_warmed_entries_only(run, redis_url, client, tmp_path):
    writers.langchain_exact(redis_url, [("What is the capital of France?", "Paris.")])  # the app's own entry
    path = write_playbook(tmp_path, [{"type": "langchain_exact"}, {"type": "langchain_semantic", "embedding": HASHING}])
    warm_json(run, path)
    result = run("evict", "--tag", "playbook=onboarding", "--yes", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["result"]["deleted"] == 6
    left = {k.decode() for k in client.scan_iter(match="redis:*")}
    assert left == {
        f"redis:{lc.md5_hex(lc.chat_prompt('What is the capital of France?'))}:"
        f"{lc.md5_hex(demo_chat_model('gpt-4o-mini')._get_llm_string())}"
    }
    assert not list(client.scan_iter(match="llmcache:*")) and not list(client.scan_iter(match="cacheops:tags:*"))


def test_verbatim_llm_string_and_prompts_without_answers(run, redis_url, tmp_path):
    from langchain_redis import RedisCache

    llm_string = demo_chat_model("claude-3-5-haiku", temperature=0.7)._get_llm_string()
    prompts = PROMPTS + [{"prompt": "What is new this week?"}]
    path = write_playbook(tmp_path, [{"type": "langchain_exact"}], prompts=prompts, models=[{"llm_string": llm_string}])
    doc = warm_json(run, path)
    assert doc["totals"]["written"] == 3 and doc["totals"]["skipped"] == 1
    assert doc["caches"][0]["models"] == ["claude-3-5-haiku"]
    skipped = [e for e in doc["entries"] if e["status"] == "skipped"]
    assert skipped[0]["prompt"] == "What is new this week?" and "no answer" in skipped[0]["reason"]
    chat = demo_chat_model("claude-3-5-haiku", temperature=0.7)
    with writers.llm_cache(RedisCache(redis_url=redis_url)):
        assert chat.invoke("Can I get a refund?").content == "Within 30 days, from Billing." and chat.i == 0


def test_a_cache_that_cannot_be_opened_fails_with_exit_8(run, redis_url, client, tmp_path):
    writers.redisvl_semantic(redis_url, [{"prompt": "hi", "response": "hello"}], name="dims64")
    path = write_playbook(
        tmp_path,
        [
            {"type": "redisvl_semantic", "name": "dims64", "embedding": {**HASHING, "kwargs": {"dims": 32}}},
            {"type": "langchain_exact"},
        ],
    )
    result = run("warm", path, "--table")
    assert result.exit_code == ExitCode.PROBLEMS_FOUND, result.output
    assert "dims64: cannot open the cache" in result.output and "schema does not match" in result.output
    assert len(list(client.scan_iter(match="redis:*"))) == 3  # the other cache was still warmed


@pytest.mark.parametrize(
    "text, needle",
    [
        ("prompts: [{prompt: a, answer: b}]\nwarm:\n  caches:\n  - {type: langchain_exact\n", ":5: not valid YAML"),
        (
            "prompts:\n- prompt: a\n  answer: b\nwarm:\n  models: [{import: cacheops.demo:demo_chat_model}]\n"
            "  caches:\n  - type: langchain_semantic\n    name: x\n",
            ":7: warm.caches.0.langchain_semantic.embedding: Field required",
        ),
        ("prompts:\n- prompt: a\nwarm:\n  caches:\n  - type: memcached\n", ":5: warm.caches.0"),
        (
            "prompts:\n- prompt: a\nwarm:\n  caches:\n  - type: langchain_exact\n",
            ":5: warm.caches: Value error, cache 'redis' (langchain_exact) needs a model",
        ),
        (
            "prompts:\n- prompt: a\nwarm:\n  models:\n  - import: not an import\n  caches: [{type: langchain_exact}]\n",
            ":5: warm.models.0",
        ),
        ("prompts:\n- prompt: a\n", "warm: Field required"),
        (
            "prompts:\n- prompt: a\nwarm:\n  caches:\n  - type: redisvl_semantic\n    embedding: minilm\n",
            ":6: warm.caches.0.redisvl_semantic.embedding: Value error, 'minilm' is neither a vectorizer SPEC",
        ),
        (
            "prompts:\n- prompt: a\n  tags: {bad name: x}\nwarm:\n  caches: [{type: langchain_exact}]\n",
            ":3: prompts.0.tags: Value error, tag name 'bad name'",
        ),
    ],
)
def test_bad_playbook_is_one_line_with_file_and_line_exit_9(run, tmp_path, text, needle):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = run("warm", str(path))
    assert result.exit_code == ExitCode.CONFIG, result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and str(path) in lines[0] and needle in lines[0], result.output
    assert "Traceback" not in result.output


def test_unimportable_model_is_a_config_error(run, client, tmp_path):
    path = write_playbook(
        tmp_path, [{"type": "langchain_exact"}], models=[{"import": "no_such_package.models:Chat", "kwargs": {}}]
    )
    result = run("warm", path)
    assert result.exit_code == ExitCode.CONFIG and "cannot import no_such_package.models" in result.output
    assert client.dbsize() == 0


def test_shipped_faq_playbook_warms_the_demo_caches(run, redis_url, client):
    from langchain_redis import RedisCache, RedisSemanticCache
    from redisvl.extensions.cache.llm import SemanticCache
    from redisvl.query.filter import Tag
    from redisvl.utils.vectorize import CustomVectorizer

    faq = str(Path(__file__).parent.parent / "playbooks" / "faq.yaml")
    doc = warm_json(run, faq)
    assert doc["totals"]["failed"] == 0 and doc["totals"]["written"] == 27 * 6
    assert [c["cache"] for c in doc["caches"]] == ["redis", "support:exact", "llmcache", "support_cache"]
    q, a = "What are your business hours?", "We are open 9am to 5pm, Monday to Friday."
    # the demo app's caches, constructed as cacheops/demo.py constructs them
    assert app_asks(RedisCache(redis_url=redis_url), q, "claude-3-5-haiku") == (a, 0)
    assert app_asks(
        RedisCache(redis_url=redis_url, prefix="support:exact", ttl=3600),
        [SystemMessage(SYSTEM_PROMPT), HumanMessage(q)],
    ) == (a, 0)
    semantic = RedisSemanticCache(
        embeddings=hashing_embeddings(256), redis_url=redis_url, ttl=86400, distance_threshold=0.1
    )
    assert app_asks(semantic, q) == (a, 0)
    rvl = SemanticCache(
        name="support_cache",
        redis_url=redis_url,
        ttl=7 * 86400,
        vectorizer=CustomVectorizer(embed=hashing_embeddings(256).embed_query),
        filterable_fields=[{"name": "tier", "type": "tag"}, {"name": "model", "type": "tag"}],
    )
    assert rvl.check(q, filter_expression=Tag("tier") == "pro")[0]["response"] == a
    # the demo app itself still runs against the warmed caches (same schemas), and a warm after it
    # finds its exact entries cached
    fill_demo_cache(redis_url)
    doc = warm_json(run, faq)
    assert doc["totals"]["failed"] == 0
    assert {c["cache"]: c["already_cached"] for c in doc["caches"]}["redis"] == 81


def test_generate_asks_the_model_through_the_cache(run, redis_url, client, tmp_path):
    """--generate: prompts without an answer are answered by the app's model, the app's way
    (set_llm_cache + invoke), and land where the app looks them up."""
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from langchain_redis import RedisCache

    model = {
        "import": "langchain_core.language_models.fake_chat_models:FakeListChatModel",
        "kwargs": {"responses": ["Generated reply."]},
        "label": "fake",
    }
    prompts = [{"prompt": "What is new this week?", "system": "Be brief."}, {"prompt": "Hi", "answer": "Hello."}]
    path = write_playbook(
        tmp_path,
        [{"type": "langchain_exact", "ttl": 300}, {"type": "redisvl_semantic", "name": "rvl", "embedding": HASHING}],
        prompts=prompts,
        models=[model],
    )
    assert warm_json(run, path)["totals"]["skipped"] == 2  # without --generate: skipped, nothing asked
    assert warm_json(run, path, "--generate", "--dry-run")["entries"][0]["reason"] == "would ask the model"
    doc = warm_json(run, path, "--generate")
    by_cache = {c["cache"]: c for c in doc["caches"]}
    assert by_cache["redis"]["written"] == 1 and by_cache["redis"]["already_cached"] == 1
    assert (
        by_cache["rvl"]["skipped"] == 1
        and "no model to ask"
        in [e["reason"] for e in doc["entries"] if e["cache"] == "rvl" and e["status"] == "skipped"][0]
    )
    app = FakeListChatModel(responses=["Generated reply."])
    with writers.llm_cache(RedisCache(redis_url=redis_url)):
        assert (
            app.invoke([SystemMessage("Be brief."), HumanMessage("What is new this week?")]).content
            == "Generated reply."
        )
    assert app.i == 0  # a cache hit: the app's model was not called
    key = (
        f"redis:{lc.md5_hex(lc.chat_prompt('What is new this week?', 'Be brief.'))}:{lc.md5_hex(app._get_llm_string())}"
    )
    assert 290 < client.ttl(key) <= 300 and client.hget(b"cacheops:tags:" + key.encode(), "playbook") == b"onboarding"
    assert warm_json(run, path, "--generate")["caches"][0]["already_cached"] == 2


def test_replacing_another_models_entry_is_counted_and_asked_or_flagged(run, redis_url, client, tmp_path, monkeypatch):
    """RedisSemanticCache keys on the prompt only: warming gpt-4o-mini's answer replaces gpt-4o's
    entry for the same prompt. Off a terminal that is skipped unless --replace-other-models; on a
    terminal it is asked once per cache; either way the report says how many of which model."""
    from langchain_redis import RedisSemanticCache

    import cacheops.cli.app as cli_app

    emb = hashing_embeddings(64)
    cache = RedisSemanticCache(embeddings=emb, redis_url=redis_url, distance_threshold=0.01)
    with writers.llm_cache(cache):
        demo_chat_model("gpt-4o").answer("Can I get a refund?", "Ask gpt-4o's billing team.")
    path = write_playbook(tmp_path, [{"type": "langchain_semantic", "embedding": HASHING, "distance_threshold": 0}])

    dry = warm_json(run, path, "--dry-run")
    assert dry["totals"]["replaced_other_models"] == 1 and dry["caches"][0]["replaced_other_models"] == {"gpt-4o": 1}

    kept = warm_json(run, path)  # off a terminal, no flag: gpt-4o's entry stays
    (skipped,) = [e for e in kept["entries"] if e["status"] == "skipped"]
    assert skipped["prompt"] == "Can I get a refund?" and "--replace-other-models" in skipped["reason"]
    assert kept["totals"]["replaced_other_models"] == 0
    assert app_asks(cache, "Can I get a refund?", model_name="gpt-4o") == ("Ask gpt-4o's billing team.", 0)

    monkeypatch.setattr(cli_app, "interactive", lambda: True)
    result = run("warm", path, "--table", input="n\n")  # asked, declined: still kept
    assert result.exit_code == 0 and "Replace other models' entries" in result.output
    assert app_asks(cache, "Can I get a refund?", model_name="gpt-4o")[0] == "Ask gpt-4o's billing team."
    result = run("warm", path, "--table", input="y\n")
    assert result.exit_code == 0 and "replaced 1 entry of other models (1 of gpt-4o)" in result.output
    assert app_asks(cache, "Can I get a refund?") == ("Within 30 days, from Billing.", 0)
