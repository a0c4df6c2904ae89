"""The TUI driven by Textual's pilot against the real server, over entries the real libraries wrote."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest
from langchain_core.globals import set_llm_cache
from textual.widgets import Label, Sparkline
from writers import langchain_exact, langchain_semantic

import cacheops
import cacheops_track
from cacheops import connect_url
from cacheops.ops import oplog
from cacheops.tui import CacheopsApp
from cacheops.tui.screens.confirm_evict import ConfirmEvictScreen
from cacheops.tui.screens.find_prompt import FindPromptScreen
from cacheops.tui.screens.neighbours import NeighboursScreen
from cacheops.tui.session import Session
from cacheops.tui.widgets.cache_list import CacheList
from cacheops.tui.widgets.entry_detail import EntryDetail
from cacheops.tui.widgets.entry_table import EntryTable
from cacheops.tui.widgets.hit_rate import HitRate, anchored

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


async def open_neighbours(app, pilot, name: str):
    """The neighbours screen ('n') of the first entry of cache `name`; returns its neighbourhood."""
    table = await open_cache(app, pilot, name)
    table.focus()
    await settle(app, pilot, until=lambda: app.query_one(EntryDetail).item is not None)
    await pilot.press("n")
    await settle(app, pilot, until=lambda: isinstance(app.screen, NeighboursScreen))
    return app.screen.hood


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
        # as `cacheops --url URL tui` starts it: the undo hint carries the connection options
        app = CacheopsApp(Session(connect_url(redis_url), "test", command=f"cacheops --url {redis_url}"))
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
            note = str(app.query_one("#detail-body").content)
            return app, chosen, {k.value for k in table.rows}, note

    return asyncio.run(scenario())


def test_evict_via_the_modal_removes_exactly_the_selected_entry(client, redis_url):
    langchain_exact(redis_url, QA, model="gpt-4o-mini", prefix="exact")
    before = {k.decode() for k in client.scan_iter("exact:*")}
    app, chosen, rows, note = _evict_scenario(redis_url, "y")
    after = {k.decode() for k in client.scan_iter("exact:*")}
    assert before - after == {chosen}
    assert chosen not in rows and len(rows) == 2
    result = app.last_result
    assert result.deleted == 1 and Path(result.backup).is_file()
    saved = [json.loads(line).get("key") for line in Path(result.backup).read_text().splitlines()]
    assert chosen in saved  # the backup holds exactly what was deleted
    (event,) = oplog.history(client)  # the TUI's eviction, logged as the CLI's is
    assert event["action"] == "evict" and event["state"] == "done" and event["backup"] == result.backup
    # the undo hint runs verbatim against the same server (the connection options it started with)
    assert f"undo with: cacheops --url {redis_url} restore {result.backup}" in note


def test_cancelling_the_modal_removes_nothing(client, redis_url):
    langchain_exact(redis_url, QA, model="gpt-4o-mini", prefix="exact")
    before = {k.decode() for k in client.scan_iter("*")}
    app, _chosen, rows, _note = _evict_scenario(redis_url, "n")
    assert {k.decode() for k in client.scan_iter("*")} == before
    assert app.last_result is None and len(rows) == 3


def test_neighbours_show_distances(client, redis_url):
    langchain_semantic(redis_url, QA, model="gpt-4o", name="llmcache")

    async def scenario():
        app = make_app(redis_url)
        async with app.run_test(size=(160, 45)) as pilot:
            hood = await open_neighbours(app, pilot, "llmcache")
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


# -- hits: a real tracked app (cacheops.track around langchain-redis RedisCache) -------------------


@pytest.fixture
def tracked_app(client, redis_url):
    """An app that asks 3 questions through a tracked RedisCache: 'France' misses then hits twice,
    'Everest' misses then hits once, a paraphrase of France misses (an exact cache)."""
    from langchain_redis import RedisCache
    from test_hits import UsageChatModel, ask

    cacheops_track._recorders.clear()
    cache = cacheops.track(RedisCache(redis_url=redis_url, ttl=3600))
    set_llm_cache(cache)
    try:
        chat = UsageChatModel()
        for text in ["What is the capital of France?"] * 3 + ["How tall is Everest?"] * 2 + ["France's capital city?"]:
            ask(chat, text)
        assert chat.calls == 3
        cache.recorder.flush()
        yield cache
    finally:
        set_llm_cache(None)
        for recorder in list(cacheops_track._recorders.values()):
            recorder.close()
        cacheops_track._recorders.clear()


def column(table: EntryTable, name: str) -> list[str]:
    return [str(table.get_cell(row, name)) for row in table.rows]


def label_text(widget, selector: str) -> str:
    return str(widget.query_one(selector, Label).content)


def test_a_tracked_cache_shows_hits_sorts_by_them_and_draws_its_hit_rate(tracked_app, redis_url):
    langchain_exact(redis_url, QA[:2], model="gpt-4o-mini", prefix="plain")  # an untracked cache beside it

    async def scenario():
        app = make_app(redis_url)
        async with app.run_test(size=(160, 45)) as pilot:
            table = await open_cache(app, pilot, "redis")
            assert table.hit_columns and {"hits", "last hit"} <= {c.value for c in table.columns}
            assert sorted(column(table, "hits")) == ["0", "1", "2"]
            # the hit-rate panel: 3 hits in 6 lookups, from the tracker, on a 0..100% sparkline
            panel = app.query_one(HitRate)
            await settle(app, pilot, until=lambda: panel.hits is not None)
            assert (panel.hits.window.hits, panel.hits.window.misses) == (3, 3)
            assert "50% of 6 lookups" in label_text(panel, "#hit-summary")
            assert "tracked" in label_text(panel, "#hit-source")
            spark = panel.query_one(Sparkline)
            assert spark.display and spark.data == anchored(panel.hits.series)
            assert 0.5 in panel.hits.series and spark.data[:4:2] == [0.0, 1.0]  # the fixed 0..1 scale

            # s: most hit first (the tracker's records), then the entries with no hit
            table.focus()
            await pilot.press("s")
            await settle(app, pilot, until=lambda: "most hit first" in table.label and table.row_count == 3)
            assert column(table, "hits") == ["2", "1", "0"]
            assert column(table, "prompt")[:2] == ["What is the capital of France?", "How tall is Everest?"]
            last = column(table, "last hit")
            assert last[0].endswith("ago") and last[1].endswith("ago") and last[2] == "never"
            # the most hit entry, decoded in full, with the prompt and hits the tracker recorded
            detail = app.query_one(EntryDetail)
            await settle(app, pilot, until=lambda: detail.item is not None and detail.item.hits is not None)
            assert detail.item.prompt == "What is the capital of France?" and detail.item.hits["hits"] == 2
            # s again: back to scan order, same rows
            await pilot.press("s")
            await settle(app, pilot, until=lambda: "most hit first" not in table.label and table.row_count == 3)
            assert sorted(column(table, "hits")) == ["0", "1", "2"]

            # an untracked cache: no hit columns, the panel says where hits would come from
            table = await open_cache(app, pilot, "plain")
            assert not table.hit_columns and "hits" not in {c.value for c in table.columns}
            await settle(app, pilot, until=lambda: panel.cache == "plain")
            assert panel.hits is None and "not tracked" in label_text(panel, "#hit-summary")
            assert not panel.query_one(Sparkline).display
            table.focus()
            await pilot.press("s")  # nothing to sort by: a warning, the order stays
            await settle(app, pilot, until=lambda: bool(app._notifications))
            assert any("not tracked" in n.message for n in app._notifications)
            assert not app.sort_by_hits

    asyncio.run(scenario())


# -- scale: rows before the background pass ends -----------------------------------------------------


class HeldSession(Session):
    """The catalog pass stops after its first scan batch until the test releases it."""

    def __init__(self, client, server):
        super().__init__(client, server)
        self.release = threading.Event()
        self.held = threading.Event()

    def catalog(self, stats, on_progress=None):
        def hold(counts):
            if on_progress is not None:
                on_progress(counts)
            self.held.set()
            self.release.wait(30)

        return super().catalog(stats, hold)


def test_caches_and_rows_show_before_the_catalog_pass_ends(client, redis_url):
    langchain_semantic(redis_url, QA, model="gpt-4o", name="llmcache")
    langchain_exact(redis_url, QA[:2], model="gpt-4o-mini", prefix="exact")
    session = HeldSession(connect_url(redis_url), "test")

    async def until(check, timeout=10.0):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not check() and loop.time() < deadline:
            await asyncio.sleep(0.02)
        return check()

    async def scenario():
        app = CacheopsApp(session)
        async with app.run_test(size=(160, 45)) as pilot:
            caches = app.query_one(CacheList)
            table = app.query_one(EntryTable)
            try:
                # the pass is held after its first batch: the caches it found so far are listed,
                # marked as counting, and the first one's entries stream from their own scan
                assert await until(lambda: caches.row_count == 2 and table.row_count > 0)
                assert session.held.is_set() and not app.catalog_done.is_set()
                assert all(str(caches.get_cell(k, "entries")).endswith("…") for k in caches.rows)
                # another cache, and a filter, while the pass is still held
                caches.move_cursor(row=caches.get_row_index("exact"))
                assert await until(lambda: table.label == "exact" and table.row_count == 2)
                await pilot.press("slash", *"Paris", "enter")
                assert await until(lambda: table.label == "exact [Paris]" and table.row_count == 1)
                assert not app.catalog_done.is_set()
            finally:
                session.release.set()
            # the pass ends: its figures replace the running counts; the listing is not restarted
            listed = table.first_rows_at
            assert await until(app.catalog_done.is_set)
            await pilot.pause()
            assert {k.value: str(caches.get_cell(k, "entries")) for k in caches.rows} == {"llmcache": "3", "exact": "2"}
            assert table.first_rows_at == listed and table.label == "exact [Paris]"

    asyncio.run(scenario())
