"""Protocols that turn client messages into events, for servers without a devtools channel.

The seam: a protocol is a pure object with ``events_from(frame, connection, t_ns)``, taking one
parsed inbound frame (:class:`devtools.frames.ParsedFrame`), the recorder's connection id and the
time the recorder read the frame (integer ns), and returning the event bodies that frame stands
for (zero or more, in order; without ``v``: the session numbers them). No I/O, no state shared
between frames: the session owns numbering, redaction and where records go.

``plain`` (:mod:`recorder.protocols.plain`): every JSON object with a string ``type`` is one
action, as a Redux-style server dispatches it. Another protocol (Logux's array messages) goes
behind the same interface.

``logux`` (:mod:`recorder.protocols.logux`): Logux's array messages, typed by their first
element; every action of a ``sync`` (either direction) is an event. A protocol may also have
``directions`` (which message directions it reads, default ``("in",)``), ``parse(payload,
binary)`` (how it parses a frame, default :func:`devtools.frames.parse_frame`) and
``forget(connection)`` (a connection closed). ``events_from`` of a protocol reading both
directions takes ``direction`` too.
"""

from __future__ import annotations

from typing import Any, Protocol

from devtools.errors import BadInput
from devtools.frames import ParsedFrame

EVENTS_FROM = ("inbound",)
"""The values ``rdt record --events-from`` takes."""

PROTOCOLS = ("auto", "plain", "logux")
"""The values ``rdt record --protocol`` takes (``auto``: Logux when a client's first frame is a
``["connect", …]`` array, else plain)."""


class EventProtocol(Protocol):
    """What the session asks of a protocol."""

    name: str

    def events_from(self, frame: ParsedFrame, connection: int, t_ns: int) -> list[dict[str, Any]]:
        """The event bodies (without ``v``) that one inbound frame stands for."""
        ...


def check_protocol(protocol: str) -> str:
    """``protocol`` when it is one of :data:`PROTOCOLS`.

    Raises:
        BadInput: another value.
    """
    if protocol not in PROTOCOLS:
        raise BadInput(f"--protocol must be auto, plain or logux, not {protocol!r}")
    return protocol


def logux_protocol() -> EventProtocol:
    """A fresh Logux protocol (its own ids seen and connection bookkeeping)."""
    from recorder.protocols.logux import LoguxProtocol

    return LoguxProtocol()


def protocol_for(
    events_from: str | None, event_types: tuple[str, ...] = (), protocol: str = "plain"
) -> EventProtocol | None:
    """The protocol ``rdt record --events-from``/``--protocol`` asks for (``None``: events
    come from the server's devtools channel, or not at all, or — with ``auto`` — from the
    protocol the first client frame shows).

    ``--protocol logux`` derives events from ``sync`` messages (Logux servers have no devtools
    channel), with or without ``--events-from inbound``.

    Raises:
        BadInput: an unknown ``--events-from`` or ``--protocol`` value.
    """
    check_protocol(protocol)
    if protocol == "logux":
        if events_from is not None and events_from not in EVENTS_FROM:
            raise BadInput(f"--events-from must be inbound, not {events_from!r}")
        if event_types:
            raise BadInput("--event-types is for the plain protocol, not --protocol logux")
        return logux_protocol()
    if events_from is None:
        if event_types:
            raise BadInput("--event-types needs --events-from inbound")
        return None
    if events_from not in EVENTS_FROM:
        raise BadInput(f"--events-from must be inbound, not {events_from!r}")
    from recorder.protocols.plain import PlainProtocol

    return PlainProtocol(tuple(event_types))
