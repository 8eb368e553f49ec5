"""Snapshots of the screens and dialogs (pytest-textual-snapshot), from fixed logs, fixed times.

Refresh with ``pytest tests/tui/test_snapshots.py --snapshot-update`` when a screen changes on
purpose; never edit the SVGs by hand. The logs are written into a fixed-name folder so no
temporary path reaches the screen, and every time shown comes from the factories' clock.

What made dialog snapshots flaky, and what each test does about it:

* the input cursor blinks (every 0.5 s): whether it was drawn depended on when the screenshot
  fell — :func:`steady` turns the blink off, which leaves the cursor drawn;
* a worker (the replay, the search, the what-if) could finish after the screenshot — each test
  waits for the condition itself (the replay ready, the hits listed, the what-if result shown)
  and fails if it never comes, instead of a fixed number of pauses;
* toasts vanish after 5 s: on a loaded machine a screenshot could come after that —
  :class:`SnapApp` keeps them up for an hour;
* animations are off (``TEXTUAL_ANIMATIONS=none`` in conftest), and the screenshot helper waits
  for scheduled ones anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests import factories as f
from tests.tui.helpers import settle, submit
from tui.app import RdtApp
from tui.rowsource import LogTimeline

pytestmark = pytest.mark.timeout(60)

SIZE = (120, 40)
COUNTER = str(Path(f.__file__)) + ":counter_reducer"


class SnapApp(RdtApp):
    """The app over a log that it opens (and closes) itself."""

    NOTIFICATION_TIMEOUT = 3600
    """Toasts stay up until the screenshot, however late it comes."""

    def __init__(self, target: str, **kw) -> None:
        from devtools.store import Log

        self._log = Log.open(target)
        reader = self._log.reader()
        super().__init__(LogTimeline(reader), name=reader.recording.name, **kw)

    async def on_unmount(self) -> None:
        await super().on_unmount()
        self._log.close()


@pytest.fixture
def log_path(tmp_path: Path) -> str:
    target = str(tmp_path / "snap.rdtlog")
    f.write_log(target, name="orders", messages=40, events=30, snapshots=(0, 5, 10), marks=(4,))
    return target


def shot(snap_compare, log_path: str, run_before, **app) -> bool:
    """Whether the app over ``log_path``, once ``run_before`` has run, looks as its snapshot."""
    return snap_compare(SnapApp(log_path, **app), terminal_size=SIZE, run_before=run_before)


async def until(pilot, condition: Callable[[], bool], what: str) -> None:
    """Settle until ``condition`` holds; fail (rather than take a wrong screenshot) if it never
    does."""
    for _ in range(200):
        await settle(pilot, rounds=1)
        if condition():
            return
    raise AssertionError(f"never happened: {what}")


async def steady(pilot) -> None:
    """Settle, with every input's cursor steady (drawn, not blinking)."""
    from textual.widgets import Input

    await settle(pilot)
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
    await settle(pilot)


async def replay_ready(pilot) -> None:
    await until(pilot, lambda: pilot.app.replay is not None, "the replay opened")


async def search(pilot, query: str) -> None:
    """``F``, the query, Enter; until the Hits tab lists the changes."""
    from tui.widgets.hits_view import HitsView

    app = pilot.app
    await pilot.press("F")
    await submit(pilot, query)
    await until(
        pilot,
        lambda: (
            app.search_query == query
            and not app.busy
            and app.query_one(HitsView).plain.startswith("search ")
        ),
        "the search's hits listed",
    )


def test_replay_screen_state_tab(snap_compare, log_path) -> None:
    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("j", "j", "j", "j")  # v 5 has a snapshot
        await settle(pilot)

    assert shot(snap_compare, log_path, run_before)


def test_replay_screen_messages_raw_tab(snap_compare, log_path) -> None:
    async def run_before(pilot) -> None:
        from textual.widgets import TabbedContent

        await settle(pilot)
        await pilot.press("e", "j", "j", "j")
        pilot.app.query_one(TabbedContent).active = "tab-raw"
        await settle(pilot)

    assert shot(snap_compare, log_path, run_before)


def test_help_screen(snap_compare, log_path) -> None:
    async def run_before(pilot) -> None:
        from tui.dialogs.help import HelpScreen

        await settle(pilot)
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(pilot.app.screen, HelpScreen), "help shown")

    assert shot(snap_compare, log_path, run_before)


@pytest.mark.parametrize("key", ["2", "3", "4", "5"], ids=["diff", "action", "raw", "cause"])
def test_replay_screen_tab(snap_compare, log_path, key) -> None:
    """Each detail tab, switched to with its number key, at v 6 (replayed: no snapshot)."""

    async def run_before(pilot) -> None:
        await replay_ready(pilot)
        await pilot.press("j", "j", "j", "j", "j", key)
        await settle(pilot)

    assert shot(snap_compare, log_path, run_before, reducer=COUNTER)


def test_search_hits_tab(snap_compare, log_path) -> None:
    """An expression search's hits, the cursor on the third (``n`` twice), its toast."""

    async def run_before(pilot) -> None:
        await replay_ready(pilot)
        await search(pilot, "state['count'] % 2 == 1")
        await pilot.press("n", "n")
        await until(pilot, lambda: pilot.app.event_list.row.key == 5, "the cursor on v 5")

    assert shot(snap_compare, log_path, run_before, reducer=COUNTER)


