"""The queueing writer: the forward path hands records over without ever waiting on the store.

Records go into a bounded in-memory queue (a ``deque``; appending is lock-free for the event
loop). Forwarded messages arrive raw (:data:`~recorder.records.RawMessage`: numbered and stamped,
nothing else), so the event loop never parses: the writer thread turns them into rows (parsing,
flags, redaction) as it drains the queue, at least every ``interval`` seconds, and writes each
batch in one transaction through a :class:`devtools.store.LogWriter`-like *sink*. The queue is
bounded twice: in records (``limit``) and in bytes (``max_bytes``, 64 MiB by default: a message
counts its payload plus :data:`RECORD_OVERHEAD`, any other record :data:`RECORD_OVERHEAD`). When
the queue is full, a row cannot be built, or the store fails, the messages and events that
could not be written are counted, reported on stderr, and recorded as
:class:`~devtools.model.Gap` records (with counts)
as soon as the store works again — never silently lost.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from devtools.model import (
    Connection,
    Event,
    Gap,
    Mark,
    Message,
    Snapshot,
    Worker,
    WorkerHash,
    WorkerSnapshot,
)
from recorder.records import MessageRow, RawMessage, row_builder

DEFAULT_MAX_QUEUE_BYTES = 64 * 1024 * 1024
"""The writer queue's default bound in bytes (``rdt record --max-queue-bytes``)."""

RECORD_OVERHEAD = 256
"""Bytes a queued record is counted for beyond its payload (the tuple or value holding it)."""


def queued_size(record: Any) -> int:
    """The bytes ``record`` is counted for in the queue (the same on both threads)."""
    kind = type(record)
    if kind is tuple:
        return len(record[4]) + RECORD_OVERHEAD
    if kind is Message:
        return len(record.payload) + RECORD_OVERHEAD
    return RECORD_OVERHEAD


class Sink(Protocol):
    """What the writer needs from a store (``devtools.store.LogWriter`` is one)."""

    def add_connection(self, conn: Connection) -> None: ...
    def close_connection(
        self, conn_id: int, *, closed_ns: int, code: int | None, reason: str | None
    ) -> None: ...
    def add_messages(self, messages: Any) -> None: ...
    # Optional: ``add_message_rows(rows)`` taking Message-ordered tuples (used when the sink's
    # class defines it; otherwise rows are turned into Message values for add_messages).
    def add_events(self, events: Any) -> None: ...
    def add_snapshot(self, snapshot: Snapshot) -> None: ...
    def add_mark(self, mark: Mark) -> None: ...
    def add_gap(self, gap: Gap) -> None: ...
    def set_server(self, server: dict) -> None: ...
    # Several workers (optional: only a recording of several workers queues them):
    # add_worker(worker), add_worker_hashes(hashes), add_worker_snapshot(snapshot),
    # fill_events([(v, hash, cause_seq)]).
    def flush(self) -> None: ...
    def close(self, *, ended_ns: int | None = None) -> None: ...


class _Range:
    """A run of seq (or v) numbers that could not be recorded."""

    __slots__ = ("end", "start")

    def __init__(self, start: int) -> None:
        self.start = self.end = start

    def add(self, n: int) -> None:
        self.start = min(self.start, n)
        self.end = max(self.end, n)


class ClosedConnection:
    """A queued ``close_connection`` call."""

    __slots__ = ("closed_ns", "code", "conn_id", "reason")

    def __init__(self, conn_id: int, closed_ns: int, code: int | None, reason: str | None):
        self.conn_id, self.closed_ns, self.code, self.reason = conn_id, closed_ns, code, reason


class EventFill:
    """A queued ``fill_events`` row: a stored event's hash or cause, known later."""

    __slots__ = ("cause_seq", "hash", "v")

    def __init__(self, v: int, hash: str | None, cause_seq: int | None) -> None:
        self.v, self.hash, self.cause_seq = v, hash, cause_seq


class ServerInfo:
    """A queued ``set_server`` call."""

    __slots__ = ("server",)

    def __init__(self, server: dict) -> None:
        self.server = server


