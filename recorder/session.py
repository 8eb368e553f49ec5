"""The state of one recording: numbering, connections, the cause map, and where records go.

Pure bookkeeping, run on the event loop: the proxy, the devtools link and the control endpoint
report what happened here, and each record is numbered (a single ``seq`` counter, so ``seq`` is
the order the proxy forwarded the messages), handed to the writer and published to live
subscribers. No I/O happens here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from devtools.frames import parse_frame
from devtools.model import (
    REDACTED,
    Connection,
    Direction,
    Event,
    Gap,
    Mark,
    Message,
    Origin,
    Snapshot,
    Worker,
    WorkerHash,
    WorkerSnapshot,
)
from devtools.schema import EVENTS_FROM
from recorder.protocols import logux_protocol, protocol_for
from recorder.protocols.logux import looks_like_connect
from recorder.records import RawMessage, build_message
from recorder.redact import parse_pointers, redact_everywhere
from recorder.settings import RecorderSettings
from recorder.writer import ClosedConnection, EventFill, ServerInfo


class Session:
    """Numbers and routes every record of one recording.

    Args:
        settings: the recorder's settings (redaction, size limit, clock, run id).
        put: hands a record to the writer (must not block).
        put_message: hands a forwarded message over raw (a
            :data:`~recorder.records.RawMessage`) for the writer to parse and redact (must not
            block; the writer must build rows with the same settings, see
            :func:`recorder.records.row_builder`). ``None``: messages are built here and go
            through ``put``.
    """

    def __init__(
        self,
        settings: RecorderSettings,
        put: Callable[[Any], None],
        put_message: Callable[[RawMessage], None] | None = None,
    ) -> None:
        self.settings = settings
        self._put = put
        self._put_message = put_message
        self._clock = settings.clock
        self._pointers = parse_pointers(settings.redact)
        self._max = settings.max_record_size
        self.seq = 0
        """The last message ``seq`` given out."""
        self.last_v = 0
        """The last event ``v`` recorded."""
        self.connections = 0
        self.messages = 0
        self.events = 0
        self.open: dict[int, Connection] = {}
        self._header_ids: dict[str, int] = {}
        self._in_seqs: dict[int, list[int]] = {}
        self.devtools_cause: int | None = None
        """While a ``via: devtools`` inject is under way: the ``seq`` its events are caused by."""
        self.listeners: set[Callable[[Any], None]] = set()
        """Called with every record as it is made (the control endpoint's live feed)."""
        auto = settings.protocol == "auto"
        self.framing: str | None = None if auto else settings.protocol
        """How messages are typed: ``plain``, ``logux``, or ``None`` until ``--protocol auto``
        has seen the first client frame."""
        self.protocol = protocol_for(
            settings.events_from, settings.event_types, "plain" if auto else settings.protocol
        )
        """With ``--events-from inbound`` or Logux: turns messages into events (else ``None``)."""
        self.server_facts: dict[str, Any] = {}
        """The recorder's own facts, merged into every server info it records."""
        self.underived = 0
        """Inbound frames too large to store, so no event was derived from them."""

    def _emit(self, record: Any) -> None:
        self._put(record)
        for listener in tuple(self.listeners):
            listener(record)

    # --------------------------------------------------------------- connections

    def open_connection(
        self, peer: str, path: str, origin: Origin = "client", *, handshake: dict | None = None
    ) -> Connection:
        """Record a new connection; its id counts 1, 2, 3 …"""
        self.connections += 1
        conn = Connection(self.connections, peer, path, origin, self._clock(), handshake=handshake)
        self.open[conn.id] = conn
        self._in_seqs[conn.id] = []
        self._header_ids[self.header_id(conn.id)] = conn.id
        self._emit(conn)
        return conn

    def header_id(self, conn_id: int) -> str:
        """The ``X-Rdt-Connection`` value sent upstream for connection ``conn_id``."""
        return f"{self.settings.run_id}-{conn_id}"

    def close_connection(self, conn_id: int, code: int | None, reason: str | None) -> None:
        """Record that a connection closed (once; later calls are ignored)."""
        conn = self.open.pop(conn_id, None)
        if conn is None:
            return
        forget = getattr(self.protocol, "forget", None)
        if forget is not None:
            forget(conn_id)
        now = self._clock()
        self._put(ClosedConnection(conn_id, now, code, reason))
        closed = replace(conn, closed_ns=now, close_code=code, close_reason=reason)
        for listener in tuple(self.listeners):
            listener(closed)

    # --------------------------------------------------------------- messages

    def message(self, conn_id: int, direction: Direction, payload: bytes, binary: bool) -> Message:
        """Record one forwarded message and return it (with its ``seq``)."""
        self.seq += 1
        seq = self.seq
        if direction == "in":
            self._in_seqs[conn_id].append(seq)
            if self.framing is None:
                self._detect(payload)
        t_ns = self._clock()
        message = build_message(
            seq,
            conn_id,
            direction,
            t_ns,
            payload,
            binary,
            pointers=self._pointers,
            max_size=self._max,
            framing=self.framing,
        )
        self.messages += 1
        self._emit(message)
        if self.protocol is not None and direction in self._directions:
            self._derive(conn_id, seq, t_ns, payload, binary, direction)
        return message

    def forwarded(self, conn_id: int, direction: Direction, payload: bytes, binary: bool) -> None:
        """Record one forwarded message: the proxy's hot path.

        The message is numbered, stamped and handed over raw; parsing and redaction happen on
        the writer thread. Only while someone listens (the control endpoint's live feed) is
        the record built here, for them.
        """
        put_message = self._put_message
        if put_message is None or self.listeners:
            self.message(conn_id, direction, payload, binary)
            return
        self.seq = seq = self.seq + 1
        if direction == "in":
            self._in_seqs[conn_id].append(seq)
            if self.framing is None:
                self._detect(payload)
        self.messages += 1
        t_ns = self._clock()
        put_message((seq, conn_id, direction, t_ns, payload, binary))
        if self.protocol is not None and direction in self._directions:
            self._derive(conn_id, seq, t_ns, payload, binary, direction)

    @property
    def _directions(self) -> tuple[str, ...]:
        return getattr(self.protocol, "directions", ("in",))

    def _detect(self, payload: bytes) -> None:
        """``--protocol auto``: the first client frame decides (Logux on ``["connect", …]``)."""
        self.framing = "logux" if looks_like_connect(payload) else "plain"
        if self.framing == "logux" and not self.settings.devtools_path:
            self.protocol = logux_protocol()
            facts = {EVENTS_FROM: "messages", "protocol": "logux", "event_types": []}
            self.server_facts.update(facts)
            self.server({})

    def _derive(
        self, conn_id: int, seq: int, t_ns: int, payload: bytes, binary: bool, direction: str
    ) -> None:
        """Number the events the protocol derives from message ``seq`` (redacted)."""
        if self._max is not None and len(payload) > self._max:
            self.underived += 1  # stored as too-large: not parsed on the forwarding loop
            return
        protocol = self.protocol
        assert protocol is not None
        parse = getattr(protocol, "parse", parse_frame)
        derive = getattr(protocol, "derive", None)
        if derive is not None:  # a protocol that may hold a frame back names each event's seq
            derived = derive(parse(payload, binary), conn_id, t_ns, direction, seq)
            found = [(d.body, d.seq) for d in derived]
        else:
            bodies = protocol.events_from(parse(payload, binary), conn_id, t_ns)
            found = [(body, seq) for body in bodies]
        for body, cause_seq in found:
            v = self.last_v + 1
            event = {"v": v, **body}
            event["v"] = v  # the numbering is the recorder's; the message's other fields stay
            value, _ = redact_everywhere(event, self._pointers)
            kind = value.get("type") if isinstance(value.get("type"), str) else ""
            self.events += 1
            self.last_v = v
            self._emit(Event(v, kind, value, cause_seq, None, t_ns))  # t_ns: when it was made

    def too_large(self, conn_id: int, direction: Direction, size: int, binary: bool) -> Message:
        """Record a forwarded message past the size limit: its wire size and ``too-large``."""
        self.seq += 1
        seq = self.seq
        if direction == "in":
            self._in_seqs[conn_id].append(seq)
        now = self._clock()
        record = Message(seq, conn_id, direction, now, None, b"", binary, "too-large", size)
        self.messages += 1
        self._emit(record)
        return record

    def in_seqs(self, conn_id: int) -> list[int]:
        """The ``seq`` of each client message on a connection, in order."""
        return self._in_seqs.get(conn_id, [])

    def cause_seq(self, cause: Any) -> int | None:
        """Map an event's ``cause`` ``{"connection": ID, "n": K}`` to the recorded ``seq``."""
        if not isinstance(cause, dict):
            return None
        conn_id = self._header_ids.get(cause.get("connection"))  # type: ignore[arg-type]
        n = cause.get("n")
        if conn_id is None or not isinstance(n, int) or isinstance(n, bool) or n < 1:
            return None
        seqs = self._in_seqs.get(conn_id, ())
        return seqs[n - 1] if n <= len(seqs) else None

    # --------------------------------------------------------------- server side

    def event(self, v: int, event: dict, cause: Any, hash: str | None) -> Event:
        """Record one server event (redacted), mapping its cause to a message ``seq``."""
        value, _ = redact_everywhere(event, self._pointers)
        kind = value.get("type") if isinstance(value.get("type"), str) else ""
        cause_seq = self.cause_seq(cause)
        if cause_seq is None and cause is None and event.get("sender") == "devtools":
            cause_seq = self.devtools_cause
        record = Event(v, kind, value, cause_seq, hash, self._clock())
        self.events += 1
        self.last_v = max(self.last_v, v)
        self._emit(record)
        return record

    def snapshot(self, v: int, state: Any, hash: str | None) -> Snapshot:
        """Record a snapshot of the state after ``v`` (redacted)."""
        value, _ = redact_everywhere(state, self._pointers)
        record = Snapshot(v, value, hash, self._clock())
        self._emit(record)
        return record

    def server(self, info: dict) -> None:
        """Record the server's ``{"name", "version"}`` (redacted), with the recorder's own
        facts merged in: the ``--events-from`` settings and the ``--redact`` pointers (under
        :data:`REDACTED`, so ``rdt verify`` can say which paths a replay never saw)."""
        value, _ = redact_everywhere(info, self._pointers)
        merged = {**value, **self.server_facts}
        if self.settings.redact:
            merged[REDACTED] = list(self.settings.redact)
        self._put(ServerInfo(merged))

    # --------------------------------------------------------------- several workers

    def worker(self, worker: Worker) -> Worker:
        """Record a worker (again after its hello: the latest row wins)."""
        if worker.server is not None:
            value, _ = redact_everywhere(worker.server, self._pointers)
            worker = replace(worker, server=value)
        self._emit(worker)
        return worker

    def worker_hash(self, report: WorkerHash) -> None:
        """Record one worker's hash after one event (to the log only: not a live record)."""
        if report.event is not None:
            value, _ = redact_everywhere(report.event, self._pointers)
            report = replace(report, event=value)
        self._put(report)

    def worker_snapshot(self, worker: int, v: int, state: Any, hash: str | None) -> WorkerSnapshot:
        """Record a worker's own state after ``v`` (redacted)."""
        value, _ = redact_everywhere(state, self._pointers)
        record = WorkerSnapshot(worker, v, value, hash, self._clock())
        self._emit(record)
        return record

    def fill_event(self, v: int, hash: str | None, cause_seq: int | None) -> None:
        """Complete a stored event's hash or cause where the log has none yet."""
        self._put(EventFill(v, hash, cause_seq))

    def announce(self, record: Any) -> None:
        """Tell live subscribers (the log does not keep ``record``: a workers' divergence is
        derived again from the worker hashes)."""
        for listener in tuple(self.listeners):
            listener(record)

    def gap(self, kind: str, start: int, end: int, reason: str) -> Gap:
        """Record what could not be recorded."""
        record = Gap(kind, start, end, reason, self._clock())  # type: ignore[arg-type]
        self._emit(record)
        return record

    def mark(self, label: str) -> Mark:
        """Put a label after the last message."""
        record = Mark(self.seq, label, self._clock())
        self._emit(record)
        return record
