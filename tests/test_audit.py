"""`cacheops audit` against a real LangChain RedisSemanticCache filled through a fake chat model, with
the real all-MiniLM-L6-v2 embeddings (the issue's measured collisions), and a RedisVL cache."""

from __future__ import annotations

import json

import pytest
import writers
import yaml
from writers import MINILM, langchain_semantic, minilm_embeddings

from cacheops.exit_codes import ExitCode
from cacheops.semantic.labelled import LabelledPrompt, LabelledSet, evaluate

HOURS, HOURS_ANSWER = "What are your business hours?", "Nine to five, Monday to Friday."
REFUND, CAPITAL, DATA = "Can I get a refund?", "What is the capital of France?", "Is my data shared with advertisers?"
PLAN3, PLAN4 = "What is the price of plan 3?", "What is the price of plan 4?"
QA = [
    (HOURS, HOURS_ANSWER),
    ("what are your business hours", HOURS_ANSWER),  # true paraphrases, same answer
    ("What are your opening hours?", HOURS_ANSWER),
    (REFUND, "Yes, within 30 days of purchase."),
    (CAPITAL, "Paris is the capital of France."),
    (DATA, "No, we never share your data."),
    (PLAN3, "Plan 3 costs $30 a month."),
    (PLAN4, "Plan 4 costs $40 a month."),
]
LABELS = {
    "prompts": [
        {
            "prompt": HOURS,
            "paraphrases": [
                "what are your business hours",
                "What are your business hours ?",
                "What are your opening hours?",
            ],
        },
        {"prompt": REFUND, "paraphrases": ["Could I get a refund?", "can i get a refund"]},
        {"prompt": CAPITAL, "paraphrases": ["What's the capital of France?"]},
        {"prompt": DATA, "paraphrases": ["is my data shared with advertisers"]},
    ]
}


def pairs_of(doc):
    return {frozenset((p["a"]["prompt"], p["b"]["prompt"])): p["distance"] for p in doc["worst_pairs"]}


def test_finds_the_issue_collisions_and_none_among_paraphrases(run, redis_url):
    # Filled with a near-zero threshold so every prompt is its own entry; audited at LangChain's default 0.2.
    langchain_semantic(redis_url, QA, embeddings=minilm_embeddings(), distance_threshold=0.0001)
    result = run("audit", "--embedding", MINILM, "--top", "100", "--json")
    assert result.exit_code == ExitCode.COLLISIONS_FOUND, result.output
    (cache,) = json.loads(result.output)["caches"]
    assert (cache["cache"], cache["library"], cache["entries"]) == ("llmcache", "langchain_semantic", len(QA))
    assert (cache["threshold"], cache["threshold_source"]) == (0.2, "langchain_semantic default")
    pairs = pairs_of(cache)
    # The issue's measured fact: the business-hours answer is served for unrelated questions ...
    for other in (REFUND, CAPITAL, DATA):
        assert pairs[frozenset((HOURS, other))] < 0.2
    # ... and plan 3 / plan 4 are almost the same vector: the worst pair.
    assert cache["worst_pairs"][0]["distance"] < 0.005
    assert frozenset((PLAN3, PLAN4)) == next(iter(pairs_of({"worst_pairs": cache["worst_pairs"][:1]})))
    # True paraphrases with the same answer are never reported.
    hours_group = {q for q, a in QA if a == HOURS_ANSWER}
    assert not [p for p in pairs if p <= hours_group]
    # 8 entries, 6 distinct answers: every pair with different answers is within 0.2 here.
    assert cache["colliding_pairs"] == 28 - 3
    assert cache["safe_threshold"] < cache["worst_pairs"][0]["distance"]
    # The wrapper explanation, with the same audit on the bare text: distances spread out.
    assert cache["wrapper_compresses"] is True
    bare = cache["bare_text"]
    assert bare["sample"] == len(QA) and bare["median_nn_bare"] > 3 * bare["median_nn_stored"]
    assert bare["collisions_bare"] < bare["collisions_stored"]
    # The two counts of colliding pairs agree: the --k nearest found them all (exact), and the
    # comparison line compares every pair of the same entries at the same threshold.
    assert cache["colliding_pairs_exact"] and bare["collisions_stored"] == cache["colliding_pairs"]
    result = run("audit", "--embedding", MINILM, "--top", "100", "--table")
    flat = " ".join(result.output.split())
    assert f"{cache['colliding_pairs']} colliding pairs" in flat
    assert f"collisions at 0.2: {cache['colliding_pairs']} vs {bare['collisions_bare']}" in flat
    assert sum(b["count"] for b in cache["nn_distances"]["bins"]) == len(QA)


