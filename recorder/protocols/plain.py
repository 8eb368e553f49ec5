"""The plain protocol: each inbound JSON object with a ``type`` is one action the server
dispatches, in the order the recorder forwarded it.

It assumes what a plain Redux-style websocket server does (``store.dispatch(JSON.parse(data))``
for every message): every such message reaches the reducer as an action, unchanged, in
forwarding order, and nothing else does. A message the server refuses still becomes an event;
narrow with ``--event-types`` globs to the types that are actions.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, ClassVar

from devtools.frames import ParsedFrame, parse_frame


@dataclass(frozen=True, slots=True)
class PlainProtocol:
    """Every typed inbound JSON object (matching one of ``types``, when given) is an event.

    The event is the message's own object with ``ts`` (when the recorder read it, integer ns)
    and ``sender`` (the recorder's connection id) added; the session adds ``v``. A ``ts`` or
    ``sender`` the message already carries is kept as it is (it is what the server's reducer
    received); ``v`` is always the recorder's number.
    """

    types: tuple[str, ...] = ()
    """``fnmatch`` globs over ``type`` (case-sensitive); empty: every type."""
    name: ClassVar[str] = "plain"
    directions: ClassVar[tuple[str, ...]] = ("in",)

    @staticmethod
    def parse(payload: bytes, binary: bool) -> ParsedFrame:
        """The frame as this protocol reads it (:func:`devtools.frames.parse_frame`)."""
        return parse_frame(payload, binary)

    def matches(self, kind: str) -> bool:
        """Whether a message of type ``kind`` stands for an event."""
        return not self.types or any(fnmatchcase(kind, glob) for glob in self.types)

    def events_from(self, frame: ParsedFrame, connection: int, t_ns: int) -> list[dict[str, Any]]:
        """``[event]`` for a valid typed message that matches, else ``[]``."""
        if frame.flag is not None or frame.value is None or frame.type is None:
            return []
        if not self.matches(frame.type):
            return []
        event = dict(frame.value)
        event.setdefault("ts", t_ns)
        event.setdefault("sender", connection)
        return [event]
