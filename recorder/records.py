"""Pure record building: captured frames into :class:`~devtools.model.Message` values, and
every record into its PROTOCOL.md §4 JSON Lines shape for the control endpoint's stream."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from devtools import jsonutil
from devtools.frames import frame_kind, parse_frame
from devtools.model import Direction, Message
from recorder.redact import Pointer, redact_everywhere

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
    framing: str | None = None,
) -> MessageRow:
    """The log row of one forwarded message (see :func:`build_message` for the rules).

    ``framing`` ``"logux"`` types the frame with
    :func:`recorder.protocols.logux.parse_logux` (a Logux array's type is its first element);
    anything else with :func:`devtools.frames.parse_frame`.
    """
    size = len(payload)
    if max_size is not None and size > max_size:
        return (seq, connection, direction, t_ns, None, b"", binary, "too-large", size)
    parsed: Any
    if framing == "logux":
        from recorder.protocols.logux import parse_logux

        parsed = parse_logux(payload, binary)
    elif not pointers:  # the common row: no value needed
        kind, flag = frame_kind(payload, binary)
        return (seq, connection, direction, t_ns, kind, payload, binary, flag, -1)
    else:
        parsed = parse_frame(payload, binary)
    if not pointers:
        return (seq, connection, direction, t_ns, parsed.type, payload, binary, parsed.flag, -1)
    if parsed.flag is not None:
        return (seq, connection, direction, t_ns, None, b"", binary, parsed.flag, size)
    value, _ = redact_everywhere(parsed.value, pointers)
    if isinstance(value, list):
        kept = value[0] if value and isinstance(value[0], str) else None
    else:
        kept = value.get("type") if isinstance(value.get("type"), str) else None
    stored = jsonutil.dumps(value)
    flag = None if kept is not None else "no-type"
    return (seq, connection, direction, t_ns, kept, stored, False, flag, size)


def row_builder(
    pointers: Sequence[Pointer] = (),
    max_size: int | None = None,
    framing: Callable[[], str | None] | None = None,
) -> Callable[[RawMessage], MessageRow]:
    """A function turning a :data:`RawMessage` into its :data:`MessageRow` (the writer thread
    runs it, so parsing and redaction stay off the forwarding loop).

    ``framing``: asked for each row, the recording's protocol (``"logux"``, ``"plain"`` or
    ``None`` while ``--protocol auto`` has not decided; see :func:`message_row`).
    """

    def build(raw: RawMessage) -> MessageRow:
        return message_row(*raw, pointers, max_size, framing() if framing else None)

    if pointers or max_size is not None:
        return build

    def build_plain(raw: RawMessage) -> MessageRow:
        # message_row without redaction or size limit, one call less per row (the hot path)
        if framing is not None and framing() == "logux":
            return message_row(*raw, (), None, "logux")
        seq, connection, direction, t_ns, payload, binary = raw
        kind, flag = frame_kind(payload, binary)
        return (seq, connection, direction, t_ns, kind, payload, binary, flag, -1)

    return build_plain


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
    framing: str | None = None,
) -> Message:
    """The log record of one forwarded message.

    A valid message keeps its exact bytes, unless redaction is on: then the parsed object is
    stored re-serialised without the redacted fields (so a duplicate key cannot smuggle a
    secret past it), and a frame that does not parse is stored as its length and flag only.
    A frame longer than ``max_size`` is stored as its length and the flag ``too-large``.
    """
    return Message(
        *message_row(seq, connection, direction, t_ns, payload, binary, pointers, max_size, framing)
    )
