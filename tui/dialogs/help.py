"""The `?` help screen: every key and what it does."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = [
    ("j / ↓, k / ↑", "step to the next / previous row"),
    ("g, G / End", "first / last row (live: G goes to the newest event and follows the tail)"),
    ("/", "filter: a type glob (order/*), sender:GLOB, or an expression (event['total'] < 0)"),
    (":", "jump to an event v (or a message #seq)"),
    ("e", "switch between events and messages"),
    ("z", "fold Logux's ping/pong/synced out of the message list (z again: show them)"),
    ("p", "pin this event: the Diff tab compares against it (p again: unpin)"),
    ("s", "skip this event (what-if): the Diff tab shows the downstream change"),
    ("b", "bisect: the first event after which an expression over state/event holds"),
    ("i", "inject an action (live); in a log: insert one after this event (what-if)"),
    ("m", "mark this row"),
    ("f", "follow the live tail (scrolling up pauses it); the header says how far behind"),
    ("F", "search the history: /pointer, re:REGEX or an expression; the Hits tab lists changes"),
    ("n, N", "next / previous search hit"),
    ("1 – 6", "State, Diff, Action, Raw, Cause, Hits tab (Tab / Shift+Tab move the focus)"),
    ("← / →", "previous / next tab, once the tab bar has the focus"),
    ("PgUp / PgDn", "a page up / down in the list"),
    ("?", "this help"),
    ("q", "quit"),
]


class HelpScreen(ModalScreen[None]):
    """The keys, in a box; any of Escape, q or ? closes it."""

    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
    }
    HelpScreen > Vertical {
        width: 96;
        height: auto;
        border: thick $accent;
        background: $surface;
        padding: 1 2;
    }
    """

    def compose(self) -> ComposeResult:
        text = Text("rdt tui — keys\n\n", style="bold")
        for key, what in KEYS:
            text.append(f"{key:<14}", style="bold cyan")
            text.append(what + "\n")
        with Vertical():
            yield Static(text)

    def action_close(self) -> None:
        self.dismiss(None)
