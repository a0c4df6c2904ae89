"""A read-only ACL user: every inspecting command works (the post-deploy checks and the TUI too);
every writing command stops before it changes anything and names the permission it lacks."""

from __future__ import annotations

import json

import pytest
import writers
import yaml
from conftest import Cli
from reliability import snapshot

from cacheops.exit_codes import ExitCode
from cacheops.server.connection import connect, resolve_spec
from cacheops.tui.session import Session

READER_PASSWORD = "reader-Pa55-8d1f"
# Read commands only: the categories, plus the module commands (they carry no ACL category), the
# read-only script commands the fast scan path uses, and the server clock (expiry maths in previews).
# No write, no EVALSHA, no admin.
READ_ONLY = ["-@all", "+@read", "+@connection", "+info", "+time", "+client|no-touch", "+acl|whoami", "+script|load",
             "+evalsha_ro", "+eval_ro", "+ft._list", "+ft.info", "+ft.search", "+json.get"]  # fmt: skip


@pytest.fixture
def reader(client, redis_server, redis_url):
    writers.langchain_exact(redis_url, [("Hi", "Hello"), ("Bye", "Goodbye")])
    writers.redisvl_semantic(redis_url, [{"prompt": "What is the capital of France?", "response": "Paris."}])
    client.execute_command("ACL", "SETUSER", "reader", "reset", "on", f">{READER_PASSWORD}", "~*", "&*", *READ_ONLY)
    yield Cli(f"redis://reader:{READER_PASSWORD}@127.0.0.1:{redis_server.port}/0")
    client.execute_command("ACL", "DELUSER", "reader")


def test_read_only_user_inspects(reader, client):
    before = snapshot(client)
    for args in (["caches"], ["scan"], ["show", "--prompt", "Hi"], ["stats"]):
        result = reader(*args, "--json")
        assert result.exit_code == 0, (args, result.output)
    assert {e["answer"] for e in map(json.loads, reader("scan", "--json").stdout.splitlines())} == {
        "Hello",
        "Goodbye",
        "Paris.",
    }
    doctor = reader("doctor", "--json")
    assert doctor.exit_code in (0, ExitCode.PROBLEMS_FOUND) and "Traceback" not in doctor.output
    checks = {c["area"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert "acl" in checks
    # MODULE LIST is an admin command: the modules are learnt from COMMAND INFO, not reported missing
    for module in ("module search", "module json"):
        assert checks[module]["status"] == "ok" and "version not shown" in checks[module]["message"], checks[module]
    assert READER_PASSWORD not in doctor.output
    assert snapshot(client) == before


def test_doctor_says_when_it_cannot_tell_the_modules(reader, client, redis_server):
    """A user who may run neither MODULE LIST nor COMMAND: a warning, not a false 'no module'."""
    client.execute_command("ACL", "SETUSER", "blind", "reset", "on", f">{READER_PASSWORD}", "~*", "&*", *READ_ONLY,
                           "-command")  # fmt: skip
    try:
        doctor = Cli(f"redis://blind:{READER_PASSWORD}@127.0.0.1:{redis_server.port}/0")("doctor", "--json")
    finally:
        client.execute_command("ACL", "DELUSER", "blind")
    checks = {c["area"]: c for c in json.loads(doctor.stdout)["checks"]}
    for module in ("module search", "module json"):
        assert checks[module]["status"] == "warn" and "cannot tell" in checks[module]["message"], checks[module]


def playbook_file(tmp_path) -> str:
    """The reader fixture's exact cache as a playbook: its prompts, answers and the app's model."""
    path = tmp_path / "playbook.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "prompts": [{"prompt": "Hi", "answer": "Hello"}, {"prompt": "Bye", "answer": "Goodbye"}],
                "warm": {
                    "models": [{"import": "cacheops.demo:demo_chat_model", "kwargs": {"model_name": "gpt-4o-mini"}}],
                    "caches": [{"type": "langchain_exact"}],
                },
            }
        )
    )
    return str(path)


def test_read_only_user_runs_the_post_deploy_checks(reader, client, tmp_path):
    """What only looks (warm --verify, check without --warm, replay, audit, suspects) runs as the
    read-only user: a CI gate needs no write permission."""
    before = snapshot(client)
    playbook = playbook_file(tmp_path)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Hi\nNot cached?\n")
    verify = reader("warm", playbook, "--verify", "--json")
    assert verify.exit_code == 0 and json.loads(verify.stdout)["totals"]["hit"] == 2, verify.output
    check = reader("check", playbook, "--json")
    failed = [(c["suite"], c["name"]) for c in json.loads(check.stdout)["cases"] if c["status"] == "failed"]
    assert check.exit_code == 0 and not failed, (failed, check.stderr)
    replay = reader("replay", str(prompts), "--playbook", playbook, "--json")
    assert [x["result"] for x in json.loads(replay.stdout)["lookups"]] == ["hit", "miss"], replay.output
    for args in (["audit"], ["suspects"]):
        result = reader(*args, "--json")
        assert result.exit_code == 0 and "Traceback" not in result.output, (args, result.output)
    assert snapshot(client) == before


