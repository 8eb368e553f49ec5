"""The header line: mode, position, counts, and what is active (filter, pin, follow, work)."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.reactive import reactive
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
    folded: bool = False
    """Messages of Logux's ping/pong/synced types are hidden (``z``)."""
    pinned: int | None = None
    following: bool | None = None
    """Live mode: following the tail (``False``: paused); ``None`` in replay mode."""
    busy: str | None = None
    newer: int = 0
    """Live mode, paused: rows in the list after the cursor."""
    behind: int | None = None
    """Live mode: records the list does not show yet (queued here, or recorded but not yet
    received); ``None`` while the recorder's count is not known."""
    workers: str | None = None
    """Workers disagree: ``worker 3 disagrees at v=6`` (and how many more)."""


def header_text(info: HeaderInfo | None) -> Text:
    """The header line for ``info`` (recorded strings made visible)."""
    text = Text(no_wrap=True, overflow="ellipsis")
    if info is None:
        return text
    text.append(f" {info.mode} ", style="bold reverse")
    text.append(" " + visible(info.name) + " ", style="bold")
    text.append(f"│ {info.kind} {info.position} ")
    text.append(f"│ events {info.events:,} · messages {info.messages:,} ")
    if info.filter is not None:
        text.append(f"│ filter {visible(info.filter)} ({info.shown:,} shown) ", style="yellow")
    if info.folded:
        shown = "" if info.filter is not None else f" ({info.shown:,} shown)"
        text.append(f"│ ping/pong/synced folded{shown} ", style="yellow")
    if info.pinned is not None:
        text.append(f"│ pinned v {info.pinned} ", style="yellow")
    if info.following:
        if info.behind:
            text.append(f"│ following · {info.behind:,} behind ", style="yellow")
        elif info.behind == 0:
            text.append("│ following · up to date ", style="green")
        else:
            text.append("│ following ", style="green")
    elif info.following is False:
        newer = f"{info.newer:,} newer · " if info.newer else ""
        text.append(f"│ paused · {newer}f/G: follow ", style="red")
    if info.workers:
        text.append(f"│ ⚠ {visible(info.workers)} ", style="bold red")
    if info.busy:
        text.append(f"│ {visible(info.busy)} ", style="bold magenta")
    return text


class HeaderBar(Widget):
    """One line at the top of the screen, drawn from :attr:`info`."""

    DEFAULT_CSS = """
    HeaderBar {
        height: 1;
        background: $panel;
        color: $text;
    }
    """

    info: reactive[HeaderInfo | None] = reactive(None)
    """What the header shows; setting an equal value does not repaint."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)

    @property
    def text(self) -> Text:
        """The line as drawn."""
        return header_text(self.info)

    def show(self, info: HeaderInfo) -> None:
        """Show ``info`` (the same as setting :attr:`info`)."""
        self.info = info

    def render(self) -> Text:
        return header_text(self.info)
