"""Small helpers for driving the app under ``run_test``."""

from __future__ import annotations

import contextlib
from typing import Any


async def settle(pilot: Any, rounds: int = 3) -> None:
    """Let workers finish and the screen catch up.

    Waits on the conditions themselves (workers done, message queues empty) rather than on
    ``pilot.pause()``, whose "process idle" heuristic waits up to a second per call on a busy
    machine.
    """
    from textual.worker import WorkerCancelled

    app = pilot.app
    for _ in range(rounds):
        busy = [w for w in app.workers if w.group not in ("live", "control")]
        if busy:  # (an empty list would mean "every worker", the endless live feed too)
            with contextlib.suppress(WorkerCancelled):  # replaced by a newer exclusive worker
                await app.workers.wait_for_complete(busy)
        for _ in range(200):  # the handlers those workers' answers and the keys set off
            await pilot.pause(0.005)
            if not any(node._message_queue.qsize() for node in app.screen.walk_children()):
                break
        await pilot.pause(0.005)


def screen_text(app: Any) -> str:
    """The text of every cell on screen (what the terminal would be sent, without styles)."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(segment.text for segment in strip) for strip in strips)


def terminal_bytes(app: Any) -> str:
    """The whole screen as the driver would write it to the terminal (escape codes included)."""
    update = app.screen._compositor.render_full_update()
    return update.render_segments(app.console)


async def submit(pilot: Any, text: str) -> None:
    """Put ``text`` in the open dialog's input and press Enter (typing key by key is slow)."""
    from textual.widgets import Input

    pilot.app.screen.query_one(Input).value = text
    await pilot.press("enter")


async def show_tab(pilot: Any, tab: str) -> None:
    """Make ``tab`` (``tab-state``, ``tab-diff``, …) the visible tab; only it is drawn."""
    from textual.widgets import TabbedContent

    pilot.app.query_one(TabbedContent).active = tab
    await settle(pilot)
