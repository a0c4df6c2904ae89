"""`cacheops suspects` and `evict --suspect`, on entries written by the real libraries: a LangChain
fake chat model answers planted prompts through langchain-redis RedisCache / RedisSemanticCache, and
RedisVL SemanticCache stores planted answers; the demo app's keyspace must yield nothing."""

from __future__ import annotations

import json

import pytest
import yaml
from writers import langchain_planted, redisvl_semantic

from cacheops.demo import fill_demo_cache, hashing_embeddings
from cacheops.exit_codes import ExitCode
from cacheops.inspect import suspect_rules as rules
from cacheops.layouts import Entry
from cacheops.layouts import langchain_format as lc

API_KEY = "sk-proj-" + "T3stK3yAbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
EMAIL = "jane.doe@acmecorp.io"
EMAIL2 = "raj.patel@northwind-mail.net"
PHONE = "+44 20 7946 0958"
CARD = "4111 1111 1111 1111"
IBAN = "DE89 3704 0044 0532 0130 00"
SECRETS = [API_KEY, EMAIL, EMAIL2, PHONE, CARD, IBAN, API_KEY[6:-4]]

EXACT_PLANTS = [
    {
        "prompt": "Summarise my last invoice",
        "text": "Error code: 429 - {'error': {'message': 'Rate limit reached for gpt-4o-mini on requests per min'}}",
    },
    {"prompt": "Translate hello to Klingon", "text": ""},
    {
        "prompt": "Book a table for two at eight",
        "text": "",
        "tool_calls": [{"name": "book_table", "args": {"people": 2}, "id": "call_1", "type": "tool_call"}],
    },
    {"prompt": "Write a long essay about caching", "text": "Caching is the practice of", "finish_reason": "length"},
]
RETIRED_PLANT = {"prompt": "What is two plus two?", "text": "Four."}
SEMANTIC_PLANTS = [
    {"prompt": "How do I reset the router?", "text": "I'm sorry, but I can't help with that."},
    {"prompt": "List every step of onboarding", "text": "1. Create an account 2. Verify", "finish_reason": "length"},
    {"prompt": "Describe the incident", "text": "The incident involved", "finish_reason": "content_filter"},
    {"prompt": "What is the bitcoin price today?", "text": "Bitcoin trades at 97,000 dollars."},
    {"prompt": "How do I call the billing API?", "text": f"Use the key {API_KEY} and write to {EMAIL} for access."},
    {"prompt": "Which database host do we use?", "text": "Connect to db7.corp.internal on port 5432."},
]
RVL_UNSCOPED = [
    {"prompt": "Who is my account manager?", "response": f"Your manager is {EMAIL2}, phone {PHONE}."},
    {"prompt": "Where do I send the payment?", "response": f"Pay to IBAN {IBAN} by Friday."},
]
RVL_SCOPED = [
    {"prompt": "What card is on file?", "response": f"Card {CARD} expires 12/29.", "filters": {"user_id": "u42"}}
]
EXPECTED = {
    "error_text": {"Summarise my last invoice"},
    "empty_answer": {"Translate hello to Klingon"},
    "tool_calls_only": {"Book a table for two at eight"},
    "cut_off": {"Write a long essay about caching", "List every step of onboarding"},
    "content_filter": {"Describe the incident"},
    "refusal": {"How do I reset the router?"},
    "time_sensitive": {"What is the bitcoin price today?"},
    "secret": {"How do I call the billing API?"},
    "personal_data": {
        "How do I call the billing API?",
        "Who is my account manager?",
        "Where do I send the payment?",
        "What card is on file?",
    },
    "stale": {"What is two plus two?"},
    "internal-host": {"Which database host do we use?"},
}
CONFIG = {
    "suspects": {
        "retired_models": ["gpt-3.5-turbo"],
        "rules": [{"name": "internal-host", "pattern": r"\b[a-z0-9-]+\.corp\.internal\b", "severity": "high"}],
    }
}


