"""Pure record building: captured frames into :class:`~devtools.model.Message` values, and
every record into its PROTOCOL.md §4 JSON Lines shape for the control endpoint's stream."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any

from devtools import jsonutil
from devtools.frames import parse_frame
from devtools.model import Connection, Direction, Event, Gap, Mark, Message, Snapshot
from recorder.redact import Pointer, redact

MessageRow = tuple
"""A message in :class:`~devtools.model.Message` field order:
``(seq, connection, direction, t_ns, type, payload, binary, flag, size)``."""

RawMessage = tuple
"""A forwarded message as the proxy hands it over: ``(seq, connection, direction, t_ns,
payload, binary)`` — numbered and stamped, not parsed yet."""


def message_row(
    seq: int,
    connection: int,
    direction: Direction,
    t_ns: int,
    payload: bytes,
    binary: bool,
    pointers: Sequence[Pointer] = (),
    max_size: int | None = None,
) -> MessageRow:
    """The log row of one forwarded message (see :func:`build_message` for the rules)."""
    size = len(payload)
    if max_size is not None and size > max_size:
        return (seq, connection, direction, t_ns, None, b"", binary, "too-large", size)
    parsed = parse_frame(payload, binary)
    if not pointers:
        return (seq, connection, direction, t_ns, parsed.type, payload, binary, parsed.flag, -1)
    if parsed.flag is not None:
        return (seq, connection, direction, t_ns, None, b"", binary, parsed.flag, size)
    value, _ = redact(parsed.value, pointers)
    kept = value.get("type") if isinstance(value.get("type"), str) else None
    stored = jsonutil.dumps(value)
    flag = None if kept is not None else "no-type"
    return (seq, connection, direction, t_ns, kept, stored, False, flag, size)


def row_builder(
    pointers: Sequence[Pointer] = (), max_size: int | None = None
) -> Callable[[RawMessage], MessageRow]:
    """A function turning a :data:`RawMessage` into its :data:`MessageRow` (the writer thread
    runs it, so parsing and redaction stay off the forwarding loop)."""

    def build(raw: RawMessage) -> MessageRow:
        return message_row(*raw, pointers, max_size)

    return build


def build_message(
    seq: int,
    connection: int,
    direction: Direction,
    t_ns: int,
    payload: bytes,
    binary: bool,
    *,
    pointers: Sequence[Pointer] = (),
    max_size: int | None = None,
) -> Message:
    """The log record of one forwarded message.

    A valid message keeps its exact bytes, unless redaction is on: then the parsed object is
    stored re-serialised without the redacted fields (so a duplicate key cannot smuggle a
    secret past it), and a frame that does not parse is stored as its length and flag only.
    A frame longer than ``max_size`` is stored as its length and the flag ``too-large``.
    """
    return Message(
        *message_row(seq, connection, direction, t_ns, payload, binary, pointers, max_size)
    )


def message_json(message: Message) -> dict[str, Any]:
    """A message as a §4 record: ``data`` (valid JSON), ``raw`` (text) or ``b64`` (binary)."""
    record: dict[str, Any] = {
        "kind": "message",
        "seq": message.seq,
        "connection": message.connection,
        "dir": message.direction,
        "t_ns": message.t_ns,
        "type": message.type,
    }
    if message.flag is not None:
        record["flag"] = message.flag
    if message.size >= 0 and message.size != len(message.payload):
        record["size"] = message.size
    if message.binary:
        record["b64"] = base64.b64encode(message.payload).decode("ascii")
    elif message.flag is None:
        record["data"] = jsonutil.loads(message.payload)
    else:
        record["raw"] = message.payload.decode("utf-8", "replace")
    return record


def record_json(record: object) -> dict[str, Any]:
    """Any record the recorder produces, as its §4 JSON object."""
    if isinstance(record, Message):
        return message_json(record)
    if isinstance(record, Event):
        return {
            "kind": "event",
            "v": record.v,
            "type": record.type,
            "event": record.event,
            "cause_seq": record.cause_seq,
            "hash": record.hash,
            "t_ns": record.t_ns,
        }
    if isinstance(record, Connection):
        out: dict[str, Any] = {
            "kind": "connection",
            "id": record.id,
            "peer": record.peer,
            "path": record.path,
            "origin": record.origin,
            "opened_ns": record.opened_ns,
        }
        if record.closed_ns is not None:
            out.update(
                closed_ns=record.closed_ns,
                close_code=record.close_code,
                close_reason=record.close_reason,
            )
        return out
    if isinstance(record, Snapshot):
        return {
            "kind": "snapshot",
            "v": record.v,
            "state": record.state,
            "hash": record.hash,
            "t_ns": record.t_ns,
        }
    if isinstance(record, Mark):
        return {"kind": "mark", "seq": record.seq, "label": record.label, "t_ns": record.t_ns}
    if isinstance(record, Gap):
        key = ("from_seq", "to_seq") if record.kind == "messages" else ("from_v", "to_v")
        return {
            "kind": "gap",
            key[0]: record.start,
            key[1]: record.end,
            "reason": record.reason,
            "t_ns": record.t_ns,
        }
    raise TypeError(f"not a record: {type(record).__name__}")
