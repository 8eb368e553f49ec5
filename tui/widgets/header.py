"""The header line: mode, position, counts, and what is active (filter, pin, follow, work)."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widget import Widget

from tui.text import visible


@dataclass(frozen=True, slots=True)
class HeaderInfo:
    """What the header shows."""

    mode: str
    name: str
    kind: str
    position: str
    shown: int
    events: int
    messages: int
    filter: str | None = None
    pinned: int | None = None
    following: bool | None = None
    busy: str | None = None


class HeaderBar(Widget):
    """One line at the top of the screen."""

    DEFAULT_CSS = """
    HeaderBar {
        height: 1;
        background: $panel;
        color: $text;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.info: HeaderInfo | None = None
        self.text = Text("")

    def show(self, info: HeaderInfo) -> None:
        if info == self.info:
            return
        self.info = info
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f" {info.mode} ", style="bold reverse")
        text.append(" " + visible(info.name) + " ", style="bold")
        text.append(f"│ {info.kind} {info.position} ")
        text.append(f"│ events {info.events:,} · messages {info.messages:,} ")
        if info.filter is not None:
            text.append(f"│ filter {visible(info.filter)} ({info.shown:,} shown) ", style="yellow")
        if info.pinned is not None:
            text.append(f"│ pinned v {info.pinned} ", style="yellow")
        if info.following is not None:
            text.append(
                "│ following " if info.following else "│ paused (f: follow) ",
                style="green" if info.following else "red",
            )
        if info.busy:
            text.append(f"│ {visible(info.busy)} ", style="bold magenta")
        self.text = text
        self.refresh()

    def render(self) -> Text:
        return self.text
