"""`cacheops expire`: bulk TTL changes on exactly the selected entries, backed up, undone by restore,
and never over a TTL the app set meanwhile. Entries are written by the real libraries."""

from __future__ import annotations

import json

import writers

from cacheops.exit_codes import ExitCode
from cacheops.ops import expire as expire_lib
from cacheops.ops.backup import server_time_ms
from cacheops.ops.selection import Selection
from cacheops.ownkeys import tag_key

DAY = 86400


def fill(url: str) -> None:
    writers.langchain_exact(url, [("q1?", "a1"), ("q2?", "a2")], prefix="short", ttl=600)
    writers.langchain_exact(url, [("q3?", "a3"), ("q4?", "a4")], prefix="forever")
    writers.redisvl_semantic(
        url,
        [
            {"prompt": "news today", "response": "rain", "filters": {"topic": "news"}, "ttl": 30 * DAY},
            {"prompt": "opening hours", "response": "9-5", "filters": {"topic": "faq"}, "ttl": 3600},
            {"prompt": "refunds", "response": "30 days", "filters": {"topic": "faq"}},
        ],
        name="support",
        filterable_fields=[{"name": "topic", "type": "tag"}],
    )


def expiries(client) -> dict[bytes, int]:
    """Every key's absolute expiry (ms; -1 none), but the operations log's stream."""
    return {k: client.execute_command("PEXPIRETIME", k) for k in client.scan_iter(count=1000) if k != b"cacheops:oplog"}


def entry_keys(client, prefix: str) -> list[bytes]:
    return sorted(client.scan_iter(match=f"{prefix}:*", count=1000))


def changed(before: dict, after: dict) -> set[bytes]:
    return {k for k in before if after.get(k) != before[k]}


def test_a_selector_changes_exactly_the_selected_ttls_and_restore_undoes_it(run, client, redis_url, tmp_path):
    fill(redis_url)
    faq = [k for k in entry_keys(client, "support") if client.hget(k, "topic") == b"faq"]
    client.hset(tag_key(faq[0]), "owner", "ops")  # a cacheops tag hash: it follows its entry's TTL
    before = expiries(client)
    preview = run("expire", "--tag", "topic=faq", "--ttl", "7d", "--dry-run", "--json")
    assert preview.exit_code == 0, preview.output
    doc = json.loads(preview.stdout)["preview"]
    assert doc["matched"] == 2 and doc["to_change"] == 2
    assert doc["ttl_changes"]["lengthen"] == 1 and doc["ttl_changes"]["add_ttl"] == 1
    assert expiries(client) == before  # a dry run changes nothing
    result = run(
        "expire", "--tag", "topic=faq", "--ttl", "7d", "--yes", "--json", "--backup", str(tmp_path / "b.jsonl")
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["result"]["changed"] == 2
    after = expiries(client)
    assert changed(before, after) == {*faq, tag_key(faq[0])}
    now_ms = server_time_ms(client)
    for k in faq:
        assert 7 * DAY * 1000 - 60_000 < after[k] - now_ms <= 7 * DAY * 1000
    assert after[tag_key(faq[0])] == after[faq[0]]
    # the operations log has it; restore puts the old expiries back exactly
    (event,) = run.json_lines("history", "--action", "expire")
    assert event["counts"]["changed"] == 2 and event["backup"] == str(tmp_path / "b.jsonl")
    restored = run("restore", str(tmp_path / "b.jsonl"), "--json")
    assert restored.exit_code == 0, restored.output
    assert json.loads(restored.stdout)["ttls_restored"] == 2
    assert expiries(client) == before


def test_ttl_max_only_shortens_and_persist_only_removes(run, client, redis_url):
    fill(redis_url)
    before = expiries(client)
    capped = run("expire", "--cache", "support", "--ttl-max", "1d", "--yes")
    assert capped.exit_code == 0
    # the undo hint names the server this ran against, so it runs verbatim (as evict's does)
    assert f"undo with: cacheops --url {redis_url} restore " in " ".join(capped.output.split())
    after = expiries(client)
    support = entry_keys(client, "support")
    shortened = {k for k in support if client.hget(k, "response") in (b"rain", b"30 days")}
    assert changed(before, after) == shortened  # the 1h entry is within the cap: untouched
    assert all(after[k] - server_time_ms(client) <= DAY * 1000 for k in shortened)
    assert run("expire", "--cache", "short", "--persist", "--yes").exit_code == 0
    final = expiries(client)
    assert changed(after, final) == set(entry_keys(client, "short"))
    assert all(final[k] == -1 for k in entry_keys(client, "short"))
    assert all(final[k] == before[k] for k in entry_keys(client, "forever"))
    # nothing left to change: a second run is a no-op that says so
    again = run("expire", "--cache", "short", "--persist", "--yes", "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["preview"]["to_change"] == 0


def test_a_ttl_the_app_set_since_the_preview_is_respected(run, client, redis_url, tmp_path):
    fill(redis_url)
    keys = entry_keys(client, "short")
    plan = expire_lib.plan(client, Selection(cache="short"), expire_lib.TtlChange(expire_lib.SET, 60.0, "60s"))
    try:
        assert plan.total == 2
        client.expire(keys[0], 5000)  # the app refreshed this entry's TTL after the preview
        result = expire_lib.execute(client, plan, backup_path=tmp_path / "b.jsonl")
    finally:
        plan.close()
    assert (result.changed, result.changed_meanwhile) == (1, 1)
    assert 4990 <= client.ttl(keys[0]) <= 5000 and 50 <= client.ttl(keys[1]) <= 60


def test_bad_usage(run, client, redis_url):
    fill(redis_url)
    assert run("expire", "--cache", "short", "--ttl", "1d", "--persist").exit_code == ExitCode.USAGE
    assert run("expire", "--ttl", "1d", "--yes").exit_code == ExitCode.USAGE  # no selector
    assert run("expire", "--cache", "short", "--ttl", "soon").exit_code == ExitCode.USAGE
    refused = run("expire", "--cache", "short", "--ttl", "1d")  # not a terminal, no --yes
    assert refused.exit_code == ExitCode.USAGE and "--yes" in refused.output
    assert run("expire", "--cache", "nothing-here", "--ttl", "1d", "--yes").exit_code == ExitCode.NOT_FOUND
