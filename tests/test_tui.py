"""The TUI driven by Textual's pilot against the real server, over entries the real libraries wrote."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from writers import langchain_exact, langchain_semantic

from cacheops import connect_url
from cacheops.tui import CacheopsApp
from cacheops.tui.screens.confirm_evict import ConfirmEvictScreen
from cacheops.tui.screens.find_prompt import FindPromptScreen
from cacheops.tui.screens.neighbours import NeighboursScreen
from cacheops.tui.session import Session
from cacheops.tui.widgets.cache_list import CacheList
from cacheops.tui.widgets.entry_detail import EntryDetail
from cacheops.tui.widgets.entry_table import EntryTable

QA = [
    ("What is the capital of France?", "Paris is the capital of France."),
    ("What is the refund policy?", "Refunds within 30 days."),
    ("Do you offer a free trial?", "Yes, 14 days."),
]


def make_app(redis_url: str) -> CacheopsApp:
    return CacheopsApp(Session(connect_url(redis_url), "test"))


async def settle(app, pilot, until=None, timeout: float = 5.0) -> None:
    """Let workers finish and messages land (until `until()` holds, when given)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        await app.workers.wait_for_complete()
        await pilot.pause()
        if until is None or until() or loop.time() > deadline:
            return
        await asyncio.sleep(0.05)


def detail_text(app) -> str:
    item = app.query_one(EntryDetail).item
    return "" if item is None else f"{item.prompt}\n{item.answer}"


async def open_cache(app, pilot, name: str) -> EntryTable:
    caches = app.query_one(CacheList)
    await settle(app, pilot, until=lambda: name in caches.rows)
    caches.move_cursor(row=caches.get_row_index(name))
    table = app.query_one(EntryTable)
    await settle(app, pilot, until=lambda: table.row_count > 0 and table.border_title.endswith(name))
    return table


def test_caches_entries_and_detail(client, redis_url):
    langchain_semantic(redis_url, QA, model="gpt-4o", name="llmcache")
    langchain_exact(redis_url, QA[:2], model="gpt-4o-mini", prefix="exact")

    async def scenario():
        app = make_app(redis_url)
        async with app.run_test(size=(160, 45)) as pilot:
            await settle(app, pilot, until=lambda: app.query_one(CacheList).row_count == 2)
            caches = app.query_one(CacheList)
            assert set(caches.rows) == {"llmcache", "exact"}
            table = await open_cache(app, pilot, "llmcache")
            assert table.row_count == 3
            table.focus()
            await settle(app, pilot, until=lambda: app.query_one(EntryDetail).item is not None)
            item = app.query_one(EntryDetail).item
            assert (item.prompt, item.answer) in QA and item.model == "gpt-4o"
            # the filter: text and model, applied as the library's EntryFilter
            await pilot.press("slash")
            await pilot.press(*"refund", "enter")
            await settle(app, pilot, until=lambda: table.row_count == 1)
            assert table.row_count == 1
            await settle(app, pilot, until=lambda: "Refunds within 30 days." in detail_text(app))
            assert "What is the refund policy?" in detail_text(app)

    asyncio.run(scenario())


def test_find_by_prompt_finds_every_copy(client, redis_url):
    langchain_semantic(redis_url, QA, model="gpt-4o", name="llmcache")
    langchain_exact(redis_url, QA, model="gpt-4o-mini", prefix="exact")

    async def scenario():
        app = make_app(redis_url)
        async with app.run_test(size=(160, 45)) as pilot:
            await settle(app, pilot, until=lambda: app.query_one(CacheList).row_count == 2)
            await pilot.press("f")
            await settle(app, pilot, until=lambda: isinstance(app.screen, FindPromptScreen))
            await pilot.press(*"What is the capital of France?", "enter")
            table = app.query_one(EntryTable)
            await settle(app, pilot, until=lambda: table.row_count == 2)
            assert {k.value.split(":")[0] for k in table.rows} == {"llmcache", "exact"}
            await settle(app, pilot, until=lambda: "Paris" in detail_text(app))
            assert "What is the capital of France?" in detail_text(app)

    asyncio.run(scenario())


