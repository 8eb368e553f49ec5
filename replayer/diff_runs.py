"""Compare two recorded runs of the same traffic (``rdt diff-runs``): pure, over plain iterables.

Connections are matched in the order they were opened (the client connections of each run,
by id): a replay opens them in the recorded order, so the n-th connection of one run is the
n-th of the other. Per pair, the outbound frames (server → client) are compared in order: the
first frame that differs is reported with a JSON diff of the two payloads (old → new, with the
``--ignore`` pointers left out of both), and the frames one run has beyond the other as missing
or extra; close codes that differ are reported too. Where both runs have events, they are
compared by ``v`` (ignored paths left out), and the state hashes as long as the events so far
are identical byte for byte: once two events differ, even in ignored fields such as a
timestamp, later states differ through them and their hashes say nothing more.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import zip_longest
from typing import Any

from devtools import jsonutil
from devtools.model import Connection, Event, Message
from replayer.diff import diff, equal, split_pointer

WILDCARD = "*"


@dataclass(frozen=True, slots=True)
class Ignore:
    """JSON pointers left out of the comparison; a ``*`` token matches any key or index."""

    paths: tuple[tuple[str, ...], ...] = ()

    @classmethod
    def parse(cls, pointers: Iterable[str]) -> Ignore:
        """Raises ``ValueError`` for a pointer that does not start with ``/``."""
        paths = []
        for pointer in pointers:
            if not pointer.startswith("/"):
                raise ValueError(f"--ignore takes JSON pointers like /ts; got {pointer!r}")
            paths.append(tuple(split_pointer(pointer)))
        return cls(tuple(paths))

    def apply(self, value: Any) -> Any:
        """``value`` without the ignored paths (a copy where something was left out)."""
        for path in self.paths:
            value = _without(value, path)
        return value


def _without(value: Any, path: Sequence[str]) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        keys = list(value) if head == WILDCARD else [head] if head in value else []
        if not keys:
            return value
        out = dict(value)
        for key in keys:
            if rest:
                out[key] = _without(out[key], rest)
            else:
                del out[key]
        return out
    if isinstance(value, list):
        if head == WILDCARD:
            indexes = range(len(value))
        elif head.isdigit() and int(head) < len(value):
            indexes = [int(head)]
        else:
            return value
        if not rest:
            drop = set(indexes)
            return [item for i, item in enumerate(value) if i not in drop]
        out = list(value)
        for i in indexes:
            out[i] = _without(out[i], rest)
        return out
    return value


_NOT_JSON = object()


def _parse(message: Message) -> Any:
    if message.binary:
        return _NOT_JSON
    try:
        return jsonutil.loads(message.payload)
    except ValueError:
        return _NOT_JSON


@dataclass(frozen=True, slots=True)
class FrameDifference:
    """The first outbound frame that differs on a pair of connections."""

    index: int
    """1-based: the n-th frame the server sent on the connection."""
    seq_a: int
    seq_b: int
    type_a: str | None
    type_b: str | None
    patch: list[dict[str, Any]] | None
    """The JSON diff turning A's payload into B's (with old values); ``None``: not both JSON."""
    payload_a: bytes
    payload_b: bytes


@dataclass(frozen=True, slots=True)
class ConnectionDifference:
    """How one pair of matched connections differs (``a``/``b`` ``None``: no such connection)."""

    a: int | None
    b: int | None
    frames_a: int
    frames_b: int
    first: FrameDifference | None = None
    close_a: int | None = None
    close_b: int | None = None

    @property
    def missing(self) -> int:
        """Frames A has beyond the end of B."""
        return max(self.frames_a - self.frames_b, 0)

    @property
    def extra(self) -> int:
        """Frames B has beyond the end of A."""
        return max(self.frames_b - self.frames_a, 0)


@dataclass(frozen=True, slots=True)
class EventDifference:
    """The first ``v`` at which the two runs' events differ."""

    v: int
    kind: str
    """``event`` (the events differ), ``hash`` (the state hashes), ``missing`` (only A has
    it) or ``extra`` (only B has it)."""
    patch: list[dict[str, Any]] | None = None
    hash_a: str | None = None
    hash_b: str | None = None
    type_a: str | None = None
    type_b: str | None = None