def plant(url: str) -> None:
    from langchain_redis import RedisCache, RedisSemanticCache

    langchain_planted(RedisCache(redis_url=url, prefix="risky"), EXACT_PLANTS)
    langchain_planted(RedisCache(redis_url=url, prefix="risky"), [RETIRED_PLANT], model="gpt-3.5-turbo")
    semantic = RedisSemanticCache(
        embeddings=hashing_embeddings(), redis_url=url, name="risky_sem", distance_threshold=0.01
    )
    langchain_planted(semantic, SEMANTIC_PLANTS)
    redisvl_semantic(url, RVL_UNSCOPED, name="risky_vl")
    redisvl_semantic(url, RVL_SCOPED, name="tenant_vl", filterable_fields=[{"name": "user_id", "type": "tag"}])


EXACT_PROMPTS = {lc.md5_hex(lc.chat_prompt(p["prompt"])): p["prompt"] for p in [*EXACT_PLANTS, RETIRED_PLANT]}


def ident(detail: dict) -> str:
    """The planted prompt of a detail: stored by semantic caches, the md5 key segment of exact ones."""
    if detail["prompt"] is not None:
        return detail["prompt"]
    return EXACT_PROMPTS.get(detail["key"][-65:-33], detail["key"])


def reported(doc: dict) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for d in doc["details"]:
        out.setdefault(d["rule"], set()).add(ident(d))
    return out


@pytest.fixture
def config(tmp_path):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(CONFIG))


def cache_keys(client) -> set[bytes]:
    """Every key but cacheops' own (the operations log stream the eviction appends to)."""
    return {k for k in client.scan_iter(count=1000) if not k.startswith(b"cacheops:")}


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, secret


def test_every_plant_is_reported_under_its_rule_and_no_demo_entry_is(run, redis_url, client, config):
    fill_demo_cache(redis_url)
    demo_only = run.json("suspects")
    assert demo_only["summary"] == [] and demo_only["details"] == []
    assert demo_only["entries"] > 100
    assert run("suspects", "--fail-on", "info").exit_code == 0
    plant(redis_url)
    doc = run.json("suspects")
    assert reported(doc) == EXPECTED  # every plant under its rule; no demo entry anywhere
    by_rule = {s["rule"]: s for s in doc["summary"]}
    assert {rule: s["entries"] for rule, s in by_rule.items()} == {r: len(p) for r, p in EXPECTED.items()}
    # a secret in a semantic cache no user field scopes is a cross-user leak risk: raised a step
    secret = next(d for d in doc["details"] if d["rule"] == "secret")
    assert secret["leak_risk"] and secret["severity"] == "critical" and "openai_key" in secret["why"]
    card = next(d for d in doc["details"] if d["prompt"] == "What card is on file?")
    assert not card["leak_risk"] and card["severity"] == "medium"
    assert by_rule["personal_data"]["leak_risk"] == 3
    assert doc["worst_severity"] == "critical"
    # the evidence marks the match; secrets show first and last characters only
    assert "«sk-p…89»" in secret["evidence"]
    error = next(d for d in doc["details"] if d["rule"] == "error_text")
    assert error["evidence"].startswith("«Error code:»") and error["ttl_seconds"] is None
    assert next(d for d in doc["details"] if d["rule"] == "time_sensitive")["evidence"].count("«") == 1
    assert_no_secret(json.dumps(doc))
    table = run("suspects", "--table")
    assert table.exit_code == 0 and "internal-host" in table.output and "leak risk" in table.output
    assert table.output.index("worst example") < table.output.index("details")  # the summary, then the details
    assert_no_secret(table.output)
    # the gate, and narrowing by rule / category / cache
    assert run("suspects", "--fail-on", "high").exit_code == ExitCode.SUSPECTS_FOUND
    assert run("suspects", "--rule", "refusal", "--fail-on", "high").exit_code == 0
    assert set(reported(run.json("suspects", "--rule", "secrets"))) == {"secret", "personal_data"}
    only_vl = run.json("suspects", "--cache", "risky_vl")
    assert {d["cache"] for d in only_vl["details"]} == {"risky_vl"}


