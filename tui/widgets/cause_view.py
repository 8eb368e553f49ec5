"""The Cause tab: message → event(s) → replies, for the selected event or message, and the
records Logux links to it (an action's ``logux/processed``/``logux/undo`` and back, a ``sync``'s
``synced`` and back)."""

from __future__ import annotations

from rich.text import Text

from devtools.logux_links import Link
from devtools.model import Event, Message
from tui.text import clock, preview, visible
from tui.widgets.diff_view import patch_text
from tui.widgets.textpane import TextPane
from tui.workers import WorkerStates


class CauseView(TextPane):
    """The causal chain around the selected row (filled by the app from a worker)."""

    def show_chain(
        self,
        cause: Message | None,
        events: list[Event],
        replies: list[Message],
        links: list[Link] | None = None,
        workers: WorkerStates | None = None,
    ) -> None:
        """Show the chain; ``links`` (``None``: still being looked up) below it when any;
        ``workers`` (workers disagree at this event) above it."""
        text = Text()
        if workers is not None:
            text.append_text(workers_text(workers))
        text.append("message\n", style="bold")
        if cause is None:
            text.append(
                "  (no recorded cause: injected through the devtools, or not mapped)\n", style="dim"
            )
        else:
            text.append(f"  #{cause.seq} c{cause.connection} {clock(cause.t_ns)} ")
            text.append(visible(cause.type or f"[{cause.flag}]"), style="cyan")
            text.append("\n")
        text.append("  ↓\nevents\n", style="bold")
        if not events:
            text.append("  (none)\n", style="dim")
        for event in events:
            text.append(f"  v {event.v} ")
            text.append(visible(event.type), style="cyan")
            text.append("  " + preview(event.event, 80) + "\n", style="dim")
        text.append("  ↓\nreplies\n", style="bold")
        if not replies:
            text.append("  (none)\n", style="dim")
        for reply in replies:
            text.append(f"  #{reply.seq} → c{reply.connection} ")
            text.append(visible(reply.type or f"[{reply.flag}]"), style="cyan")
            text.append("\n")
        if links:
            text.append("  ↔\nlinked (Logux)\n", style="bold")
        for link in links or ():
            text.append(f"  {link.label:<13}")
            other = link.record
            if isinstance(other, Event):
                text.append(f"v {other.v} ")
                text.append(visible(other.type), style="cyan")
                text.append("  " + preview(other.event, 70) + "\n", style="dim")
            else:
                arrow = "←" if other.direction == "in" else "→"
                text.append(f"#{other.seq} {arrow} c{other.connection} ")
                text.append(visible(other.type or f"[{other.flag}]"), style="cyan")
                text.append("\n")
        self.show(text)


def workers_text(workers: WorkerStates) -> Text:
    """Workers that disagree at this event: who, their hashes, the diff between their states."""
    text = Text()
    for alert in workers.alerts:
        text.append("workers disagree\n", style="bold red")
        text.append("  " + visible(alert.describe()) + "\n", style="red")
        for index, digest in sorted(alert.hashes.items()):
            mark = "≠" if index == alert.worker else "="
            text.append(f"  {mark} worker {index}: {visible(str(digest))}\n", style="dim")
    if workers.patch is not None:
        title = "  diff (reference worker → disagreeing worker)"
        text.append_text(patch_text(title, workers.patch))
    text.append("  " + visible(workers.note) + "\n\n", style="dim")
    return text
