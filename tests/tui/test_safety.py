"""Hostile strings from a log reach the screen as inert, visible text on every tab.

The corpus (``conftest.CORPUS``) is recorded as message payloads and types, event types and
fields, and snapshot state keys and values; the app must raise no ``MarkupError`` and the
terminal output must hold no raw ESC, BEL or 8-bit CSI coming from the data.
"""

from __future__ import annotations

import pytest
from rich.console import Console
from textual.widgets import TabbedContent

from tests.tui.conftest import CORPUS
from tests.tui.helpers import screen_text, settle, submit, terminal_bytes
from tui.launch import replay_app
from tui.widgets.action_view import ActionView
from tui.widgets.cause_view import CauseView
from tui.widgets.diff_view import DiffView
from tui.widgets.event_list import EventList
from tui.widgets.raw_view import RawView
from tui.widgets.state_view import StateView

pytestmark = pytest.mark.timeout(60)

TABS = ("tab-state", "tab-diff", "tab-action", "tab-raw", "tab-cause")


def assert_inert(app, *, ansi: bool = False) -> None:
    text = screen_text(app)
    for bad in ("\x1b", "\x9b", "\x07", "\u202e", "\x00"):
        assert bad not in text, f"{bad!r} reached the screen"
    if not ansi:
        return
    # the driver adds its own escape codes; none may carry the data's OSC/CSI payloads
    ansi = terminal_bytes(app)
    assert "\x1b]0;pwned" not in ansi and "\x1b]52;" not in ansi and "\x9b" not in ansi


def assert_pane_inert(pane) -> None:
    """Render a pane's ``Text`` as a terminal would receive it: no control from the data."""
    console = Console(width=120, force_terminal=True, color_system="truecolor")
    with console.capture() as capture:
        console.print(pane.text)
    out = capture.get()
    for bad in ("\x1b]", "\x9b", "\x07", "\u202e", "\x00"):
        assert bad not in out, f"{bad!r} reached the terminal from {type(pane).__name__}"


async def test_corpus_is_shown_escaped_on_every_tab_and_kind(corpus_log) -> None:
    app, log = replay_app(corpus_log)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            panes = [app.query_one(kind) for kind in (DiffView, ActionView, RawView, CauseView)]
            for kind in ("event", "message"):
                if app.kind != kind:
                    app.action_toggle_kind()
                    await settle(pilot)
                lst = app.query_one(EventList)
                for index in range(len(lst.source)):
                    lst.move_to(index)
                    await settle(pilot, rounds=1)
                    for tab in TABS:  # draw every tab's content for this row
                        app._render_tab(tab)
                    for pane in panes:
                        assert_pane_inert(pane)
                    tree = app.query_one(StateView)
                    for node in list(tree.root.children):
                        node.expand()
                    assert_inert(app)
            for tab in TABS:  # and the whole screen, tab by tab, alternating the kinds
                app.action_toggle_kind()  # (the "e" key itself is tested in test_app)
                app.query_one(TabbedContent).active = tab
                await settle(pilot, rounds=1)
                assert_inert(app, ansi=True)
            # markup-looking strings are shown literally, not interpreted
            await pilot.press("slash")
            await submit(pilot, "type == '[/bold]'")
            await settle(pilot)
            assert len(app.query_one(EventList).source) == 1
            assert "[/bold]" in screen_text(app)
            text = screen_text(app)
            assert "\\x1b]0;pwned\\x07" in text or "\\u202e" in text or "[/bold]" in text
    finally:
        log.close()


def test_corpus_is_exercised() -> None:
    """Guard: the corpus holds each hostile form the issue lists."""
    joined = "".join(CORPUS)
    for needle in ("\x1b]0;", "\x1b]52;c;", "\x9b", "\u202e", "[link=", "[/bold]", "{'a[0]'}"):
        assert needle in joined
