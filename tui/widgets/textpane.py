"""A scrollable pane that shows one ``Text`` (the base of the Action, Raw, Diff and Cause tabs)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static


class TextPane(VerticalScroll):
    """A scrollable ``Text``. :meth:`show` takes ``Text`` only: recorded data is never markup."""

    DEFAULT_CSS = """
    TextPane > Static {
        width: auto;
        min-width: 100%;
    }
    """

    def __init__(self, placeholder: str = "", *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._initial = Text(placeholder, style="dim")
        self.text: Text = self._initial

    def compose(self) -> ComposeResult:
        yield Static(self._initial, markup=False)

    def show(self, text: Text) -> None:
        """Replace the pane's content with ``text``."""
        self.text = text
        self.query_one(Static).update(text)
        self.scroll_home(animate=False)

    @property
    def plain(self) -> str:
        """What the pane shows, as plain text (for tests)."""
        return self.text.plain
