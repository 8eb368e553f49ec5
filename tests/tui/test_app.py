"""Replay mode, driven key by key (``run_test`` + ``pilot.press``) over real SQLite logs."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import TabbedContent

from tests import factories
from tests.tui.helpers import screen_text, settle, show_tab, submit
from tui.dialogs.help import HelpScreen
from tui.dialogs.prompt import PromptDialog
from tui.launch import replay_app
from tui.widgets.action_view import ActionView
from tui.widgets.cause_view import CauseView
from tui.widgets.diff_view import DiffView
from tui.widgets.event_list import EventList
from tui.widgets.header import HeaderBar
from tui.widgets.raw_view import RawView
from tui.widgets.state_view import StateView

pytestmark = pytest.mark.timeout(60)

SIZE = (120, 40)


@pytest.fixture
def app_for(request):
    opened = []

    def make(target: str, **kw):
        app, log = replay_app(target, **kw)
        opened.append(log)
        return app

    yield make
    for log in opened:
        log.close()


async def test_opens_on_the_first_event_with_counts_in_the_header(app_for, small_log) -> None:
    app = app_for(small_log)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        info = app.query_one(HeaderBar).info
        assert (info.mode, info.kind, info.events, info.messages) == ("REPLAY", "events", 30, 40)
        assert app.query_one(EventList).row.key == 1
        assert "counter/added" in screen_text(app)


async def test_j_k_and_arrows_step(app_for, small_log) -> None:
    app = app_for(small_log)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("j", "j", "down")
        await settle(pilot)
        assert app.query_one(EventList).row.key == 4
        await pilot.press("k", "up")
        await settle(pilot)
        assert app.query_one(EventList).row.key == 2
        assert app.query_one(HeaderBar).info.position.startswith("v 2 ")
        await show_tab(pilot, "tab-action")
        assert '"by": 2' in app.query_one(ActionView).plain


async def test_g_and_G_go_to_first_and_last(app_for, small_log) -> None:
    app = app_for(small_log)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("G")
        await settle(pilot)
        assert app.query_one(EventList).row.key == 30
        await pilot.press("g")
        await settle(pilot)
        assert app.query_one(EventList).row.key == 1


async def test_state_and_diff_use_recorded_snapshots_without_a_reducer(app_for, small_log):
    app = app_for(small_log)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*["j"] * 4)  # v 5: a snapshot exists
        await settle(pilot)
        state = app.query_one(StateView)
        assert state.state == {"count": 15}
        await show_tab(pilot, "tab-diff")
        assert "reducer" in app.query_one(DiffView).plain  # v 4 has no snapshot
        await show_tab(pilot, "tab-state")
        await pilot.press("j")  # v 6: no snapshot
        await settle(pilot)
        assert state.state is None
        assert "--reducer" in str(state.root.label)


async def test_pin_diffs_against_the_pinned_event(app_for, small_log) -> None:
    app = app_for(small_log)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)  # the first page is read in a worker
        await pilot.press(*["j"] * 4, "p")  # pin v 5
        await settle(pilot)
        assert app.query_one(EventList).pinned == 5
        assert app.query_one(HeaderBar).info.pinned == 5
        await pilot.press(*["j"] * 5)  # v 10
        await show_tab(pilot, "tab-diff")
        diff = app.query_one(DiffView).plain
        assert "v 5 → v 10 (pinned)" in diff
        assert "/count" in diff and "55" in diff
        await pilot.press("p")  # pin v 10 instead
        await settle(pilot)
        assert app.query_one(EventList).pinned == 10


async def test_colon_jumps_to_a_v(app_for, small_log) -> None:
    app = app_for(small_log)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("colon")
        assert isinstance(app.screen, PromptDialog)
        await submit(pilot, "abc")
        assert isinstance(app.screen, PromptDialog)  # refused: not a number
        assert "number" in str(app.screen.query_one("#error").render())
        await submit(pilot, "17")
        await settle(pilot)
        assert app.query_one(EventList).row.key == 17


async def test_slash_filters_by_type_glob_sender_and_expression(app_for, small_log) -> None:
    app = app_for(small_log)
    async with app.run_test(size=SIZE) as pilot:
        lst = app.query_one(EventList)
        await pilot.press("slash")
        await submit(pilot, "event['by'] % 10 == 0")
        await settle(pilot)
        assert len(lst.source) == 3
        assert [lst.source.peek(i).key for i in range(3)] == [10, 20, 30]
        assert app.query_one(HeaderBar).info.filter == "event['by'] % 10 == 0"
        await pilot.press("j")
        await settle(pilot)
        assert lst.row.key == 20
        await pilot.press("slash")
        await submit(pilot, "sender:nobody")
        await settle(pilot)
        assert len(lst.source) == 0
        await pilot.press("slash")
        await submit(pilot, "")  # clear: every row is back
        await settle(pilot)
        assert len(lst.source) == 30
        await pilot.press("slash")
        await submit(pilot, "counter/*")
        await settle(pilot)
        assert len(lst.source) == 30


async def test_bad_filter_expression_is_shown_in_the_dialog(app_for, small_log) -> None:
    app = app_for(small_log)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash")
        await submit(pilot, "event[ ==")
        assert isinstance(app.screen, PromptDialog)
        assert "does not parse" in str(app.screen.query_one("#error").render())
        await pilot.press("escape")
        assert not isinstance(app.screen, PromptDialog)


async def test_m_marks_and_unmarks_a_row(app_for, small_log) -> None:
    app = app_for(small_log)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)  # the first page is read in a worker
        await pilot.press("j", "m")
        await settle(pilot)
        lst = app.query_one(EventList)
        assert lst.marked == {2}
        assert "●" in screen_text(app)
        await pilot.press("m")
        assert lst.marked == set()


async def test_e_switches_to_messages_and_shows_recorded_marks(app_for, small_log) -> None:
    app = app_for(small_log)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("e")
        await settle(pilot)
        lst = app.query_one(EventList)
        assert app.query_one(HeaderBar).info.kind == "messages"
        assert lst.row.key == 1 and lst.row.kind == "message"
        assert 4 in lst.marked  # the log's mark after message #4
        await show_tab(pilot, "tab-raw")
        assert "direction  in" in app.query_one(RawView).plain


async def test_every_tab_shows_the_selected_event(app_for, small_log) -> None:
    app = app_for(small_log)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("j", "j")  # v 3, caused by message #3
        await settle(pilot)
        tabs = app.query_one(TabbedContent)
        for tab in ("tab-state", "tab-diff", "tab-action", "tab-raw", "tab-cause"):
            tabs.active = tab
            await settle(pilot)
            if tab == "tab-raw":
                assert "message #3" in app.query_one(RawView).plain
        cause = app.query_one(CauseView).plain
        assert "#3 c2" in cause and "v 3 counter/added" in cause


async def test_skip_and_bisect_without_a_reducer_say_one_is_needed(app_for, small_log) -> None:
    app = app_for(small_log)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)  # the first row is read in a worker; "s" needs a row under the cursor
        await pilot.press("s", "b")
        await settle(pilot)
        assert not isinstance(app.screen, PromptDialog)
        notes = app.notes
        assert any("what-if needs a reducer" in n for n in notes)
        assert any("bisect needs a reducer" in n for n in notes)
        assert app.query_one(EventList).skipped == set()


async def test_live_only_keys_explain_themselves_in_replay(app_for, small_log) -> None:
    app = app_for(small_log)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("i", "f")
        await settle(pilot)
        notes = " ".join(app.notes)
        assert "inject works in live mode" in notes and "follow works in live mode" in notes


async def test_question_mark_shows_help_and_q_quits(app_for, small_log) -> None:
    app = app_for(small_log)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


async def wait_replay(pilot) -> None:
    for _ in range(100):
        await settle(pilot, rounds=1)
        if pilot.app.replay is not None:
            return
    raise AssertionError("the replay never opened")


async def test_with_a_reducer_state_is_replayed_at_every_event(app_for, small_log) -> None:
    app = app_for(small_log, reducer=str(Path(factories.__file__)) + ":counter_reducer")
    async with app.run_test(size=SIZE) as pilot:
        await wait_replay(pilot)
        await pilot.press(*["j"] * 5)  # v 6: no snapshot, replayed
        await settle(pilot)
        assert app.query_one(StateView).state == {"count": 21}
        await show_tab(pilot, "tab-diff")
        assert "replace /count  15 → 21" in app.query_one(DiffView).plain  # old → new


async def test_s_skips_an_event_and_shows_the_downstream_change(app_for, small_log) -> None:
    app = app_for(small_log, reducer=str(Path(factories.__file__)) + ":counter_reducer")
    async with app.run_test(size=SIZE) as pilot:
        await wait_replay(pilot)
        await pilot.press("j", "j", "s")  # skip v 3
        await settle(pilot)
        assert app.query_one(EventList).skipped == {3}
        assert app.what_if.first_divergent_v == 3
        assert app.query_one(TabbedContent).active == "tab-diff"
        diff = app.query_one(DiffView).plain
        assert "first affected v 3" in diff and "/count" in diff and "462" in diff  # 465 - 3
        await pilot.press("s")  # un-skip: back to the normal diff
        await settle(pilot)
        assert app.what_if is None and app.query_one(EventList).skipped == set()


async def test_b_bisects_to_the_first_bad_event(app_for, small_log) -> None:
    app = app_for(small_log, reducer=str(Path(factories.__file__)) + ":counter_reducer")
    async with app.run_test(size=SIZE) as pilot:
        await wait_replay(pilot)
        await pilot.press("b")
        assert isinstance(app.screen, PromptDialog)
        await submit(pilot, "state['count'] > 100")
        for _ in range(50):
            await settle(pilot, rounds=1)
            if app.bisect_result is not None:
                break
        assert app.bisect_result.v == 14  # 1+…+14 = 105
        await settle(pilot)
        assert app.query_one(EventList).row.key == 14
        assert app.query_one(TabbedContent).active == "tab-diff"
        assert "v 13 → v 14" in app.query_one(DiffView).plain
        assert any("first bad event is v 14" in note for note in app.notes)


async def test_diff_tab_shows_old_and_new_values(app_for, small_log) -> None:
    app = app_for(small_log, reducer=str(Path(factories.__file__)) + ":counter_reducer")
    async with app.run_test(size=SIZE) as pilot:
        await wait_replay(pilot)
        await pilot.press(*["j"] * 5)  # v 6: count 15 → 21
        await settle(pilot)
        await show_tab(pilot, "tab-diff")
        text = app.query_one(DiffView).plain
        assert "v 5 → v 6" in text and "replace /count  15 → 21" in text
        assert "15 → 21" in screen_text(app)


async def test_list_keys_work_after_tab_and_arrows_reach_the_raw_tab(app_for, small_log) -> None:
    """Regression (issue 17): after Tab and the arrow keys reached the Raw tab, j/G no longer
    moved the list, and Shift-Tab did not bring the focus back to it."""
    app = app_for(small_log)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        lst = app.query_one(EventList)
        await pilot.press("tab", "right", "right", "right")
        await settle(pilot)
        assert app.query_one(TabbedContent).active == "tab-raw"
        await pilot.press("shift+tab")  # back from the tab strip to the list
        await settle(pilot)
        assert app.focused is lst
        await pilot.press("tab", "right")
        await settle(pilot)
        assert app.focused is not lst
        await pilot.press("j", "j")  # the list's keys work from there too
        await settle(pilot)
        assert lst.row.key == 3
        await pilot.press("G")
        await settle(pilot)
        assert lst.row.key == len(lst.source)
