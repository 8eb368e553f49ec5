"""Snapshots of the main screens (pytest-textual-snapshot), from fixed logs with fixed times.

Refresh with ``pytest tests/tui/test_snapshots.py --snapshot-update`` when a screen changes on
purpose; never edit the SVGs by hand. The logs are written into a fixed-name folder so no
temporary path reaches the screen, and every time shown comes from the factories' clock.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import factories as f
from tui.app import RdtApp
from tui.rowsource import LogTimeline

pytestmark = pytest.mark.timeout(60)

SIZE = (120, 40)


class SnapApp(RdtApp):
    """The app over a log that it opens (and closes) itself."""

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


async def _wait(pilot) -> None:
    from tests.tui.helpers import settle

    await settle(pilot)


def test_replay_screen_state_tab(snap_compare, log_path) -> None:
    async def run_before(pilot) -> None:
        await _wait(pilot)
        await pilot.press("j", "j", "j", "j")  # v 5 has a snapshot
        await _wait(pilot)

    assert snap_compare(SnapApp(log_path), terminal_size=SIZE, run_before=run_before)


def test_replay_screen_messages_raw_tab(snap_compare, log_path) -> None:
    async def run_before(pilot) -> None:
        from textual.widgets import TabbedContent

        await _wait(pilot)
        await pilot.press("e", "j", "j", "j")
        pilot.app.query_one(TabbedContent).active = "tab-raw"
        await _wait(pilot)

    assert snap_compare(SnapApp(log_path), terminal_size=SIZE, run_before=run_before)


def test_help_screen(snap_compare, log_path) -> None:
    async def run_before(pilot) -> None:
        await _wait(pilot)
        await pilot.press("question_mark")
        await _wait(pilot)

    assert snap_compare(SnapApp(log_path), terminal_size=SIZE, run_before=run_before)


COUNTER = str(Path(f.__file__)) + ":counter_reducer"


async def _replay_ready(pilot) -> None:
    for _ in range(100):
        await _wait(pilot)
        if pilot.app.replay is not None:
            return


@pytest.mark.parametrize("key", ["2", "3", "4", "5"], ids=["diff", "action", "raw", "cause"])
def test_replay_screen_tab(snap_compare, log_path, key) -> None:
    """Each detail tab, switched to with its number key, at v 6 (replayed: no snapshot)."""

    async def run_before(pilot) -> None:
        await _replay_ready(pilot)
        await pilot.press("j", "j", "j", "j", "j", key)
        await _wait(pilot)

    assert snap_compare(
        SnapApp(log_path, reducer=COUNTER), terminal_size=SIZE, run_before=run_before
    )


def test_search_hits_tab(snap_compare, log_path) -> None:
    async def run_before(pilot) -> None:
        from tests.tui.helpers import submit

        await _replay_ready(pilot)
        await pilot.press("F")
        await submit(pilot, "state['count'] % 2 == 1")
        for _ in range(50):
            await _wait(pilot)
            if pilot.app.search_query is not None and not pilot.app.busy:
                break
        await pilot.press("n", "n")
        await _wait(pilot)

    assert snap_compare(
        SnapApp(log_path, reducer=COUNTER), terminal_size=SIZE, run_before=run_before
    )