def test_before_marks_older_entries_stale(run, redis_url, client):
    redisvl_semantic(redis_url, RVL_SCOPED, name="tenant_vl", filterable_fields=[{"name": "user_id", "type": "tag"}])
    assert run.json("suspects", "--rule", "stale", "--before", "2000-01-01")["suspects"] == 0
    doc = run.json("suspects", "--rule", "stale", "--before", "2100-01-01")
    assert [d["prompt"] for d in doc["details"]] == ["What card is on file?"]
    assert "before 2100-01-01" in doc["details"][0]["why"]


def test_evict_suspect_removes_exactly_what_the_rule_reports_and_restore_returns_it(
    run, redis_url, client, config, tmp_path
):
    fill_demo_cache(redis_url)
    plant(redis_url)
    for rule in ("secret", "error_text"):
        keys = {d["key"] for d in run.json("suspects", "--rule", rule)["details"]}
        before = cache_keys(client)
        preview = run("evict", "--suspect", rule, "--dry-run")
        assert (
            preview.exit_code == 0
            and f"{len(keys)} {'entry' if len(keys) == 1 else 'entries'} selected" in preview.output
        )
        assert_no_secret(preview.output)
        result = run("evict", "--suspect", rule, "--yes", "--json", "--backup", str(tmp_path / f"{rule}.jsonl"))
        assert result.exit_code == 0, result.output
        assert_no_secret(result.output)
        doc = json.loads(result.output)
        assert doc["result"]["deleted"] == len(keys) and doc["preview"]["selectors"] == {"suspect": rule}
        after = cache_keys(client)
        assert {k.decode() for k in before - after} == keys and after <= before
        assert run.json("suspects", "--rule", rule)["details"] == []
        assert run.json("restore", doc["result"]["backup"])["restored"] == len(keys)
        assert cache_keys(client) == before
        assert {d["key"] for d in run.json("suspects", "--rule", rule)["details"]} == keys
    history = run("history", "--json")
    assert history.exit_code == 0 and '"suspect"' in history.output
    assert_no_secret(history.output)
    # the operations log itself, as stored (every field of every event), not only as history shows it
    events = client.xrange("cacheops:oplog")
    assert len(events) == 8  # two evictions, two restores: each a started event, then its result
    assert_no_secret(repr(events))


def test_bad_input_is_one_line_and_a_documented_code(run, client, tmp_path, monkeypatch):
    for args in (
        ["suspects", "--rule", "nosuch"],
        ["suspects", "--before", "1/11/2026"],
        ["evict", "--suspect", "stale"],
    ):
        result = run(*args)
        assert result.exit_code == ExitCode.USAGE, args
        assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1, result.output
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"suspects": {"rules": [{"name": "x", "pattern": "(oops"}]}}))
    result = run("suspects")
    assert result.exit_code == ExitCode.CONFIG and "suspects.rules.0.pattern" in result.output
    (tmp_path / "config.yaml").write_text(
        yaml.safe_dump({"suspects": {"rules": [{"name": "refusal", "pattern": "x"}]}})
    )
    assert run("suspects").exit_code == ExitCode.CONFIG


# -- the rules on their own (no Redis) -----------------------------------------------------------------


def entry(answer: str, prompt: str | None = "q", kind: str = "exact", ttl_ms: int | None = None) -> Entry:
    e = Entry("k", "langchain_exact", "lib", kind, "c", prompt=prompt, answer=answer)
    e.ttl_ms = ttl_ms
    return e


def findings(answer: str, prompt: str | None = "q", **kw) -> set[str]:
    return {f.rule for f in rules.RuleSet().check(entry(answer, prompt, **kw))}


@pytest.mark.parametrize(
    "answer",
    [
        "Rate limits are 1,000 requests per minute per workspace.",
        "A 502 Bad Gateway means the upstream server failed; retry with backoff.",
        "We accept Visa, Mastercard, American Express and PayPal.",
        "Email support@example.com or use the chat in the app.",
        "Encrypted at rest (AES-256) and in transit (TLS 1.3). Order 1234567890123 shipped.",
        "Set OPENAI_API_KEY in your environment; see https://platform.openai.com/docs for the sk- prefix.",
        "Connect with redis://user:<password>@host:6379 or redis://:${REDIS_PASSWORD}@host.",
        "I am sorry to hear that. Here is how to fix it: open Settings.",
        "Error 404 means the page was not found; Error handling is covered in chapter 3.",
        "Exception handling: wrap the call in try/except.",
        "Clone git@github.com:acme/app.git, then see desk-organisation-management-software-guide.",
        "Yes, within 30 days of purchase. Call 2026-11-01 the cut-off.",
    ],
)
def test_ordinary_answers_are_not_suspects(answer):
    assert findings(answer, ttl_ms=3_600_000) == set()