def _evict_scenario(redis_url: str, answer: str):
    async def scenario():
        app = make_app(redis_url)
        async with app.run_test(size=(160, 45)) as pilot:
            table = await open_cache(app, pilot, "exact")
            table.focus()
            await settle(app, pilot, until=lambda: app.query_one(EntryDetail).item is not None)
            chosen = app.query_one(EntryDetail).item.key
            await pilot.press("d")
            await settle(app, pilot, until=lambda: isinstance(app.screen, ConfirmEvictScreen))
            assert isinstance(app.screen, ConfirmEvictScreen) and app.screen.plan.total == 1
            await pilot.press(answer)
            await settle(app, pilot, until=lambda: app.last_result is not None or answer == "n")
            return app, chosen, {k.value for k in table.rows}

    return asyncio.run(scenario())


def test_evict_via_the_modal_removes_exactly_the_selected_entry(client, redis_url):
    langchain_exact(redis_url, QA, model="gpt-4o-mini", prefix="exact")
    before = {k.decode() for k in client.scan_iter("exact:*")}
    app, chosen, rows = _evict_scenario(redis_url, "y")
    after = {k.decode() for k in client.scan_iter("exact:*")}
    assert before - after == {chosen}
    assert chosen not in rows and len(rows) == 2
    result = app.last_result
    assert result.deleted == 1 and Path(result.backup).is_file()
    saved = [json.loads(line).get("key") for line in Path(result.backup).read_text().splitlines()]
    assert chosen in saved  # the backup holds exactly what was deleted
    assert client.xlen("cacheops:oplog") == 1


def test_cancelling_the_modal_removes_nothing(client, redis_url):
    langchain_exact(redis_url, QA, model="gpt-4o-mini", prefix="exact")
    before = {k.decode() for k in client.scan_iter("*")}
    app, _chosen, rows = _evict_scenario(redis_url, "n")
    assert {k.decode() for k in client.scan_iter("*")} == before
    assert app.last_result is None and len(rows) == 3


def test_neighbours_show_distances(client, redis_url):
    langchain_semantic(redis_url, QA, model="gpt-4o", name="llmcache")

    async def scenario():
        app = make_app(redis_url)
        async with app.run_test(size=(160, 45)) as pilot:
            table = await open_cache(app, pilot, "llmcache")
            table.focus()
            await settle(app, pilot, until=lambda: app.query_one(EntryDetail).item is not None)
            await pilot.press("n")
            await settle(app, pilot, until=lambda: isinstance(app.screen, NeighboursScreen))
            hood = app.screen.hood
            assert len(hood.neighbours) == 2
            assert all(n.distance >= 0 for n in hood.neighbours)
            await pilot.press("escape")
            await settle(app, pilot)
            assert not isinstance(app.screen, NeighboursScreen)

    asyncio.run(scenario())


def test_errors_are_notifications(client, redis_url):
    langchain_exact(redis_url, QA[:1], model="gpt-4o-mini", prefix="exact")

    async def scenario():
        app = make_app(redis_url)
        async with app.run_test(size=(160, 45)) as pilot:
            table = await open_cache(app, pilot, "exact")
            table.focus()
            await settle(app, pilot, until=lambda: app.query_one(EntryDetail).item is not None)
            await pilot.press("n")  # an exact entry has no neighbours: a message, not a crash
            await settle(app, pilot, until=lambda: bool(app._notifications))
            assert any("only semantic entries" in n.message for n in app._notifications)

    asyncio.run(scenario())


def test_cli_connection_failure_is_one_line(run):
    result = run("tui", url="redis://127.0.0.1:1")
    assert result.exit_code == 3
    assert "Traceback" not in result.output