def test_search_grep_hits_tab(snap_compare, log_path) -> None:
    """A ``re:`` search (a line of the state as indented JSON): where ``"count"`` ends in 5."""

    async def run_before(pilot) -> None:
        await replay_ready(pilot)
        await search(pilot, 're:^"count": \\d*5$')

    assert shot(snap_compare, log_path, run_before, reducer=COUNTER)


# ---------------------------------------------------------------- the one-line dialogs

PROMPTS = {
    # id: (keys that open it, text typed, Enter pressed)
    "search": (["F"], 're:^"count": \\d*5$', False),
    "search-bad-regex": (["F"], "re:(", True),
    "filter": (["slash"], "event['by'] % 5 == 0", False),
    "filter-bad-expression": (["slash"], "event['by'] >", True),
    "jump": (["colon"], "17", False),
    "bisect": (["b"], "state['count'] > 100", False),
}


@pytest.mark.parametrize("dialog", list(PROMPTS))
def test_prompt_dialog(snap_compare, log_path, dialog) -> None:
    """Each one-line dialog open with text typed (and, for the bad ones, the error it gives)."""
    from tui.dialogs.prompt import PromptDialog

    keys, text, enter = PROMPTS[dialog]

    async def run_before(pilot) -> None:
        from textual.widgets import Input

        await replay_ready(pilot)
        await pilot.press("j", "j")
        await settle(pilot)
        await pilot.press(*keys)
        await until(pilot, lambda: isinstance(pilot.app.screen, PromptDialog), "dialog open")
        if enter:
            await submit(pilot, text)
            error = pilot.app.screen.query_one("#error")
            await until(pilot, lambda: str(error.render()).strip() != "", "the error shown")
        else:
            pilot.app.screen.query_one(Input).value = text
        await steady(pilot)

    assert shot(snap_compare, log_path, run_before, reducer=COUNTER)


def test_filter_applied(snap_compare, log_path) -> None:
    """``/`` then Enter: the list shows only the matching rows; the header names the filter."""

    async def run_before(pilot) -> None:
        await settle(pilot)
        await pilot.press("slash")
        await submit(pilot, "event['by'] % 5 == 0")
        await until(pilot, lambda: len(pilot.app.event_list.source) == 6, "six rows shown")
        await pilot.press("j")
        await settle(pilot)

    assert shot(snap_compare, log_path, run_before)


# ---------------------------------------------------------------- what-if insert (i in a log)

ACTION = '{"type": "counter/added", "by": 100}'


async def open_insert(pilot) -> None:
    from tui.dialogs.inject import InjectDialog

    await replay_ready(pilot)
    await pilot.press("j", "j")  # v 3
    await settle(pilot)
    await pilot.press("i")
    await until(pilot, lambda: isinstance(pilot.app.screen, InjectDialog), "insert dialog open")


async def insert(pilot, action: str) -> None:
    """Submit ``action`` in the open insert dialog; until the Diff tab shows the what-if."""
    from tui.widgets.diff_view import DiffView

    app = pilot.app
    await submit(pilot, action)
    await until(
        pilot,
        lambda: (
            app.what_if is not None
            and not app.busy
            and "inserting" in app.query_one(DiffView).plain
        ),
        "the what-if shown",
    )


def test_insert_dialog(snap_compare, log_path) -> None:
    """``i`` on v 3 of a log: the what-if insert dialog, an action typed."""

    async def run_before(pilot) -> None:
        from textual.widgets import Input

        await open_insert(pilot)
        pilot.app.screen.query_one(Input).value = ACTION
        await steady(pilot)

    assert shot(snap_compare, log_path, run_before, reducer=COUNTER)


def test_insert_dialog_refuses_an_action_without_a_type(snap_compare, log_path) -> None:
    async def run_before(pilot) -> None:
        await open_insert(pilot)
        await submit(pilot, '{"by": 1}')
        error = pilot.app.screen.query_one("#error")
        await until(pilot, lambda: "type" in str(error.render()), "the error shown")
        await steady(pilot)

    assert shot(snap_compare, log_path, run_before, reducer=COUNTER)


def test_insert_result_in_the_diff_tab(snap_compare, log_path) -> None:
    """After the insert: the Diff tab shows the downstream change (count 465 → 565)."""

    async def run_before(pilot) -> None:
        await open_insert(pilot)
        await insert(pilot, ACTION)

    assert shot(snap_compare, log_path, run_before, reducer=COUNTER)


def test_insert_dialog_lists_earlier_actions(snap_compare, log_path) -> None:
    """``i`` again after one insert: the dialog lists the action inserted before."""

    async def run_before(pilot) -> None:
        from tui.dialogs.inject import InjectDialog

        await open_insert(pilot)
        await insert(pilot, ACTION)
        await pilot.press("i")
        await until(pilot, lambda: isinstance(pilot.app.screen, InjectDialog), "dialog again")
        await steady(pilot)

    assert shot(snap_compare, log_path, run_before, reducer=COUNTER)