@pytest.mark.parametrize(
    ("answer", "rule", "kind"),
    [
        ("Traceback (most recent call last):\n  File ...", "error_text", None),
        ("<!DOCTYPE html><html><title>503 Service Unavailable</title>", "error_text", None),
        ("openai.RateLimitError: Error code: 429", "error_text", None),
        ("Error 500 - upstream failed", "error_text", None),
        ("ValueError: invalid literal", "error_text", None),
        ("Request timed out.", "error_text", None),
        ("504 Gateway Time-out", "error_text", None),
        ("I can\u2019t help with that request.", "refusal", None),
        ("As an AI language model, I cannot browse.", "refusal", None),
        ("   \n", "empty_answer", None),
        ("key AKIAIOSFODNN7EXAMPLE", "secret", "aws_access_key"),
        ("token ghp_" + "a" * 36, "secret", "github_token"),
        ("key sk-ant-api03-" + "b" * 40, "secret", "anthropic_key"),
        ("key AIza" + "c" * 35, "secret", "google_api_key"),
        ("slack xoxb-1234567890-abcdefghij", "secret", "slack_token"),
        ("stripe sk_live_" + "d" * 24, "secret", "stripe_key"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "secret", "private_key"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N", "secret", "jwt"),
        ("use postgres://admin:hunter2@db.internal:5432/app", "secret", "password_in_url"),
        ("Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345", "secret", "bearer_token"),
        ("card 5555-5555-5555-4444", "personal_data", "payment_card"),
        ("call (415) 555-2671 today", "personal_data", "phone"),
        ("IBAN GB82 WEST 1234 5698 7654 32", "personal_data", "iban"),
    ],
)
def test_each_kind_is_found(answer, rule, kind):
    found = rules.RuleSet().check(entry(answer, ttl_ms=1000))
    assert rule in {f.rule for f in found}
    if kind:
        assert kind in next(f.why for f in found if f.rule == rule)


def test_checksums_and_masking():
    assert rules.card_number("4111 1111 1111 1111") and not rules.card_number("4111 1111 1111 1112")
    assert not rules.card_number("1733130000000")  # a millisecond timestamp: no issuer starts with 1
    assert rules.iban_ok("DE89370400440532013000") and not rules.iban_ok("DE89370400440532013001")
    assert rules.mask(API_KEY) == "sk-p…89" and rules.mask("hunter2") == "h…2"
    text = f"key {API_KEY} mail {EMAIL} end"
    spans = rules.sensitive_spans(text)
    out = rules.excerpt(text, spans[0], spans)
    assert out == "key «sk-p…89» mail j…o end" and API_KEY not in out
    assert findings("Answer.", prompt="What's the weather in Paris right now?") == {"time_sensitive"}
    assert findings("Answer.", prompt="What's the weather in Paris?", ttl_ms=600_000) == set()
    # the volatile TTL (1 hour by default, the seed tutorial's table): longer is reported, up to it is not
    assert findings("Answer.", prompt="What's the weather in Paris?", ttl_ms=3_600_000) == set()
    assert findings("Answer.", prompt="What's the weather in Paris?", ttl_ms=7_200_000) == {"time_sensitive"}
    for prompt in ("Latest news?", "What is the current AAPL stock price?", "What's the date?", "Rates now?"):
        assert findings("Answer.", prompt=prompt) == {"time_sensitive"}, prompt


def test_stop_reasons_of_each_shape():
    openai_like = {"choices": [{"finish_reason": "length", "message": {"content": "partial"}}]}
    anthropic_like = {"text": "partial", "response_metadata": {"stop_reason": "max_tokens"}}
    gemini_like = {"text": "", "generation_info": {"finish_reason": "SAFETY"}}
    tool_call = {"text": "", "tool_calls": [{"name": "search", "args": {}}]}
    for gens, expected in (
        ([openai_like], {"cut_off"}),
        ([anthropic_like], {"cut_off"}),
        ([gemini_like], {"content_filter", "empty_answer"}),
        ([tool_call], {"tool_calls_only"}),
        ([{"text": "fine", "response_metadata": {"finish_reason": "stop"}}], set()),
    ):
        e = entry("".join(g.get("text", "partial") for g in gens), ttl_ms=1000)
        e.generations = gens
        assert {f.rule for f in rules.RuleSet().check(e)} == expected, gens


def test_limit_bounds_details_not_counts_and_config_declares_scope(run, redis_url, client, tmp_path):
    redisvl_semantic(redis_url, RVL_UNSCOPED, name="risky_vl")
    doc = run.json("suspects", "--rule", "personal_data", "--limit", "1")
    assert doc["summary"][0]["entries"] == 2 and doc["summary"][0]["leak_risk"] == 2 and len(doc["details"]) == 1
    # the app filters this cache by user in code: the config says so, and it is no longer a leak risk
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"caches": {"risky_vl": {"user_scoped": True}}}))
    scoped = run.json("suspects", "--rule", "personal_data")
    assert scoped["summary"][0]["leak_risk"] == 0 and {d["severity"] for d in scoped["details"]} == {"medium"}