def test_tolerance_gates_and_table_renders(run, redis_url):
    langchain_semantic(redis_url, QA[3:], embeddings=minilm_embeddings(), distance_threshold=0.0001)
    ok = run("audit", "--no-bare", "--max-collisions", "100", "--table")
    assert ok.exit_code == 0, ok.output
    flat = " ".join(ok.output.split())
    assert "colliding pairs" in flat and "worst pairs" in flat and "◀ threshold" in flat
    assert "serialised message list" in flat and "largest threshold with no collision" in flat
    strict = run("audit", "--no-bare", "--threshold", "0.001", "--json")
    assert strict.exit_code == 0 and json.loads(strict.output)["colliding_pairs"] == 0


def test_recommended_threshold_stops_wrong_answers_and_keeps_paraphrases(run, redis_url, tmp_path):
    from langchain_redis import RedisSemanticCache

    emb = minilm_embeddings()
    # The issue's app: default threshold 0.2, one cached FAQ answer served for unrelated questions.
    with writers.llm_cache(RedisSemanticCache(embeddings=emb, redis_url=redis_url)):
        chat = writers.demo_chat_model("gpt-4o-mini")
        chat.answer(HOURS, HOURS_ANSWER)
        for question in (REFUND, CAPITAL, DATA):
            assert chat.answer(question, "the right answer").content == HOURS_ANSWER
    labels = tmp_path / "labels.yaml"
    labels.write_text(yaml.safe_dump(LABELS))
    doc = run.json(
        "audit", "--cache", "llmcache", "--embedding", MINILM, "--labels", str(labels), "--min-precision", "1.0"
    )
    (cache,) = doc["caches"]
    lab = cache["labelled"]
    assert lab["at_recommended"]["precision"] == 1.0 and lab["at_recommended"]["recall"] == 1.0
    recommended = cache["recommended_threshold"]
    assert recommended == lab["recommended_threshold"] and 0 < recommended < 0.2
    at_default = next(p for p in lab["points"] if p["threshold"] == 0.2)
    assert at_default["precision"] < 1.0  # the default serves wrong answers on this set too
    # The same app with the recommended threshold: the wrong answers stop, the paraphrases still hit.
    with writers.llm_cache(RedisSemanticCache(embeddings=emb, redis_url=redis_url, distance_threshold=recommended)):
        chat = writers.demo_chat_model("gpt-4o-mini")
        for question in (REFUND, CAPITAL, DATA):
            assert chat.answer(question, f"right answer to {question}").content == f"right answer to {question}"
        for item in LABELS["prompts"]:
            expected = HOURS_ANSWER if item["prompt"] == HOURS else f"right answer to {item['prompt']}"
            for paraphrase in item["paraphrases"]:
                assert chat.answer(paraphrase, "MODEL CALLED").content == expected, paraphrase


def test_labelled_file_errors_name_the_line(run, tmp_path, client):
    bad = tmp_path / "labels.yaml"
    bad.write_text("prompts:\n  - prompt: Hi\n    paraphrases: oops-not-a-list\n")
    result = run("audit", "--labels", str(bad))
    assert result.exit_code == ExitCode.CONFIG
    assert f"{bad}:3: prompts.0.paraphrases:" in result.output and "Traceback" not in result.output
    bad.write_text("prompts:\n  - prompt: Hi\n    paraphrase: [x]\n")
    result = run("audit", "--labels", str(bad))
    assert result.exit_code == ExitCode.CONFIG and f"{bad}:3: prompts.0.paraphrase:" in result.output


def test_labels_need_the_model(run, redis_url, tmp_path):
    writers.redisvl_semantic(redis_url, [{"prompt": "a b c", "response": "x"}, {"prompt": "a b d", "response": "y"}])
    labels = tmp_path / "labels.yaml"
    labels.write_text(yaml.safe_dump(LABELS))
    result = run("audit", "--labels", str(labels))
    assert result.exit_code == ExitCode.CONFIG and "--embedding" in result.output


def test_redisvl_filters_scope_the_collisions(run, redis_url, tmp_path):
    # RedisVL apps filter lookups on their filter fields: same words for another user is no collision.
    entries = [
        {"prompt": "price of plan three", "response": "$30", "filters": {"user": "alice"}},
        {"prompt": "price of plan three", "response": "$99", "filters": {"user": "bob"}},
        {"prompt": "price of plan four", "response": "$40", "filters": {"user": "alice"}},
    ]
    writers.redisvl_semantic(redis_url, entries, name="tenants", filterable_fields=[{"name": "user", "type": "tag"}])
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"caches": {"tenants": {"distance_threshold": 1.5}}}))
    result = run("audit", "--cache", "tenants", "--json")
    (cache,) = json.loads(result.output)["caches"]
    assert cache["threshold_source"] == "config file" and cache["scopes"] == 2
    assert cache["colliding_pairs"] == 1 and result.exit_code == ExitCode.COLLISIONS_FOUND
    assert pairs_of(cache) and all("bob" not in str(p) for p in cache["worst_pairs"])
    assert {p["a"]["answer"] for p in cache["worst_pairs"]} | {p["b"]["answer"] for p in cache["worst_pairs"]} == {
        "$30",
        "$40",
    }


