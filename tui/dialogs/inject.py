"""The inject dialog (live mode): a JSON action, validated, with the history of what was sent.

The history shows every injected action with what it produced (event numbers and replies);
Up/Down in the input recall earlier actions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from devtools.jsonutil import loads
from tui.text import preview, visible


@dataclass(slots=True)
class Injection:
    """One injected action and, once answered, what it produced."""

    text: str
    action: dict[str, Any]
    result: dict[str, Any] | None = None
    error: str | None = None
    inserted_after: int | None = None
    """Set for a what-if insert into a log (never sent): the event it went after."""

    def summary(self) -> str:
        if self.inserted_after is not None:
            return f"what-if: inserted after v {self.inserted_after}"
        if self.error:
            return f"failed: {self.error}"
        if self.result is None:
            return "sent…"
        if not self.result.get("ok", False):
            return f"refused: {self.result.get('error')}"
        events = self.result.get("events") or []
        replies = self.result.get("replies") or []
        return f"events {events or '-'}, {len(replies)} repl{'y' if len(replies) == 1 else 'ies'}"


@dataclass(slots=True)
class InjectHistory:
    """Injected actions, newest last."""

    items: list[Injection] = field(default_factory=list)


def parse_action(text: str) -> dict[str, Any] | str:
    """The action in ``text``, or an error message: a JSON object with a string ``type``."""
    try:
        value = loads(text)
    except ValueError as error:
        return f"not valid JSON: {str(error).splitlines()[0]}"
    if not isinstance(value, dict):
        return "an action must be a JSON object"
    if not isinstance(value.get("type"), str):
        return 'an action needs a string "type"'
    return value


class InjectDialog(ModalScreen[dict[str, Any] | None]):
    """Enter a JSON action; dismissed with the parsed action (or ``None`` on Escape)."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("up", "recall(-1)", "Earlier", show=False),
        Binding("down", "recall(1)", "Later", show=False),
    ]

    DEFAULT_CSS = """
    InjectDialog {
        align: center middle;
    }
    InjectDialog > Vertical {
        width: 100;
        height: auto;
        max-height: 80%;
        border: thick $accent;
        background: $surface;
        padding: 1 2;
    }
    InjectDialog #history {
        height: auto;
        max-height: 16;
    }
    InjectDialog #error {
        color: $error;
    }
    """

    def __init__(
        self, history: InjectHistory, title: str = "Inject an action into the live server"
    ) -> None:
        self.title_text = title
        super().__init__()
        self.history = history
        self._recall = len(history.items)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(self.title_text, style="bold"))
            with VerticalScroll(id="history"):
                yield Static(self._history_text(), id="history-text")
            yield Input(placeholder='{"type": "order/create", "customer": "ACME"}', id="action")
            yield Static(Text(""), id="error")

    def _history_text(self) -> Text:
        text = Text()
        if not self.history.items:
            text.append("no actions yet", style="dim")
        for item in self.history.items[-50:]:
            text.append(preview(item.action, 60), style="cyan")
            text.append("  → " + visible(item.summary()) + "\n")
        return text

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        parsed = parse_action(event.value)
        if isinstance(parsed, str):
            self.query_one("#error", Static).update(Text(parsed))
            return
        self.dismiss(parsed)

    def action_recall(self, step: int) -> None:
        if not self.history.items:
            return
        self._recall = max(0, min(len(self.history.items) - 1, self._recall + step))
        self.query_one(Input).value = self.history.items[self._recall].text

    def action_cancel(self) -> None:
        self.dismiss(None)