class QueueingWriter:
    """Runs a sink on its own thread behind a bounded queue.

    Args:
        open_sink: called on the writer thread to open the store; its errors are raised by
            :meth:`start`.
        interval: seconds between flushes.
        limit: the most records held; beyond it messages and events are dropped into a gap.
        max_bytes: the most bytes held (see :func:`queued_size`); beyond it too.
        clock: wall clock in ns (for gap records).
        warn: where one-line warnings go (default: stderr).
        build_row: turns a raw message into its row on the writer thread (default: parse,
            no redaction, no size limit; see :func:`recorder.records.row_builder`).
    """

    def __init__(
        self,
        open_sink: Callable[[], Sink],
        *,
        interval: float = 0.05,
        limit: int = 200_000,
        max_bytes: int = DEFAULT_MAX_QUEUE_BYTES,
        clock: Callable[[], int] = time.time_ns,
        warn: Callable[[str], None] | None = None,
        build_row: Callable[[RawMessage], MessageRow] | None = None,
    ) -> None:
        self._build_row = build_row or row_builder()
        self._open_sink = open_sink
        self._interval = interval
        self._limit = limit
        self.max_bytes = max_bytes
        self._in_bytes = 0  # added by the event loop only
        self._out_bytes = 0  # added by the writer thread only: held = in - out
        self.peak_bytes = 0
        """The most bytes the queue held at once."""
        self._clock = clock
        self._warn = warn or (lambda line: print(f"rdt: {line}", file=sys.stderr, flush=True))
        self._queue: deque[Any] = deque()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._open_error: BaseException | None = None
        self._flushed = threading.Condition()
        self._flush_gen = 0
        self._sink: Sink | None = None
        self._oldest_ns: float | None = None
        self._dropped_msgs: _Range | None = None
        self._dropped_events: _Range | None = None
        self._dropping = False
        self._pending_gaps: list[Gap] = []
        self.written = 0
        """Records written so far."""
        self.lost = 0
        """Messages and events that could not be recorded (each is covered by a gap)."""
        self.lost_hashes = 0
        """Workers' hashes not recorded: the queue was full (said once on stderr) or the store
        failed (said with the gap of that batch's messages and events)."""
        self.gaps = 0
        """Gap records written."""
        self.failing = False
        """Whether the last write failed."""

    # ------------------------------------------------------------------ event-loop side

    def start(self, timeout: float = 30.0) -> None:
        """Open the sink on the writer thread and start flushing.

        Raises:
            Whatever opening the sink raised.
        """
        self._thread = threading.Thread(target=self._run, name="rdt-writer", daemon=True)
        self._thread.start()
        self._ready.wait(timeout)
        if self._open_error is not None:
            raise self._open_error
        if not self._ready.is_set():
            raise TimeoutError("the log store did not open in time")

    def put_message(self, raw: RawMessage) -> None:
        """Queue one forwarded message as handed over by the proxy (the hot path).

        Never blocks; when the queue is full the message is dropped into a gap.
        """
        queue = self._queue
        size = len(raw[4]) + RECORD_OVERHEAD
        held = self._in_bytes - self._out_bytes + size
        if len(queue) >= self._limit or held > self.max_bytes:
            self._drop_message(raw[0])
            return
        if self._dropping:
            self._queue_drop_gaps()
        if not queue:
            self._oldest_ns = time.monotonic()
        self._in_bytes += size
        if held > self.peak_bytes:
            self.peak_bytes = held
        queue.append(raw)

    def put(self, record: Any) -> None:
        """Queue a record (a model value, :class:`ClosedConnection` or :class:`ServerInfo`).

        Never blocks. When the queue is full a message or event is dropped and counted; other
        records (connections, marks, gaps) are always kept.
        """
        queue = self._queue
        size = queued_size(record)
        held = self._in_bytes - self._out_bytes + size
        if len(queue) >= self._limit or held > self.max_bytes:
            if isinstance(record, Message):
                self._drop_message(record.seq)
                return
            if isinstance(record, WorkerHash):
                self.lost_hashes += 1
                if self.lost_hashes == 1:
                    self._warn(
                        "recorder queue full: dropping workers' state hashes (rdt verify "
                        "compares the workers only where both hashes were recorded)"
                    )
                return
            if isinstance(record, Event):
                if self._dropped_events is None:
                    self._dropped_events = _Range(record.v)
                    self._dropping = True
                self._dropped_events.add(record.v)
                self.lost += 1
                return
        elif self._dropping:
            self._queue_drop_gaps()
        if not queue:
            self._oldest_ns = time.monotonic()
        self._in_bytes += size
        if held > self.peak_bytes:
            self.peak_bytes = held
        queue.append(record)

    def _drop_message(self, seq: int) -> None:
        if self._dropped_msgs is None:
            self._dropped_msgs = _Range(seq)
            self._dropping = True
            self._warn(
                f"recorder queue full ({len(self._queue)} records, "
                f"{(self._in_bytes - self._out_bytes) // 1024} KiB held): dropping messages "
                "(recorded as gaps with counts); the forwarded traffic is not slowed"
            )
        self._dropped_msgs.add(seq)
        self.lost += 1

    def _queue_drop_gaps(self) -> None:
        now = self._clock()
        for kind, dropped in (("messages", self._dropped_msgs), ("events", self._dropped_events)):
            if dropped is not None:
                count = dropped.end - dropped.start + 1
                reason = f"recorder queue full: {count} {kind} not recorded"
                self._in_bytes += RECORD_OVERHEAD
                self._queue.append(Gap(kind, dropped.start, dropped.end, reason, now))
        self._dropped_msgs = self._dropped_events = None
        self._dropping = False

    @property
    def backlog(self) -> int:
        """Records queued and not yet taken by the writer thread."""
        return len(self._queue)

    @property
    def lag_ms(self) -> float:
        """Age of the oldest record not yet written, in milliseconds (0 when none)."""
        oldest = self._oldest_ns
        if oldest is None or not self._queue:
            return 0.0
        return round((time.monotonic() - oldest) * 1000, 1)

    def wake(self) -> None:
        """Start writing what is queued now instead of at the next interval (never blocks)."""
        self._wake.set()

    def flush(self, timeout: float = 10.0) -> bool:
        """Block until everything queued before the call is written (call it off the loop).

        Returns:
            Whether the flush finished within ``timeout``.
        """
        with self._flushed:
            target = self._flush_gen + 2
            self._wake.set()
            return self._flushed.wait_for(lambda: self._flush_gen >= target, timeout)

    def close(self, *, ended_ns: int | None = None, timeout: float = 30.0) -> None:
        """Write everything queued, close the sink and stop the thread (call it off the loop)."""
        if self._dropping:
            self._queue_drop_gaps()
        self._ended_ns = ended_ns
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    # ------------------------------------------------------------------ writer thread

    def _run(self) -> None:
        try:
            self._sink = self._open_sink()
        except BaseException as error:  # reported by start()
            self._open_error = error
            self._ready.set()
            return
        self._ready.set()
        while True:
            stopping = self._stopping
            started = time.monotonic()
            self._drain()
            with self._flushed:
                self._flush_gen += 1
                self._flushed.notify_all()
            if stopping:
                break
            # A fixed cadence: the next drain starts ``interval`` after this one started, not
            # after it ended, so a record queued just after a drain waits at most
            # max(interval, drain) + the next drain, not drain + interval + drain.
            self._wake.wait(max(0.0, self._interval - (time.monotonic() - started)))
            self._wake.clear()
        try:
            self._sink.close(ended_ns=getattr(self, "_ended_ns", None))
        except Exception as error:
            self._warn(f"could not close the log: {error}")

    def _drain(self) -> None:
        queue = self._queue
        pop = queue.popleft
        batch: list[Any] = [pop() for _ in range(len(queue))]  # what was there when it began
        if batch:
            self._out_bytes += sum(map(queued_size, batch))
        if not batch and not self._pending_gaps:
            return
        sink = self._sink
        assert sink is not None
        try:
            for gap in self._pending_gaps:
                sink.add_gap(gap)
            self._write(sink, batch)
            sink.flush()
        except Exception as error:
            self._failed(batch, error)
            return
        if self.failing:
            self._warn("log store works again; the missed records are marked as gaps")
        self.failing = False
        self.gaps += len(self._pending_gaps) + sum(isinstance(r, Gap) for r in batch)
        self._pending_gaps = []
        self.written += len(batch)

    def _write(self, sink: Sink, batch: list[Any]) -> None:
        run: list[Any] = []
        run_kind: type | None = None
        build = self._build_row
        add_rows = getattr(type(sink), "add_message_rows", None)

        def emit() -> None:
            if run_kind is tuple:
                if add_rows is not None:
                    add_rows(sink, run)
                else:
                    sink.add_messages([Message(*row) for row in run])
            elif run_kind is Event:
                sink.add_events(run)
            elif run_kind is WorkerHash:
                sink.add_worker_hashes(run)  # type: ignore[attr-defined]

        for record in batch:
            kind = type(record)
            if kind is tuple or kind is Message:
                if run_kind is not tuple:
                    if run:
                        emit()
                    run, run_kind = [], tuple
                if kind is Message:
                    run.append(_row(record))
                    continue
                try:
                    run.append(build(record))
                except Exception as error:  # never lose the batch for one odd frame
                    reason = f"could not record: {type(error).__name__}: {error}"[:200]
                    sink.add_gap(Gap("messages", record[0], record[0], reason, self._clock()))
                    self.lost += 1
                    self.gaps += 1
                continue
            if kind is not run_kind and run:
                emit()
                run = []
            if kind is Event or kind is WorkerHash:
                run_kind = kind
                run.append(record)
                continue
            run_kind = None
            if kind is Connection:
                sink.add_connection(record)
            elif kind is ClosedConnection:
                sink.close_connection(
                    record.conn_id,
                    closed_ns=record.closed_ns,
                    code=record.code,
                    reason=record.reason,
                )
            elif kind is Snapshot:
                sink.add_snapshot(record)
            elif kind is Mark:
                sink.add_mark(record)
            elif kind is Gap:
                sink.add_gap(record)
            elif kind is ServerInfo:
                sink.set_server(record.server)
            elif kind is Worker:
                sink.add_worker(record)  # type: ignore[attr-defined]
            elif kind is WorkerSnapshot:
                sink.add_worker_snapshot(record)  # type: ignore[attr-defined]
            elif kind is EventFill:
                sink.fill_events([(record.v, record.hash, record.cause_seq)])  # type: ignore[attr-defined]
        if run:
            emit()

    def _failed(self, batch: list[Any], error: Exception) -> None:
        now = self._clock()
        msgs = [r[0] if type(r) is tuple else r.seq for r in batch if type(r) in _MESSAGE_KINDS]
        events = [r.v for r in batch if isinstance(r, Event)]
        gaps = [r for r in batch if isinstance(r, Gap)]
        self.lost_hashes += sum(type(r) is WorkerHash for r in batch)
        reason = f"store unavailable: {type(error).__name__}"
        if msgs:
            self._pending_gaps.append(Gap("messages", min(msgs), max(msgs), reason, now))
        if events:
            self._pending_gaps.append(Gap("events", min(events), max(events), reason, now))
        self._pending_gaps.extend(g for g in gaps if g not in self._pending_gaps)
        self.lost += len(msgs) + len(events)
        if not self.failing:
            self._warn(f"log store failed ({' '.join(str(error).split())[:200]}); recording a gap")
        self.failing = True
        self._discard_sink_buffer()

    def _discard_sink_buffer(self) -> None:
        # only the failed batch: the recording and everything written before it stay
        drop = getattr(self._sink, "drop_buffered", None)
        if callable(drop):
            with contextlib.suppress(Exception):
                drop()


_MESSAGE_KINDS = (tuple, Message)


def _row(m: Message) -> MessageRow:
    """A message value as its row (Message field order)."""
    return (m.seq, m.connection, m.direction, m.t_ns, m.type, m.payload, m.binary, m.flag, m.size)
