"""A Logux recording in the TUI: the Cause tab links an action to its logux/processed or
logux/undo and back, a sync to its synced and back; `z` folds ping/pong/synced out of the
message list and back, the log untouched."""

from __future__ import annotations

import pytest

from devtools.store import Log
from tests import factories
from tests.tui.helpers import screen_text, settle, show_tab, submit
from tui.launch import replay_app
from tui.rowsource import LiveTimeline
from tui.widgets.cause_view import CauseView
from tui.widgets.event_list import EventList
from tui.widgets.header import HeaderBar

pytestmark = pytest.mark.timeout(60)

SIZE = (120, 40)


@pytest.fixture
def logux_app(tmp_path):
    opened = []

    def make():
        app, log = replay_app(factories.write_logux_log(tmp_path / "logux.rdtlog"))
        opened.append(log)
        return app

    yield make
    for log in opened:
        log.close()


async def go_to(pilot, key: int) -> None:
    await pilot.press("colon")
    await settle(pilot)
    await submit(pilot, str(key))
    await settle(pilot)


def keys(app) -> list[int]:
    source = app.query_one(EventList).source
    return [source.peek(i).key for i in range(len(source))]


async def test_the_cause_tab_links_actions_and_their_answers_both_ways(logux_app) -> None:
    app = logux_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await show_tab(pilot, "tab-cause")
        seen = {}
        for v in (1, 2, 3, 4):
            await go_to(pilot, v)
            seen[v] = app.query_one(CauseView).plain
    assert "answered by  v 3 logux/processed" in seen[1]
    assert "answered by  v 4 logux/undo" in seen[2]
    assert "answers      v 1 counter/add" in seen[3]
    assert "answers      v 2 counter/add" in seen[4]
    assert "#3 c1" in seen[3] or "#5 c1" in seen[3]  # the chain above the links stays


async def test_the_cause_tab_links_a_sync_and_its_synced_both_ways(logux_app) -> None:
    app = logux_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("e")  # messages
        await settle(pilot)
        await show_tab(pilot, "tab-cause")
        seen = {}
        for seq in (3, 4, 5, 6, 9):
            await go_to(pilot, seq)
            seen[seq] = app.query_one(CauseView).plain
    assert "confirmed by #4 → c1 synced" in seen[3]
    assert "confirms     #3 ← c1 sync" in seen[4]
    assert "confirmed by #6 ← c1 synced" in seen[5]
    assert "confirms     #5 → c1 sync" in seen[6]
    assert "linked" not in seen[9]  # a ping links to nothing


async def test_z_folds_ping_pong_and_synced_and_brings_them_back(logux_app, tmp_path) -> None:
    app = logux_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("e")
        await settle(pilot)
        assert keys(app) == list(range(1, 11))
        await go_to(pilot, 5)
        await pilot.press("z")
        await settle(pilot)
        assert keys(app) == [1, 2, 3, 5, 7]
        assert app.query_one(EventList).row.key == 5  # the cursor stays on its row
        assert "ping/pong/synced folded (5 shown)" in app.query_one(HeaderBar).text.plain
        shown = screen_text(app)
        assert "c1 pong" not in shown and "c1 synced" not in shown and "c1 sync" in shown
        await pilot.press("slash")  # a filter on top of the fold
        await settle(pilot)
        await submit(pilot, "sync")
        await settle(pilot)
        assert keys(app) == [3, 5, 7]
        await pilot.press("slash")
        await settle(pilot)
        await submit(pilot, "")
        await settle(pilot)
        assert keys(app) == [1, 2, 3, 5, 7]
        await pilot.press("e", "e")  # events and back: still folded
        await settle(pilot)
        assert keys(app) == [1, 2, 3, 5, 7]
        await pilot.press("z")
        await settle(pilot)
        assert keys(app) == list(range(1, 11))
        assert "folded" not in app.query_one(HeaderBar).text.plain
    with Log.open(tmp_path / "logux.rdtlog") as log:  # never dropped
        assert len(list(log.reader().messages())) == 10


def test_the_live_timeline_links_records_as_they_arrive(tmp_path) -> None:
    """Live mode's timeline keeps the links in memory as rows arrive (no log to look in)."""
    from tui.rows import event_row, message_row

    path = factories.write_logux_log(tmp_path / "logux.rdtlog")
    timeline = LiveTimeline()
    with Log.open(path) as log:
        reader = log.reader()
        for message in reader.messages():
            timeline.add_message_row(message_row(message))
        for event in reader.events():
            timeline.add_event_row(event_row(event))
    assert [link.record.v for link in timeline.links(timeline.event(1))] == [3]
    assert [link.record.v for link in timeline.links(timeline.event(4))] == [2]
    assert [link.record.seq for link in timeline.links(timeline.message(8))] == [7]
