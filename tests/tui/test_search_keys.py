"""Search (F, n/N), the tab keys 1–6, readable panes and the State tree's kept view."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import TabbedContent

from tests import factories
from tests.tui.helpers import screen_text, settle, show_tab, submit
from tests.tui.test_app import SIZE, wait_replay
from tui.dialogs.help import HelpScreen
from tui.dialogs.prompt import PromptDialog
from tui.widgets.action_view import ActionView
from tui.widgets.diff_view import DiffView
from tui.widgets.event_list import EventList
from tui.widgets.hits_view import HitsView
from tui.widgets.raw_view import RawView
from tui.widgets.state_view import StateView

pytestmark = pytest.mark.timeout(60)
COUNTER = str(Path(factories.__file__)) + ":counter_reducer"


@pytest.fixture
def app_for():
    from tui.launch import replay_app

    opened = []

    def make(target: str, **kw):
        app, log = replay_app(target, **kw)
        opened.append(log)
        return app

    yield make
    for log in opened:
        log.close()


async def wait_search(pilot) -> None:
    for _ in range(100):
        await settle(pilot, rounds=1)
        if pilot.app.search_query is not None and not pilot.app.busy:
            return
    raise AssertionError("the search never finished")


async def test_F_searches_and_n_N_step_through_the_hits(app_for, small_log) -> None:
    app = app_for(small_log, reducer=COUNTER)
    async with app.run_test(size=SIZE) as pilot:
        await wait_replay(pilot)
        await pilot.press("F")
        assert isinstance(app.screen, PromptDialog)
        await submit(pilot, "state['count'] % 2 == 1")
        await wait_search(pilot)
        # count after v: 1, 3, 6, 10, 15, 21, 28, … odd after 1, 2, 5, 6, 9, 10, …
        assert [hit.v for hit in app.hits][:5] == [1, 3, 5, 7, 9]
        assert app.query_one(TabbedContent).active == "tab-hits"
        lst = app.query_one(EventList)
        assert lst.row.key == 1
        await pilot.press("n", "n")
        await settle(pilot)
        assert lst.row.key == 5
        text = app.query_one(HitsView).plain
        assert "▶ v 5 " in text and "starts" in text and "stops" in text
        await pilot.press("N")
        await settle(pilot)
        assert lst.row.key == 3
        await pilot.press("F")
        await submit(pilot, "/count")
        await wait_search(pilot)
        assert [hit.v for hit in app.hits] == list(range(1, 31))
        assert "changes    0 → 1" in app.query_one(HitsView).plain


async def test_F_rejects_a_bad_query_in_the_dialog(app_for, small_log) -> None:
    app = app_for(small_log, reducer=COUNTER)
    async with app.run_test(size=SIZE) as pilot:
        await wait_replay(pilot)
        await pilot.press("F")
        await submit(pilot, "re:(")
        await settle(pilot)
        assert isinstance(app.screen, PromptDialog)
        assert "not a valid regex" in screen_text(app)


async def test_F_without_a_reducer_says_what_it_needs(app_for, small_log) -> None:
    app = app_for(small_log)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("F")
        await settle(pilot)
        assert any("search needs a reducer" in note for note in app.notes)
        await pilot.press("n")
        assert any("no search hits" in note for note in app.notes)


async def test_number_keys_switch_tabs_and_help_lists_them(app_for, small_log) -> None:
    app = app_for(small_log)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        tabs = app.query_one(TabbedContent)
        names = ("diff", "action", "raw", "cause", "hits", "state")
        for key, tab in zip("234561", names, strict=True):
            await pilot.press(key)
            await settle(pilot)
            assert tabs.active == f"tab-{tab}"
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        for key in ("1 – 6", "F ", "n, N", "PgUp", "Shift+Tab"):
            assert key in text


async def test_action_and_raw_show_json_on_real_lines(app_for, small_log) -> None:
    app = app_for(small_log)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await show_tab(pilot, "tab-action")
        lines = app.query_one(ActionView).plain.splitlines()
        assert "{" in lines and any(line.startswith('  "type": ') for line in lines)
        await pilot.press("e")  # messages: the Raw tab shows the frame
        await settle(pilot)
        await show_tab(pilot, "tab-raw")
        lines = app.query_one(RawView).plain.splitlines()
        assert any(line.startswith('  "type": ') for line in lines), lines


async def test_control_characters_stay_visible_on_real_lines(tmp_path) -> None:
    from tui.text import json_text

    text = json_text({"a": "x\u202ey\nz\x1b"}).plain
    assert text.splitlines() == ["{", '  "a": "x\\u202ey\\nz\\u001b"', "}"]


async def test_state_tree_opens_its_first_level_and_keeps_the_view(tmp_path) -> None:
    from textual.app import App

    class One(App[None]):
        def compose(self):
            yield StateView(id="state")

    app = One()
    async with app.run_test(size=SIZE) as pilot:
        tree = app.query_one(StateView)
        tree.show_state({"orders": {"o1": {"total": 1}}, "n": 1, "tags": ["a"]}, "v 1")
        await pilot.pause()
        orders = tree.root.children[0]
        assert orders.is_expanded and tree.root.children[2].is_expanded
        o1 = orders.children[0]
        o1.expand()
        tree.root.children[2].collapse()
        await pilot.pause()
        tree.move_cursor(o1.children[0])
        await pilot.pause()
        tree.show_state({"orders": {"o1": {"total": 2}}, "n": 2, "tags": ["a"]}, "v 2")
        await pilot.pause()
        await pilot.pause()
        orders = tree.root.children[0]
        assert orders.is_expanded and orders.children[0].is_expanded
        assert not tree.root.children[2].is_expanded
        assert "total: 2" in str(tree.cursor_node.label)


async def test_what_if_in_the_diff_tab_shows_old_and_new(app_for, small_log) -> None:
    app = app_for(small_log, reducer=COUNTER)
    async with app.run_test(size=SIZE) as pilot:
        await wait_replay(pilot)
        await pilot.press("j", "j", "s")  # skip v 3: the final count 465 → 462
        await settle(pilot)
        assert "replace /count  465 → 462" in app.query_one(DiffView).plain


async def test_i_in_a_log_inserts_a_hypothetical_action(app_for, small_log) -> None:
    from tui.dialogs.inject import InjectDialog

    app = app_for(small_log, reducer=COUNTER)
    async with app.run_test(size=SIZE) as pilot:
        await wait_replay(pilot)
        await pilot.press("j", "j", "i")  # after v 3
        await settle(pilot)
        assert isinstance(app.screen, InjectDialog)
        assert "insert an action after v 3" in screen_text(app)
        await submit(pilot, '{"type": "counter/added", "by": 100}')
        for _ in range(50):
            await settle(pilot, rounds=1)
            if app.what_if is not None:
                break
        assert app.what_if.first_divergent_v == 3
        assert app.query_one(TabbedContent).active == "tab-diff"
        diff = app.query_one(DiffView).plain
        assert "inserting counter/added after v 3" in diff
        assert "replace /count  465 → 565" in diff
