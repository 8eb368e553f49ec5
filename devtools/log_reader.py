"""Reading one recording of a log back, in pages (:class:`LogReader`).

Readers fetch keyset pages (``WHERE seq > last ORDER BY seq LIMIT n``), each page in its own
short transaction, so memory stays flat and a long iteration never pins the WAL: the writer's
checkpoints can proceed while a reader walks a million rows. The replayer's hot path,
:meth:`LogReader.event_payload_pages`, goes through the driver's cursor directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from devtools import schema
from devtools.checkpoint_store import CheckpointStore
from devtools.jsonutil import loads
from devtools.log_db import HasDb
from devtools.model import (
    Connection,
    Event,
    Gap,
    Mark,
    Message,
    Recording,
    RecordingSummary,
    Snapshot,
    Worker,
    WorkerHash,
    WorkerSnapshot,
)

PAGE_SIZE = 5000
"""Rows per reader page; each page is its own short transaction."""
PAYLOAD_PAGE = 1000
"""Rows per page of :meth:`LogReader.event_payload_pages`: on a 1,000,000-event log, pages of
10,000 decoded ~25 % slower than pages of 1,000 (a page no longer fits in the CPU's cache); the
extra queries of small pages cost < 1 %."""


_BIG = 2**62


class LogReader:
    """Reads one recording in pages; never holds a transaction open between pages."""

    recording: Recording

    def __init__(self, log: HasDb, recording: Recording, *, page_size: int = PAGE_SIZE) -> None:
        """Read ``recording`` of ``log`` (a :class:`devtools.store.Log`: anything with a
        :class:`~devtools.log_db.LogDb` as ``db``)."""
        self.log: Any = log
        """The log this reader reads (to open other readers and writers on it)."""
        self.db = log.db
        self.recording = recording
        self.page_size = page_size
        self._rid = recording.id
        self._checkpoints: CheckpointStore | None = None

    # ---- helpers

    def _all(self, query: Any) -> list[Any]:
        with self.db.reading() as conn:
            return list(conn.execute(query))

    def _pages(self, table: sa.Table, key: str, lo: int | None, hi: int | None, extra=()):
        col = table.c[key]
        last = None
        while True:
            query = sa.select(table).where(table.c.recording_id == self._rid, *extra)
            if last is not None:
                query = query.where(col > last)
            elif lo is not None:
                query = query.where(col >= lo)
            if hi is not None:
                query = query.where(col <= hi)
            rows = self._all(query.order_by(table.c.recording_id, col).limit(self.page_size))
            yield from rows
            if len(rows) < self.page_size:
                return
            last = getattr(rows[-1], key)

    # ---- records

    def connections(self) -> list[Connection]:
        """Every connection of the recording, by id."""
        t = schema.connections
        rows = self._all(sa.select(t).where(t.c.recording_id == self._rid).order_by(t.c.id))
        return [_connection(row) for row in rows]

    def messages(
        self,
        from_seq: int | None = None,
        to_seq: int | None = None,
        *,
        direction: str | None = None,
        connection: int | None = None,
        type_prefix: str | None = None,
    ) -> Iterator[Message]:
        """Messages with ``from_seq <= seq <= to_seq`` in ``seq`` order, streamed in pages.

        ``type_prefix`` keeps messages whose type starts with it (SQLite compares ASCII letters
        without case here: a caller that needs exact case checks the types it gets).
        """
        t = schema.messages
        extra = _type_filter(t, type_prefix)
        if direction is not None:
            extra.append(t.c.direction == direction)
        if connection is not None:
            extra.append(t.c.connection == connection)
        for row in self._pages(t, "seq", from_seq, to_seq, extra):
            yield _message(row)

    def message(self, seq: int) -> Message | None:
        """The message numbered ``seq``, if recorded."""
        t = schema.messages
        rows = self._all(sa.select(t).where(t.c.recording_id == self._rid, t.c.seq == seq))
        return _message(rows[0]) if rows else None

    def events(
        self, from_v: int | None = None, to_v: int | None = None, *, type_prefix: str | None = None
    ) -> Iterator[Event]:
        """Events with ``from_v <= v <= to_v`` in ``v`` order, streamed in pages
        (``type_prefix`` as in :meth:`messages`)."""
        t = schema.events
        for row in self._pages(t, "v", from_v, to_v, _type_filter(t, type_prefix)):
            yield _event(row)

    def event(self, v: int) -> Event | None:
        """The event numbered ``v``, if recorded."""
        t = schema.events
        rows = self._all(sa.select(t).where(t.c.recording_id == self._rid, t.c.v == v))
        return _event(rows[0]) if rows else None

    def event_payloads(
        self, from_v: int | None = None, to_v: int | None = None
    ) -> Iterator[tuple[int, bytes]]:
        """``(v, the event's JSON bytes)`` in ``v`` order (see :meth:`event_payload_pages`)."""
        for page in self.event_payload_pages(from_v, to_v):
            yield from page

    def event_payload_pages(
        self, from_v: int | None = None, to_v: int | None = None
    ) -> Iterator[list[tuple[int, bytes]]]:
        """Pages of ``(v, the event's JSON bytes)`` in ``v`` order: the replayer's fast path.

        Uses the driver's cursor directly (no SQLAlchemy row processing), a page at a time, on
        one connection kept for the whole iteration (opening and closing one per page cost more
        than the query, and closing the last connection checkpoints the WAL). Each page is still
        its own short transaction: SQLite runs the bare ``SELECT`` in autocommit (the statement
        is finished before the page is handed out), and so does PostgreSQL, with the planner
        held to the primary key (:meth:`~devtools.log_db.LogDb.page_session`).
        Pages are handed out whole so the replayer can walk them without a per-row generator;
        they are small (``PAYLOAD_PAGE``) so that a page's bytes are still in the CPU's cache
        when the replayer decodes them.
        """
        sql = self.db.event_payloads
        lo = -_BIG if from_v is None else from_v
        hi = _BIG if to_v is None else to_v
        page = PAYLOAD_PAGE
        if lo > hi:
            return
        with (
            self.db.engine.connect() as conn,
            self.db.page_session(conn.connection.dbapi_connection) as cursor,
        ):
            while True:
                cursor.execute(sql, (self._rid, lo, hi, page))
                rows = cursor.fetchall()
                if rows and not isinstance(rows[0][1], bytes):
                    rows = [(v, bytes(payload)) for v, payload in rows]
                if rows:
                    yield rows
                if len(rows) < page:
                    return
                lo = rows[-1][0] + 1
                if lo > hi:
                    return

    def event_hashes(
        self, from_v: int | None = None, to_v: int | None = None
    ) -> Iterator[tuple[int, str]]:
        """``(v, the state hash the server recorded)`` for the events in range that carry one.

        In ``v`` order, through the driver's cursor a page at a time (``rdt verify`` reads the
        recorded hashes alongside a replay instead of looking them up one event at a time).
        """
        sql = self.db.event_hashes
        lo = -_BIG if from_v is None else from_v
        hi = _BIG if to_v is None else to_v
        page = self.page_size
        while lo <= hi:
            with self.db.engine.connect() as conn:
                cursor = conn.connection.dbapi_connection.cursor()
                try:
                    self.db.index_plans_on(cursor)
                    cursor.execute(sql, (self._rid, lo, hi, page))
                    rows = cursor.fetchall()
                finally:
                    cursor.close()
                if not self.db.is_sqlite:
                    conn.rollback()
            yield from ((v, h) for v, h in rows)
            if len(rows) < page:
                return
            lo = rows[-1][0] + 1

    def snapshots(self) -> Iterator[Snapshot]:
        """Every recorded snapshot in ``v`` order."""
        for row in self._pages(schema.snapshots, "v", None, None):
            yield _snapshot(row)

    def snapshot_at_or_before(self, v: int) -> Snapshot | None:
        """The latest snapshot with ``snapshot.v <= v``."""
        t = schema.snapshots
        query = (
            sa.select(t)
            .where(t.c.recording_id == self._rid, t.c.v <= v)
            .order_by(t.c.recording_id.desc(), t.c.v.desc())
            .limit(1)
        )
        rows = self._all(query)
        return _snapshot(rows[0]) if rows else None

    def marks(self) -> list[Mark]:
        """Every mark, by ``seq`` (then by insertion)."""
        t = schema.marks
        rows = self._all(
            sa.select(t).where(t.c.recording_id == self._rid).order_by(t.c.seq, t.c.id)
        )
        return [Mark(seq=row.seq, label=row.label, t_ns=row.t_ns) for row in rows]

    def gaps(self) -> list[Gap]:
        """Every gap, in the order they were recorded."""
        t = schema.gaps
        rows = self._all(sa.select(t).where(t.c.recording_id == self._rid).order_by(t.c.id))
        return [
            Gap(
                kind=row.kind,
                start=row.range_start,
                end=row.range_end,
                reason=row.reason,
                t_ns=row.t_ns,
            )
            for row in rows
        ]

    # ---- workers (a recording of several workers; empty otherwise)

    def workers(self) -> list[Worker]:
        """The workers whose channels the recording followed, by index."""
        t = schema.workers
        rows = self._all(
            sa.select(t).where(t.c.recording_id == self._rid).order_by(t.c.recording_id, t.c.worker)
        )
        return [
            Worker(
                index=row.worker,
                url=row.url,
                id=row.worker_id,
                name=row.name,
                version=row.version,
                server=None if row.server is None else loads(bytes(row.server)),
            )
            for row in rows
        ]

    def worker_hashes(
        self, from_v: int | None = None, to_v: int | None = None
    ) -> Iterator[WorkerHash]:
        """Every worker's report of each event with ``from_v <= v <= to_v``, by ``(v, worker)``,
        in keyset pages of the primary key."""
        t = schema.worker_hashes
        after: tuple[int, int] | None = None
        while True:
            query = sa.select(t).where(t.c.recording_id == self._rid)
            if after is not None:
                query = query.where(sa.tuple_(t.c.v, t.c.worker) > sa.tuple_(*after))
            elif from_v is not None:
                query = query.where(t.c.v >= from_v)
            if to_v is not None:
                query = query.where(t.c.v <= to_v)
            query = query.order_by(t.c.recording_id, t.c.v, t.c.worker).limit(self.page_size)
            rows = self._all(query)
            for row in rows:
                yield WorkerHash(
                    worker=row.worker,
                    v=row.v,
                    hash=row.hash,
                    event=None if row.event is None else loads(bytes(row.event)),
                )
            if len(rows) < self.page_size:
                return
            after = (rows[-1].v, rows[-1].worker)

    def worker_snapshots(self, worker: int | None = None) -> list[WorkerSnapshot]:
        """The workers' own snapshots (of one ``worker``, or all), by ``(v, worker)``."""
        t = schema.worker_snapshots
        query = sa.select(t).where(t.c.recording_id == self._rid)
        if worker is not None:
            query = query.where(t.c.worker == worker)
        rows = self._all(query.order_by(t.c.recording_id, t.c.v, t.c.worker))
        return [
            WorkerSnapshot(
                worker=row.worker,
                v=row.v,
                state=loads(bytes(row.state)),
                hash=row.hash,
                t_ns=row.t_ns,
            )
            for row in rows
        ]

    # ---- counts

    def counts(self) -> RecordingSummary:
        """The recording with its counts and time span (as ``rdt ls`` shows it)."""
        return self.db.summary(self.recording)

    def _edge(self, table: sa.Table, key: str, last: bool) -> int | None:
        col = table.c[key]
        query = sa.select(col).where(table.c.recording_id == self._rid)
        rid = table.c.recording_id
        query = query.order_by(*((rid.desc(), col.desc()) if last else (rid, col))).limit(1)
        rows = self._all(query)
        return rows[0][0] if rows else None

    def first_v(self) -> int | None:
        """The first recorded event number, or ``None`` without events."""
        return self._edge(schema.events, "v", last=False)

    def last_v(self) -> int | None:
        """The last recorded event number, or ``None`` without events."""
        return self._edge(schema.events, "v", last=True)

    def last_seq(self) -> int | None:
        """The last recorded message number, or ``None`` without messages."""
        return self._edge(schema.messages, "seq", last=True)

    # ---- checkpoint cache

    def checkpoint_store(self) -> CheckpointStore:
        """The replayer's checkpoint cache for this recording (reads and writes)."""
        if self._checkpoints is None:
            self._checkpoints = CheckpointStore(self.db, self._rid)
        return self._checkpoints


def _type_filter(table: sa.Table, prefix: str | None) -> list[Any]:
    """``type LIKE 'prefix%'`` with LIKE's own wildcards in ``prefix`` escaped."""
    return [] if not prefix else [table.c.type.startswith(prefix, autoescape=True)]


def _connection(row: Any) -> Connection:
    return Connection(
        id=row.id,
        peer=row.peer,
        path=row.path,
        origin=row.origin,
        opened_ns=row.opened_ns,
        closed_ns=row.closed_ns,
        close_code=row.close_code,
        close_reason=row.close_reason,
        handshake=None if row.handshake is None else loads(row.handshake),
    )


def _message(row: Any) -> Message:
    return Message(
        seq=row.seq,
        connection=row.connection,
        direction=row.direction,
        t_ns=row.t_ns,
        type=row.type,
        payload=bytes(row.payload),
        binary=bool(row.is_binary),
        flag=row.flag,
        size=row.size,
    )


def _event(row: Any) -> Event:
    return Event(
        v=row.v,
        type=row.type,
        event=loads(bytes(row.event)),
        cause_seq=row.cause_seq,
        hash=row.hash,
        t_ns=row.t_ns,
    )


def _snapshot(row: Any) -> Snapshot:
    return Snapshot(v=row.v, state=loads(bytes(row.state)), hash=row.hash, t_ns=row.t_ns)
