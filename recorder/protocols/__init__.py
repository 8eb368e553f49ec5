"""Protocols that turn client messages into events, for servers without a devtools channel.

The seam: a protocol is a pure object with ``events_from(frame, connection, t_ns)``, taking one
parsed inbound frame (:class:`devtools.frames.ParsedFrame`), the recorder's connection id and the
time the recorder read the frame (integer ns), and returning the event bodies that frame stands
for (zero or more, in order; without ``v``: the session numbers them). No I/O, no state shared
between frames: the session owns numbering, redaction and where records go.

``plain`` (:mod:`recorder.protocols.plain`): every JSON object with a string ``type`` is one
action, as a Redux-style server dispatches it. Another protocol (Logux's array messages) goes
behind the same interface.
"""

from __future__ import annotations

from typing import Any, Protocol

from devtools.errors import BadInput
from devtools.frames import ParsedFrame

EVENTS_FROM = ("inbound",)
"""The values ``rdt record --events-from`` takes."""


class EventProtocol(Protocol):
    """What the session asks of a protocol."""

    name: str

    def events_from(self, frame: ParsedFrame, connection: int, t_ns: int) -> list[dict[str, Any]]:
        """The event bodies (without ``v``) that one inbound frame stands for."""
        ...


def protocol_for(
    events_from: str | None, event_types: tuple[str, ...] = ()
) -> EventProtocol | None:
    """The protocol ``rdt record --events-from`` asks for (``None``: events come from the
    server's devtools channel, or not at all).

    Raises:
        BadInput: an unknown ``--events-from`` value.
    """
    if events_from is None:
        if event_types:
            raise BadInput("--event-types needs --events-from inbound")
        return None
    if events_from not in EVENTS_FROM:
        raise BadInput(f"--events-from must be inbound, not {events_from!r}")
    from recorder.protocols.plain import PlainProtocol

    return PlainProtocol(tuple(event_types))