def test_custom_secret_rule_matches_are_masked(run, redis_url, client, tmp_path):
    rule = {"name": "employee-id", "pattern": r"EMP-\d{6}", "fields": ["answer"], "severity": "high", "secret": True}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"suspects": {"rules": [rule]}}))
    redisvl_semantic(redis_url, [{"prompt": "Who approved it?", "response": "Approved by EMP-123456."}], name="hr")
    result = run("suspects", "--json", "--fail-on", "high")
    assert result.exit_code == ExitCode.SUSPECTS_FOUND
    doc = json.loads(result.output)
    assert [d["rule"] for d in doc["details"]] == ["employee-id"]
    assert "EMP-123456" not in result.output and "«E…6»" in doc["details"][0]["evidence"]


def test_secrets_in_the_prompt_are_reported_and_masked_everywhere(run, redis_url, client, tmp_path):
    """Secrets and personal data in a prompt (a user pasted them): reported, and masked in the prompt
    column, the evidence, the table, the eviction preview and the operations log."""
    password_url = "postgres://admin:Tr0ub4dor3xyz@db.acme.io:5432/app"
    prompts = [
        {"prompt": f"Why is {API_KEY} rejected?", "response": "Rotate the key in the dashboard."},
        {"prompt": f"Cannot connect with {password_url}", "response": "Check the host."},
        {"prompt": f"Email {EMAIL} my invoice", "response": "Sent."},
    ]
    redisvl_semantic(redis_url, prompts, name="pasted")
    secrets = [API_KEY, API_KEY[6:-4], "Tr0ub4dor3xyz", EMAIL]
    result = run("suspects", "--json")
    doc = json.loads(result.output)
    found = {(d["rule"], d["evidence_field"]) for d in doc["details"]}
    assert found == {("secret", "prompt"), ("personal_data", "prompt")}
    assert doc["suspects"] == 3
    for d in doc["details"]:
        assert "«" in d["evidence"] and d["leak_risk"]
    table = run("suspects", "--table")
    preview = run("evict", "--suspect", "secrets", "--dry-run")
    assert preview.exit_code == 0 and "3 entries selected" in preview.output
    evicted = run("evict", "--suspect", "secrets", "--yes", "--json", "--backup", str(tmp_path / "b.jsonl"))
    assert json.loads(evicted.output)["result"]["deleted"] == 3
    log = repr(client.xrange("cacheops:oplog"))
    for text in (result.output, table.output, preview.output, evicted.output, log):
        for secret in secrets:
            assert secret not in text, secret
