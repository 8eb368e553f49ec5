"""The Raw tab: the frame as forwarded: direction, connection, size, flags; binary as hex."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from devtools.jsonutil import loads
from devtools.model import Event, Message
from tui.rows import Row
from tui.text import hex_dump, json_text, safe_text, visible
from tui.widgets.textpane import TextPane

MAX_RAW = 100_000


class RawView(TextPane):
    """The selected message's frame (for an event: the message that caused it, when known)."""

    def show_row(self, row: Row | None, cause: Message | None = None) -> None:
        if row is None:
            self.show(Text("nothing selected", style="dim"))
            return
        record: Any = row.record
        if isinstance(record, Event):
            text = Text(f"event v {record.v}", style="bold")
            text.append(f"\nhash       {visible(record.hash or '-')}")
            text.append(f"\ncause seq  {record.cause_seq if record.cause_seq else '-'}")
            if cause is None:
                self.show(text)
                return
            text.append("\n\ncaused by:\n", style="bold")
            self.show(text + frame_text(cause))
            return
        self.show(frame_text(record))


def _pretty(payload: bytes) -> Text | None:
    """The frame as indented JSON on real lines when it is JSON, else ``None``."""
    try:
        value = loads(payload)
    except ValueError:
        return None
    return json_text(value)


def frame_text(message: Message) -> Text:
    """A message's metadata and its frame (text sanitised, binary as a hex dump)."""
    arrow = "client → server" if message.direction == "in" else "server → client"
    text = Text()
    text.append(f"message #{message.seq}\n", style="bold")
    text.append(f"direction  {message.direction} ({arrow})\n")
    text.append(f"connection {message.connection}\n")
    text.append(f"size       {message.frame_size:,} bytes\n")
    text.append(f"kind       {'binary' if message.binary else 'text'}\n")
    text.append(f"flags      {visible(message.flag) if message.flag else '-'}\n\n")
    if message.binary:
        return text + hex_dump(message.payload)
    pretty = _pretty(message.payload) if len(message.payload) <= MAX_RAW else None
    if pretty is not None:
        return text + pretty
    body = message.payload[:MAX_RAW].decode("utf-8", "backslashreplace")
    text.append_text(safe_text(body))
    if len(message.payload) > MAX_RAW:
        text.append(f"\n… {len(message.payload) - MAX_RAW:,} more bytes", style="dim")
    return text