@dataclass(frozen=True, slots=True)
class EventComparison:
    compared: int
    difference: EventDifference | None
    hashes_until: int | None
    """The last ``v`` whose hashes were compared (``None``: all of them were)."""


@dataclass(frozen=True, slots=True)
class RunDifference:
    connections: tuple[ConnectionDifference, ...]
    """Only the pairs that differ."""
    compared_connections: int
    compared_frames: int
    events: EventComparison | None
    """``None``: one of the runs has no events."""

    @property
    def same(self) -> bool:
        return not self.connections and (self.events is None or self.events.difference is None)


def client_connections(connections: Iterable[Connection]) -> list[Connection]:
    """The connections a replay replays, in the order they were opened."""
    return sorted((c for c in connections if c.origin == "client"), key=lambda c: c.id)


def pair_connections(
    a: Sequence[Connection], b: Sequence[Connection]
) -> list[tuple[Connection | None, Connection | None]]:
    """The n-th client connection of A with the n-th of B."""
    return list(zip_longest(client_connections(a), client_connections(b)))


def compare_frames(
    a: Connection | None,
    b: Connection | None,
    frames_a: Iterable[Message],
    frames_b: Iterable[Message],
    ignore: Ignore,
) -> tuple[ConnectionDifference | None, int]:
    """Compare one pair's outbound frames; ``(difference or None, frames compared)``."""
    first: FrameDifference | None = None
    count_a = count_b = compared = 0
    for index, (fa, fb) in enumerate(zip_longest(frames_a, frames_b), start=1):
        if fa is not None:
            count_a += 1
        if fb is not None:
            count_b += 1
        if fa is None or fb is None or first is not None:
            continue
        compared += 1
        if fa.payload == fb.payload and fa.binary == fb.binary:
            continue
        va, vb = _parse(fa), _parse(fb)
        if va is not _NOT_JSON and vb is not _NOT_JSON:
            va, vb = ignore.apply(va), ignore.apply(vb)
            if equal(va, vb):
                continue
            patch: list[dict[str, Any]] | None = diff(va, vb, with_old=True)
        else:
            patch = None
        first = FrameDifference(
            index, fa.seq, fb.seq, fa.type, fb.type, patch, fa.payload, fb.payload
        )
    close_a = a.close_code if a is not None else None
    close_b = b.close_code if b is not None else None
    different = (
        a is None or b is None or first is not None or count_a != count_b or close_a != close_b
    )
    if not different:
        return None, compared
    return (
        ConnectionDifference(
            a.id if a else None, b.id if b else None, count_a, count_b, first, close_a, close_b
        ),
        compared,
    )


def compare_events(a: Iterable[Event], b: Iterable[Event], ignore: Ignore) -> EventComparison:
    """The first ``v`` whose event (or state hash) differs between the runs."""
    compared = 0
    hashes = True
    hashes_until: int | None = None
    for ea, eb in zip_longest(a, b):
        if eb is None:
            return EventComparison(
                compared, EventDifference(ea.v, "missing", type_a=ea.type), hashes_until
            )
        if ea is None:
            return EventComparison(
                compared, EventDifference(eb.v, "extra", type_b=eb.type), hashes_until
            )
        compared += 1
        if ea.event != eb.event:
            if hashes:
                hashes, hashes_until = False, ea.v - 1
            va, vb = ignore.apply(ea.event), ignore.apply(eb.event)
            if ea.v != eb.v or not equal(va, vb):
                return EventComparison(
                    compared,
                    EventDifference(
                        ea.v,
                        "event",
                        diff(va, vb, with_old=True),
                        ea.hash,
                        eb.hash,
                        ea.type,
                        eb.type,
                    ),
                    hashes_until,
                )
        elif hashes and ea.hash is not None and eb.hash is not None and ea.hash != eb.hash:
            return EventComparison(
                compared,
                EventDifference(ea.v, "hash", None, ea.hash, eb.hash, ea.type, eb.type),
                hashes_until,
            )
    return EventComparison(compared, None, hashes_until)
