"""The records a log holds, as frozen value types.

A log holds one or more *recordings*; each recording holds the *connections* the proxy saw, the
*messages* it forwarded (numbered ``seq`` 1, 2, 3 … in forwarding order), the server's *events*
(numbered ``v``), *snapshots* of the state, and *marks* and *gaps*. A recording of several
workers (``rdt record --devtools URL …``, ``--bus``) also holds the *workers*, each worker's
state hash after each event (*worker hashes*) and the *worker snapshots* asked for when they
disagreed. These types are what the
store writes and reads, what JSON Lines export writes line by line, and what the recorder's
control endpoint streams. Frames are kept as bytes (``payload``) plus a kind (``binary``):
``text`` is derived and refuses binary frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

REDACTED = "redacted"
"""The key of a recording's ``server`` JSON listing the ``rdt record --redact`` pointers: those
fields (at any depth) were removed from every message, event and snapshot before storing."""

Direction = Literal["in", "out"]
"""``in`` is client → server, ``out`` is server → client."""

Origin = Literal["client", "injected", "devtools"]


@dataclass(frozen=True, slots=True)
class Recording:
    """One recording session of one proxy (or one import)."""

    id: int
    name: str
    started_ns: int
    """Wall clock at the start, integer nanoseconds since the epoch."""
    ended_ns: int | None = None
    upstream: str | None = None
    server: dict[str, Any] | None = None
    """The server's ``{"name", "version"}`` from the devtools hello, when known."""
    format: int = 1


@dataclass(frozen=True, slots=True)
class Connection:
    """One client connection through the proxy (ids count 1, 2, 3 … per recording)."""

    id: int
    peer: str
    path: str
    origin: Origin = "client"
    opened_ns: int = 0
    closed_ns: int | None = None
    close_code: int | None = None
    close_reason: str | None = None
    handshake: dict | None = None
    """What the client's upgrade said: ``target`` (path and query), ``subprotocol``,
    ``extensions``, ``origin``, ``user_agent`` (``None`` for logs written before they were kept,
    and for connections the recorder made itself)."""


@dataclass(frozen=True, slots=True)
class Message:
    """One frame the proxy forwarded, exactly as forwarded."""

    seq: int
    connection: int
    direction: Direction
    t_ns: int
    type: str | None
    """The message ``type`` when the frame parsed as a JSON object with a string type."""
    payload: bytes
    """The frame's bytes (UTF-8 for text frames), or the redacted JSON when redaction applied."""
    binary: bool = False
    flag: str | None = None
    """Why the frame is not a valid message (see :mod:`devtools.frames`), or ``None``."""
    size: int = -1
    """The forwarded frame's length in bytes (``-1``: same as ``len(payload)``)."""

    @property
    def text(self) -> str:
        """The frame as text. Raises ``ValueError`` for binary frames."""
        if self.binary:
            raise ValueError("binary frame has no text")
        return self.payload.decode("utf-8", "surrogateescape")

    @property
    def frame_size(self) -> int:
        return len(self.payload) if self.size < 0 else self.size


@dataclass(frozen=True, slots=True)
class Event:
    """One event as the reducer receives it, numbered ``v`` (1, 2, 3 …, no gaps)."""

    v: int
    type: str
    event: dict[str, Any]
    cause_seq: int | None = None
    """The ``seq`` of the client message that produced it, when the proxy could map it."""
    hash: str | None = None
    """The server's state hash after this event (``sha256:…``), when it sent one."""
    t_ns: int = 0


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The state after event ``v`` (``v = 0``: the initial state)."""

    v: int
    state: Any
    hash: str | None = None
    t_ns: int = 0


@dataclass(frozen=True, slots=True)
class Mark:
    """A label a user put on the timeline, after message ``seq``."""

    seq: int
    label: str
    t_ns: int = 0


@dataclass(frozen=True, slots=True)
class Gap:
    """What could not be recorded: messages ``start..end`` (seq) or events ``start..end`` (v)."""

    kind: Literal["messages", "events"]
    start: int
    end: int
    reason: str
    t_ns: int = 0


@dataclass(frozen=True, slots=True)
class Worker:
    """One worker process whose devtools channel a recording followed (numbered 1, 2, 3 …).

    Worker 1 is the first channel (``--devtools-path`` on the upstream, else the first
    ``--devtools URL``): its hashes are the events' own ``hash``.
    """

    index: int
    url: str | None = None
    """Its devtools channel (a password in it masked); ``None`` when unknown."""
    id: str | None = None
    """The hello's ``server.worker`` (the worker's own id), when it sent one."""
    name: str | None = None
    version: str | None = None
    server: dict[str, Any] | None = None
    """The hello's whole ``server`` object."""

    def describe(self) -> str:
        """``worker 2 (w-b, sales-order 1.0-buggy)``: how messages name it."""
        facts = [x for x in (self.id, " ".join(p for p in (self.name, self.version) if p)) if x]
        return f"worker {self.index}" + (f" ({', '.join(facts)})" if facts else "")


@dataclass(frozen=True, slots=True)
class WorkerHash:
    """What worker ``worker`` reported for event ``v``: its state hash after it."""

    worker: int
    v: int
    hash: str | None
    """``None``: the worker sent the event without a hash (it hashes only every K events)."""
    event: dict[str, Any] | None = None
    """The worker's event object when it differed from the one stored (``None``: the same)."""


@dataclass(frozen=True, slots=True)
class WorkerSnapshot:
    """Worker ``worker``'s state after event ``v`` (its join snapshot, or asked for when it
    disagreed with the others)."""

    worker: int
    v: int
    state: Any
    hash: str | None = None
    t_ns: int = 0


@dataclass(frozen=True, slots=True)
class RecordingSummary:
    """A recording with its counts and time span, as ``rdt ls`` shows it."""

    recording: Recording
    connections: int = 0
    messages: int = 0
    events: int = 0
    snapshots: int = 0
    gaps: int = 0
    first_ns: int | None = None
    last_ns: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
