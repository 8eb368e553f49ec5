"""The rows the event list shows: one value type over events and messages.

A :class:`Row` is built from a store record (:class:`~devtools.model.Event` or
:class:`~devtools.model.Message`) or from a live record (PROTOCOL.md §4); it keeps the record so
the detail tabs can show it. Nothing here touches the terminal or the store.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Literal

from devtools.jsonutil import loads
from devtools.model import Event, Message

RowKind = Literal["event", "message"]


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the event list."""

    kind: RowKind
    key: int
    """``v`` for an event, ``seq`` for a message."""
    type: str | None
    t_ns: int
    sender: str | None
    """The event's ``sender`` or the message's connection id, as text."""
    record: Event | Message

    @property
    def label(self) -> str:
        """``v 12`` or ``#12``: how the row names itself in headers and dialogs."""
        return f"v {self.key}" if self.kind == "event" else f"#{self.key}"

    def data(self) -> Any:
        """The row's JSON value: the event object, or the message's parsed frame (else ``None``)."""
        if isinstance(self.record, Event):
            return self.record.event
        return message_value(self.record)


def message_value(message: Message) -> Any:
    """The message frame parsed as JSON, or ``None`` when it is binary or not JSON."""
    if message.binary or message.flag is not None:
        return None
    try:
        return loads(message.payload)
    except ValueError:
        return None


def event_row(event: Event) -> Row:
    """The row of an event."""
    obj = event.event if isinstance(event.event, dict) else {}
    sender = obj.get("sender")
    t_ns = event.t_ns or _int(obj.get("ts"))
    return Row("event", event.v, event.type, t_ns, None if sender is None else str(sender), event)


def message_row(message: Message) -> Row:
    """The row of a message (the sender is its connection)."""
    return Row("message", message.seq, message.type, message.t_ns, str(message.connection), message)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def event_from_record(record: dict[str, Any]) -> Event:
    """An :class:`Event` from a PROTOCOL.md §4 ``event`` record (live feed)."""
    obj = record.get("event")
    if not isinstance(obj, dict):
        obj = {}
    return Event(
        v=_int(record.get("v")),
        type=str(record.get("type") or obj.get("type") or ""),
        event=obj,
        cause_seq=record.get("cause_seq") if isinstance(record.get("cause_seq"), int) else None,
        hash=record.get("hash") if isinstance(record.get("hash"), str) else None,
        t_ns=_int(record.get("t_ns")) or _int(obj.get("ts")),
    )


def message_from_record(record: dict[str, Any]) -> Message:
    """A :class:`Message` from a PROTOCOL.md §4 ``message`` record (live feed).

    ``data`` (a parsed frame) is re-serialised, ``raw`` kept as text, ``b64`` decoded as binary.
    """
    from devtools.jsonutil import dumps

    binary = False
    flag = record.get("flag") if isinstance(record.get("flag"), str) else None
    if "data" in record:
        payload = dumps(record["data"])
    elif isinstance(record.get("b64"), str):
        try:
            payload = base64.b64decode(record["b64"])
        except ValueError:
            payload = b""
        binary = True
        flag = flag or "binary"
    else:
        payload = str(record.get("raw", "")).encode("utf-8", "surrogatepass")
        flag = flag or "not-json"
    direction = "out" if record.get("dir") == "out" else "in"
    kind = record.get("type")
    return Message(
        seq=_int(record.get("seq")),
        connection=_int(record.get("connection")),
        direction=direction,
        t_ns=_int(record.get("t_ns")),
        type=kind if isinstance(kind, str) else None,
        payload=payload,
        binary=binary,
        flag=flag,
    )