def test_read_only_user_in_the_tui_session(reader, redis_server):
    from cacheops.inspect.catalog import EntryFilter
    from cacheops.server.keyspace import ScanStats

    spec = resolve_spec(reader.url)
    session = Session(connect(spec), spec.display)
    catalog = session.catalog(ScanStats())
    assert {c.name for c in catalog.caches} >= {"redis", "llmcache"}
    assert len(list(session.entries(EntryFilter()))) == 3
    assert [e.answer for e in session.find("Hi")] == ["Hello"]


def test_read_only_user_in_the_tui(reader, client, tmp_path):
    """The TUI itself (Textual's pilot), as the read-only user: caches, entries and an entry's
    detail show; an evict from it stops with a notification naming the permission, nothing changed."""
    import asyncio

    from test_tui import open_cache, settle

    from cacheops.tui import CacheopsApp
    from cacheops.tui.screens.confirm_evict import ConfirmEvictScreen
    from cacheops.tui.widgets.entry_detail import EntryDetail

    before = snapshot(client)
    spec = resolve_spec(reader.url)

    async def scenario():
        app = CacheopsApp(Session(connect(spec), spec.display))
        async with app.run_test(size=(160, 45)) as pilot:
            table = await open_cache(app, pilot, "redis")
            table.focus()
            await settle(app, pilot, until=lambda: app.query_one(EntryDetail).item is not None)
            shown = app.query_one(EntryDetail).item
            rows = table.row_count
            await pilot.press("d")
            await settle(app, pilot, until=lambda: isinstance(app.screen, ConfirmEvictScreen))
            await pilot.press("y")
            await settle(app, pilot, until=lambda: bool(app._notifications))
            return rows, shown, [n.message for n in app._notifications]

    rows, shown, messages = asyncio.run(scenario())
    assert rows == 2 and shown.answer in ("Hello", "Goodbye")
    assert any("evict needs permission to" in m and "nothing was changed" in m for m in messages), messages
    assert not list((tmp_path / "state").rglob("*.jsonl")) and snapshot(client) == before


def test_write_commands_stop_before_changing_anything(reader, run, client, tmp_path):
    """Every writing command, the deploy workflow's included, probes its writes first (server/
    permissions.py): one line naming what it lacks, no backup file, the keyspace unchanged."""
    backup = tmp_path / "evicted.jsonl"
    assert run("evict", "--prompt", "Bye", "--backup", str(backup), "--yes").exit_code == 0  # as the admin
    before = snapshot(client)
    key = json.loads(reader("scan", "--json").stdout.splitlines()[0])["key"]
    playbook = tmp_path / "playbook.yaml"
    playbook.write_text(
        yaml.safe_dump(
            {
                "prompts": [{"prompt": "Warm?", "answer": "Yes."}],
                "warm": {
                    "models": [{"import": "cacheops.demo:demo_chat_model", "kwargs": {"model_name": "gpt-4o-mini"}}],
                    "caches": [{"type": "langchain_exact"}],
                },
            }
        )
    )
    reader_backup = tmp_path / "reader.jsonl"
    migrate = ["migrate-embeddings", "--cache", "llmcache"]
    attempts = [
        ("evict", ["evict", "--cache", "redis", "--backup", str(reader_backup), "--yes"]),
        ("tag", ["tag", key, "team=search"]),
        ("restore", ["restore", str(backup)]),
        ("warm", ["warm", str(playbook)]),
        ("warm", ["check", str(playbook), "--warm"]),  # the gate's writing step
        ("expire", ["expire", "--cache", "redis", "--ttl", "7d", "--backup", str(reader_backup), "--yes"]),
        ("migrate-embeddings", [*migrate, "--to", writers.MINILM, "--yes"]),
        ("migrate-embeddings --flush", [*migrate, "--flush", "--yes"]),
        ("migrate-embeddings --in-place", [*migrate, "--to", writers.MINILM, "--in-place", "--yes"]),
    ]
    for action, args in attempts:
        result = reader(*args)
        assert result.exit_code == ExitCode.PERMISSION, (action, result.output)
        assert "Traceback" not in result.output and READER_PASSWORD not in result.output
        line = result.stderr.strip()
        assert len(line.splitlines()) == 1, result.stderr
        assert f"{action} needs permission to" in line and "no permissions to run the" in line, line
        assert "nothing was changed" in line
    assert not reader_backup.exists()  # refused before the backup file was even created
    assert not list((tmp_path / "state").rglob("*.jsonl"))  # nor one in the default backups folder
    assert snapshot(client) == before
