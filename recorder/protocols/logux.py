"""The Logux protocol: JSON-array messages typed by their first element, sync actions as events.

Logux (``@logux/core``) speaks in arrays: ``["connect", protocol, nodeId, synced, options?]``,
``["connected", protocol, nodeId, [start, end], options?]``, ``["sync", added, action, meta,
…]``, ``["synced", added]``, ``["ping", n]``, ``["pong", n]``, ``["headers", {…}]``,
``["error", kind, options?]``, ``["debug", "error", text]``. :func:`parse_logux` types a frame by
that first element (checked with the shapes ``@logux/core``'s own validator accepts);
a JSON object is typed as in the plain protocol (:func:`devtools.frames.parse_frame`).

Ids and times on the wire are relative to the connection's ``baseTime`` (the server's clock
in ``connected``'s ``[start, end]``: ``end``) and an id may omit the sender's node id. Each
action of a ``sync`` becomes one event with its meta made absolute, as the receiving node
would store it: ``meta.id`` is ``"<time> <nodeId> <seq>"`` and ``meta.time`` is absolute (ms).
An action is an event the first time its id is seen (a server's resend of it to other clients
is the same event). The per-connection bookkeeping (node ids, base time, a ``sync`` held until
``connected`` gives the base time) is in :class:`LoguxProtocol`; :func:`absolute_meta` and
:func:`parse_logux` are pure. Which answer links to which action is
:mod:`devtools.logux_links`'s (the TUI reads it too).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

from devtools.frames import parse_json

MESSAGE_TYPES = (
    "connect",
    "connected",
    "headers",
    "sync",
    "synced",
    "ping",
    "pong",
    "error",
    "debug",
)
"""The Logux message types (a message's first element)."""

FLAGS = ("not-logux", "bad-logux")
"""Flags besides :data:`devtools.frames.FLAGS`: a JSON array that is not a Logux message (its
first element is not one of :data:`MESSAGE_TYPES`); a Logux message of the wrong shape."""

_CONNECT = re.compile(rb'\A\s*\[\s*"connect"\s*,')


def looks_like_connect(payload: bytes | bytearray | memoryview) -> bool:
    """Whether a client's first frame is a Logux ``["connect", …]`` (``--protocol auto``)."""
    return _CONNECT.match(bytes(payload[:64])) is not None


_SPACE = b" \t\r\n"


def may_be_sync(prefix: bytes | bytearray | memoryview) -> bool:
    """From a text message's first bytes, whether it may be a Logux ``sync`` (``False`` only
    when it certainly is not: another first element, or not an array). A message past the
    store limit is kept for its actions only when this holds
    (:class:`recorder.capture.Oversize`)."""
    rest = bytes(prefix).lstrip(_SPACE)
    if not rest:
        return True
    if rest[:1] != b"[":
        return False
    rest = rest[1:].lstrip(_SPACE)
    if not rest:
        return True
    if rest[:1] != b'"':
        return False
    if b"\\" in rest[:6]:  # an escaped first element: only parsing tells
        return True
    if len(rest) < 6:
        return b'"sync"'.startswith(rest)
    return rest.startswith(b'"sync"')


@dataclass(frozen=True, slots=True)
class LoguxFrame:
    """One frame as the Logux protocol reads it."""

    value: Any
    """The message (a list, or a typed object), ``None`` when flagged."""
    type: str | None
    """The message type, ``None`` when flagged."""
    flag: str | None
    """``None`` for a valid message, else a :data:`devtools.frames.FLAGS` or :data:`FLAGS`."""


_NO_TYPE = LoguxFrame(None, None, "no-type")


def _number(value: Any) -> bool:
    kind = type(value)  # the exact types first: a backlog checks hundreds of thousands
    return kind is int or kind is float or (kind is not bool and isinstance(value, int | float))


def _two_numbers(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(map(_number, value))


def _id(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 3
        and _number(value[0])
        and isinstance(value[1], str)
        and _number(value[2])
    )


def _meta(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and _number(value.get("time"))
        and (_number(value.get("id")) or _two_numbers(value.get("id")) or _id(value.get("id")))
    )


def _sync(msg: list) -> bool:
    if len(msg) < 2 or not _number(msg[1]) or len(msg) % 2:
        return False
    for i in range(2, len(msg), 2):
        action, meta = msg[i], msg[i + 1]
        if not isinstance(action, dict) or not isinstance(action.get("type"), str):
            return False
        if not _meta(meta):
            return False
    return True


def _connect(msg: list, third: Any) -> bool:
    return (
        len(msg) in (4, 5)
        and _number(msg[1])
        and isinstance(msg[2], str)
        and third(msg[3])
        and (len(msg) == 4 or isinstance(msg[4], dict))
    )


_VALID = {
    "connect": lambda m: _connect(m, _number),
    "connected": lambda m: _connect(m, _two_numbers),
    "headers": lambda m: len(m) == 2 and isinstance(m[1], dict),
    "sync": _sync,
    "synced": lambda m: len(m) == 2 and _number(m[1]),
    "ping": lambda m: len(m) == 2 and _number(m[1]),
    "pong": lambda m: len(m) == 2 and _number(m[1]),
    "error": lambda m: len(m) in (2, 3) and isinstance(m[1], str),
    "debug": lambda m: len(m) == 3 and m[1] == "error" and isinstance(m[2], str),
}


def parse_logux(
    payload: bytes | bytearray | memoryview | str, binary: bool = False, *, max_depth: int = 512
) -> LoguxFrame:
    """Type one frame as Logux; never raises on bad input.

    A JSON array is typed by its first element (flag ``not-logux`` when that is not a Logux
    message type, ``bad-logux`` when the message has the wrong shape); a JSON object as in
    :func:`~devtools.frames.parse_frame`; every other flag (``binary``, ``not-json``, …) is
    :func:`~devtools.frames.parse_frame`'s.
    """
    parsed = parse_json(payload, binary, max_depth=max_depth)
    value = parsed.value
    if parsed.flag is not None:
        return LoguxFrame(None, None, parsed.flag)
    if type(value) is dict:  # a plain message, typed as parse_frame types it
        kind = value.get("type")
        return LoguxFrame(value, kind, None) if type(kind) is str else _NO_TYPE
    if not isinstance(value, list) or not value or value[0] not in _VALID:
        return LoguxFrame(None, None, "not-logux")
    name = value[0]
    if not _VALID[name](value):
        return LoguxFrame(None, None, "bad-logux")
    return LoguxFrame(value, name, None)


def absolute_meta(meta: dict[str, Any], base_time: int | float, sender_node: str) -> dict[str, Any]:
    """A sync action's meta as the receiving node stores it (``@logux/core``'s
    ``syncMessage``): the id ``"<time> <node> <seq>"`` and the time absolute.

    Args:
        meta: the meta as it was on the wire (valid: see ``parse_logux``).
        base_time: the connection's ``baseTime`` (ms).
        sender_node: the node id of the side that sent the ``sync``.
    """
    wire = meta["id"]
    if _number(wire):
        ident = f"{_ms(wire + base_time)} {sender_node} 0"
    elif len(wire) == 2:
        ident = f"{_ms(wire[0] + base_time)} {sender_node} {_ms(wire[1])}"
    else:
        ident = f"{_ms(wire[0] + base_time)} {wire[1]} {_ms(wire[2])}"
    return {**meta, "id": ident, "time": meta["time"] + base_time}


def _ms(value: int | float) -> str:
    if type(value) is int:
        return int.__repr__(value)
    return str(int(value)) if float(value).is_integer() else str(value)


HOLD_LIMIT = 256
"""The most ``sync`` frames held for one connection while it waits for ``connected``."""


@dataclass(frozen=True, slots=True)
class Derived:
    """One event a frame stands for, with the message it came from."""

    body: dict[str, Any]
    """The event (without ``v``)."""
    seq: int
    """The ``seq`` of the ``sync`` message that carried the action (its ``cause_seq``; its
    read time is the body's ``ts``)."""


@dataclass(frozen=True, slots=True)
class _Held:
    msg: list
    seq: int
    t_ns: int
    direction: str


@dataclass(slots=True)
class _Peer:
    client_node: str = "?"
    server_node: str = "?"
    base_time: int | float = 0
    connected: bool = False
    """Whether ``connected`` went by: until then the base time is unknown."""
    held: list[_Held] = field(default_factory=list)
    """``sync`` frames seen before ``connected``, derived once it arrives."""


@dataclass(slots=True)
class LoguxProtocol:
    """Events from Logux ``sync`` messages, both directions, each action once by its id.

    Each event is the action object with its absolute meta under ``meta`` (see
    :func:`absolute_meta`), ``ts`` (when the recorder read the frame, integer ns) and
    ``sender`` (the recorder's connection id) added; the session adds ``v`` in the order the
    recorder first saw the actions. Not thread-safe: the session calls it on its loop.

    A ``sync`` before the connection's ``connected`` (a client may send it only after, but the
    recorder sees what comes) is held until ``connected`` arrives and then derived with that
    base time — what a Logux node does, too: it queues every message that comes before
    authentication and reads it after, relative to the ``baseTime`` its ``connected`` carries.
    A connection that closes without ``connected`` had its held actions refused by the server:
    they become no events (:attr:`dropped` counts them).
    """

    name: ClassVar[str] = "logux"
    directions: ClassVar[tuple[str, ...]] = ("in", "out")
    _peers: dict[int, _Peer] = field(default_factory=dict)
    _seen: set[str] = field(default_factory=set)
    dropped: int = 0
    """Actions of ``sync`` frames never derived: their connection closed before ``connected``,
    or more than :data:`HOLD_LIMIT` frames waited for it."""

    @staticmethod
    def parse(payload: bytes, binary: bool) -> LoguxFrame:
        """The frame as this protocol reads it (:func:`parse_logux`)."""
        return parse_logux(payload, binary)

    def events_from(
        self, frame: LoguxFrame, connection: int, t_ns: int, direction: str = "in"
    ) -> list[dict[str, Any]]:
        """The event bodies (without ``v``) of one frame (:meth:`derive` without the ``seq``)."""
        return [d.body for d in self.derive(frame, connection, t_ns, direction)]

    def derive(
        self, frame: LoguxFrame, connection: int, t_ns: int, direction: str = "in", seq: int = 0
    ) -> list[Derived]:
        """The events of one frame (message ``seq``): one per action first seen in a ``sync``.

        ``connect`` and ``connected`` set the connection's node ids and base time; a
        ``connected`` also gives the events of the ``sync`` frames held before it. A ``sync``
        frame's value is consumed: its action objects become the events' bodies.
        """
        if frame.flag is not None or not isinstance(frame.value, list):
            return []
        msg = frame.value
        peer = self._peers.setdefault(connection, _Peer())
        kind = frame.type
        if kind == "connect" and direction == "in":
            peer.client_node = msg[2]
        elif kind == "connected" and direction == "out":
            peer.server_node = msg[2]
            peer.base_time = msg[3][1]
            peer.connected = True
            held, peer.held = peer.held, []
            return [
                d
                for h in held
                for d in self._actions(peer, h.msg, connection, h.seq, h.t_ns, h.direction)
            ]
        if kind != "sync":
            return []
        if not peer.connected:
            if len(peer.held) < HOLD_LIMIT:
                peer.held.append(_Held(msg, seq, t_ns, direction))
            else:
                self.dropped += (len(msg) - 2) // 2
            return []
        return self._actions(peer, msg, connection, seq, t_ns, direction)

    def _actions(
        self, peer: _Peer, msg: list, connection: int, seq: int, t_ns: int, direction: str
    ) -> list[Derived]:
        sender = peer.client_node if direction == "in" else peer.server_node
        found: list[Derived] = []
        seen = self._seen
        for i in range(2, len(msg), 2):
            # The frame is this protocol's to consume: each action object becomes its event
            # (no copy), and the frame lets go of it, so a backlog of 100,000 actions is held
            # once, not twice.
            event, wire = msg[i], msg[i + 1]
            msg[i] = msg[i + 1] = None
            meta = absolute_meta(wire, peer.base_time, sender)
            if meta["id"] in seen:
                continue
            seen.add(meta["id"])
            event["meta"] = meta
            event.setdefault("ts", t_ns)
            event.setdefault("sender", connection)
            found.append(Derived(event, seq))
        return found

    def forget(self, connection: int) -> None:
        """A connection closed: drop its bookkeeping (the ids seen stay)."""
        peer = self._peers.pop(connection, None)
        if peer is not None:
            self.dropped += sum((len(h.msg) - 2) // 2 for h in peer.held)