def test_no_collision_keeps_the_current_threshold_and_says_how_far_it_could_go(run, redis_url):
    """A cache with no colliding pair: the recommendation is its own threshold, and the larger
    'largest threshold with no collision' is explained, not recommended (issue 14, item 8)."""
    entries = [
        {"prompt": "opening hours of the shop", "response": "9-5"},
        {"prompt": "refund policy for annual plans", "response": "30 days"},
        {"prompt": "capital city of France", "response": "Paris"},
    ]
    writers.redisvl_semantic(redis_url, entries, name="faq")
    result = run("audit", "--cache", "faq", "--json")
    assert result.exit_code == 0, result.output
    (cache,) = json.loads(result.output)["caches"]
    assert cache["colliding_pairs"] == 0 and cache["threshold"] < cache["safe_threshold"]
    assert cache["recommended_threshold"] == cache["threshold"]
    because = cache["recommended_because"]
    assert because.startswith("the current one: no collision") and f"{cache['safe_threshold']:g}" in because
    assert "--labels" in because


def test_evaluate_and_recommend_without_a_model():
    import numpy as np

    vecs = {"a": [1, 0, 0], "a2": [0.99, 0.14, 0], "b": [0.9, 0.43, 0], "c": [0, 0, 1]}

    def embed(items):
        rows = np.array([vecs[t] for t, _ in items], dtype=np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    labelled = LabelledSet(
        prompts=[LabelledPrompt(prompt="a", paraphrases=["a2"]), LabelledPrompt(prompt="b"), LabelledPrompt(prompt="c")]
    )
    report = evaluate(labelled, embed, min_precision=1.0)
    d_a2 = 1 - float(embed([("a2", None)])[0] @ embed([("a", None)])[0])
    d_ab = 1 - float(embed([("b", None)])[0] @ embed([("a", None)])[0])
    assert d_a2 <= report.recommended < d_ab
    assert (report.at_recommended.precision, report.at_recommended.recall) == (1.0, 1.0)
    # Same answers make a landing on the other prompt right, not wrong.
    same = LabelledSet(prompts=[LabelledPrompt(prompt="a", answer="x"), LabelledPrompt(prompt="b", answer="x")])
    assert all(lk.right for lk in evaluate(same, embed).lookups)


def test_no_semantic_cache_is_not_found(run):
    result = run("audit", "--cache", "nope")
    assert result.exit_code == ExitCode.NOT_FOUND and "nope" in result.output
    result = run("audit")
    assert result.exit_code == ExitCode.NOT_FOUND and "no semantic cache" in result.output


def test_every_method_finds_the_same_pairs(run, redis_url):
    # The index's own KNN (one query per entry) and the all-pairs engines agree on the test caches.
    langchain_semantic(redis_url, QA, embeddings=minilm_embeddings(), distance_threshold=0.0001)
    entries = [
        {"prompt": "price of plan three", "response": "$30", "filters": {"user": "alice"}},
        {"prompt": "price of plan three", "response": "$99", "filters": {"user": "bob"}},
        {"prompt": "price of plan four", "response": "$40", "filters": {"user": "alice"}},
        {"prompt": "price of plan five", "response": "$50", "filters": {"user": "bob"}},
    ]
    writers.redisvl_semantic(redis_url, entries, name="tenants", filterable_fields=[{"name": "user", "type": "tag"}])
    found = {}
    for method in ("knn", "exact", "ivf", "auto"):
        result = run("audit", "--method", method, "--no-bare", "--threshold", "0.5", "--top", "100", "--json")
        assert result.exit_code == ExitCode.COLLISIONS_FOUND, result.output
        caches = json.loads(result.output)["caches"]
        found[method] = {
            c["cache"]: (c["colliding_pairs"], c["colliding_entries"], c["scopes"], pairs_of(c)) for c in caches
        }
        for c in caches:
            assert c["neighbour_search"]["method"] == (
                "knn" if method == "knn" else "ivf" if method == "ivf" else "exact"
            )
            if method == "ivf":
                assert c["neighbour_search"]["recall_at_k"] >= 0.99
    for method in ("exact", "ivf", "auto"):
        for cache, (pairs, entries, scopes, distances) in found["knn"].items():
            assert found[method][cache][:3] == (pairs, entries, scopes), (method, cache)
            # the server computes distances in its own float arithmetic: equal to float32 rounding
            assert found[method][cache][3] == pytest.approx(distances, abs=1e-5), (method, cache)
    assert found["exact"]["tenants"][0] == 2 and found["exact"]["llmcache"][0] > 0
