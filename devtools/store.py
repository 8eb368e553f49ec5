"""The log store: open a log, write recordings in batches, read them back in pages.

``LOG`` is a file path (SQLite, the embedded default) or a SQLAlchemy URL (anything containing
``://``, e.g. ``postgresql+psycopg://…``). One :class:`Log` owns one ``Engine``.

SQLite is opened in WAL mode with ``synchronous=NORMAL`` and a busy timeout. pysqlite's own
transaction handling is switched off and SQLAlchemy emits ``BEGIN`` itself (the documented
event-hook recipe), so the writer can take ``BEGIN IMMEDIATE`` (the write lock up front, never a
deadlocking upgrade) while readers use plain deferred transactions. SQLite connections are
never shared between threads: the engine uses ``NullPool`` (a connection per checkout, opened in
the calling thread), and the writer keeps its one connection only while the same thread calls it.

Readers fetch keyset pages (``WHERE seq > last ORDER BY seq LIMIT n``), each page in its own
short transaction, so memory stays flat and a long iteration never pins the WAL: the writer's
checkpoints can proceed while a reader walks a million rows.

The writer buffers records and writes everything buffered in one transaction per
:meth:`LogWriter.flush`; messages and events go through the driver-level ``executemany``
(SQLAlchemy Core's ``insert()`` executemany reached only 0.41× of raw ``sqlite3``).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Connection as SAConnection
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from devtools import schema
from devtools.errors import LogError, LogTooNew, NotALog, UnknownRecording
from devtools.jsonutil import dumps, loads
from devtools.model import (
    Connection,
    Event,
    Gap,
    Mark,
    Message,
    Recording,
    RecordingSummary,
    Snapshot,
)

__all__ = ["PAGE_SIZE", "Log", "LogReader", "LogWriter"]

PAGE_SIZE = 5000
"""Rows per reader page; each page is its own short transaction."""
PAYLOAD_PAGE = 1000
"""Rows per page of :meth:`LogReader.event_payload_pages`: on a 1,000,000-event log, pages of
10,000 decoded ~25 % slower than pages of 1,000 (a page no longer fits in the CPU's cache); the
extra queries of small pages cost < 1 %."""

_SQLITE_HEADER = b"SQLite format 3\x00"
_BUSY_TIMEOUT_MS = 10_000


def _one_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error)
    return " ".join(text.split()) or type(error).__name__


# --------------------------------------------------------------------------- engines


def _sqlite_engine(path: Path) -> Engine:
    engine = sa.create_engine(
        f"sqlite:///{path}",
        poolclass=NullPool,
        connect_args={"timeout": _BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
    )

    @sa_event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy (below) emit BEGIN, not pysqlite: the documented recipe.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA journal_mode=WAL")
        finally:
            cursor.close()

    @sa_event.listens_for(engine, "begin")
    def _on_begin(conn: SAConnection) -> None:
        if conn.get_execution_options().get("sqlite_immediate"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine


def _display(target: str | Path) -> str:
    text = str(target)
    if "://" in text:
        try:
            return sa.engine.make_url(text).render_as_string(hide_password=True)
        except Exception:  # noqa: BLE001 - only for display
            return text.split("://", 1)[0] + "://…"
    return text


# --------------------------------------------------------------------------- Log


class Log:
    """An rdt log: a SQLite file or a database behind a SQLAlchemy URL.

    Use :meth:`open`; the object is a context manager that disposes its engine on exit.
    """

    engine: Engine
    target: str
    """The target as given, for messages (a URL's password hidden)."""

    def __init__(self, engine: Engine, target: str, *, is_sqlite: bool) -> None:
        self.engine = engine
        self.target = target
        self.is_sqlite = is_sqlite
        self._sql = _SQL(engine)

    # ---- opening

    @classmethod
    def open(cls, target: str | Path, *, create: bool = False) -> Log:
        """Open the log at ``target`` (a path or a URL); with ``create``, make it if needed.

        Raises:
            LogError: the file does not exist (without ``create``) or cannot be read.
            NotALog: the file or database is not an rdt log.
            LogTooNew: the log was written by a newer rdt.
        """
        text = str(target)
        shown = _display(target)
        if "://" in text:
            try:
                engine = sa.create_engine(text, pool_pre_ping=False)
            except Exception as error:  # noqa: BLE001 - bad URL / missing driver
                raise LogError(f"cannot open {shown}: {_one_line(error)}") from None
            log = cls(engine, shown, is_sqlite=engine.dialect.name == "sqlite")
        else:
            path = Path(text)
            if path.is_dir():
                raise LogError(f"{shown} is a directory, not a log")
            if path.exists():
                try:
                    with path.open("rb") as handle:
                        header = handle.read(len(_SQLITE_HEADER))
                except OSError as error:
                    raise LogError(f"cannot read {shown}: {error.strerror or error}") from None
                if header and header != _SQLITE_HEADER:
                    raise NotALog(f"{shown} is not an rdt log")
                if not header and not create:
                    raise NotALog(f"{shown} is not an rdt log (empty file)")
            elif not create:
                raise LogError(f"no such log: {shown}")
            elif not path.parent.exists():
                raise LogError(f"cannot create {shown}: no such directory {path.parent}")
            log = cls(_sqlite_engine(path), shown, is_sqlite=True)
        try:
            log._check_or_create(create)
        except BaseException:
            log.close()
            raise
        return log

    def _check_or_create(self, create: bool) -> None:
        try:
            tables = set(sa.inspect(self.engine).get_table_names())
        except sa.exc.DatabaseError as error:
            if self.is_sqlite and "not a database" in _one_line(error):
                raise NotALog(f"{self.target} is not an rdt log") from None
            raise LogError(f"cannot open {self.target}: {_one_line(error)}") from None
        except sa.exc.SQLAlchemyError as error:
            raise LogError(f"cannot open {self.target}: {_one_line(error)}") from None
        if schema.meta.name not in tables:
            # An empty database becomes a log; anything else is not ours to touch.
            if create and not tables:
                self._create()
                return
            raise NotALog(f"{self.target} is not an rdt log")
        with self.engine.connect() as conn:
            values = dict(conn.execute(sa.select(schema.meta.c.key, schema.meta.c.value)).all())
        if values.get("app") != schema.APP_MARKER:
            raise NotALog(f"{self.target} is not an rdt log")
        try:
            version = int(values.get("format", ""))
        except ValueError:
            raise NotALog(f"{self.target} is not an rdt log (bad format version)") from None
        if version > schema.FORMAT_VERSION:
            raise LogTooNew(
                f"{self.target} was written by a newer rdt (format {version}); please update"
            )
        missing = {t for t in schema.metadata.tables if t not in tables}
        if missing == {schema.checkpoints.name}:
            # The cache table is safe to (re)create on an existing log.
            schema.checkpoints.create(self.engine, checkfirst=True)
        elif missing:
            raise NotALog(f"{self.target} is not an rdt log (missing {', '.join(sorted(missing))})")

    def _create(self) -> None:
        with self.engine.begin() as conn:
            schema.metadata.create_all(conn)
            conn.execute(
                schema.meta.insert(),
                [
                    {"key": "app", "value": schema.APP_MARKER},
                    {"key": "format", "value": str(schema.FORMAT_VERSION)},
                ],
            )

    def close(self) -> None:
        """Release every connection of this log."""
        self.engine.dispose()

    def __enter__(self) -> Log:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- recordings

    def _recording_rows(self, where: Any = None) -> list[Recording]:
        r = schema.recordings
        query = sa.select(r).order_by(r.c.id)
        if where is not None:
            query = query.where(where)
        with self.engine.connect() as conn:
            return [_recording(row) for row in conn.execute(query)]

    def recordings(self) -> list[RecordingSummary]:
        """Every recording in the log (oldest first) with its counts and time span."""
        return [self._summary(rec) for rec in self._recording_rows()]

    def _summary(self, rec: Recording) -> RecordingSummary:
        return self._sql.summary(rec)

    def recording(self, ref: int | str | None = None) -> Recording:
        """The recording with id ``ref``, or named ``ref``; ``None``: the latest.

        Raises:
            UnknownRecording: no such recording (or the log has none).
        """
        r = schema.recordings
        if ref is None:
            rows = self._recording_rows()
            if not rows:
                raise UnknownRecording(
                    f"no recordings in {self.target} yet; see rdt ls {self.target}"
                )
            return rows[-1]
        if isinstance(ref, int) or (isinstance(ref, str) and ref.strip().isdigit()):
            rows = self._recording_rows(r.c.id == int(ref))
            if rows:
                return rows[0]
        if isinstance(ref, str):
            rows = self._recording_rows(r.c.name == ref)
            if rows:
                return rows[-1]
        raise UnknownRecording(
            f"no recording {str(ref)!r} in {self.target}; see rdt ls {self.target}"
        )

    def delete_recording(self, recording_id: int) -> None:
        """Delete a recording and everything in it (checkpoints included)."""
        with self.engine.connect().execution_options(sqlite_immediate=True) as conn:
            for table in reversed(schema.metadata.sorted_tables):
                if "recording_id" in table.c:
                    conn.execute(table.delete().where(table.c.recording_id == recording_id))
            conn.execute(schema.recordings.delete().where(schema.recordings.c.id == recording_id))
            conn.commit()

    def reader(self, recording: int | str | Recording | None = None) -> LogReader:
        """A reader over one recording (``None``: the latest)."""
        rec = recording if isinstance(recording, Recording) else self.recording(recording)
        return LogReader(self, rec)

    def writer(
        self,
        *,
        name: str,
        upstream: str | None = None,
        server: dict | None = None,
        started_ns: int | None = None,
    ) -> LogWriter:
        """Start a new recording and return its writer."""
        rec = Recording(
            id=0,
            name=name,
            started_ns=time.time_ns() if started_ns is None else started_ns,
            upstream=upstream,
            server=server,
        )
        return self.import_writer(rec)

    def import_writer(self, recording: Recording) -> LogWriter:
        """A writer for a new recording that copies ``recording``'s fields (not its id)."""
        values = {
            "name": recording.name,
            "started_ns": recording.started_ns,
            "ended_ns": recording.ended_ns,
            "upstream": recording.upstream,
            "server": None if recording.server is None else dumps(recording.server),
            "format": schema.FORMAT_VERSION,
        }
        with self.engine.connect().execution_options(sqlite_immediate=True) as conn:
            result = conn.execute(schema.recordings.insert().values(**values))
            new_id = int(result.inserted_primary_key[0])
            conn.commit()
        rec = Recording(
            id=new_id,
            name=recording.name,
            started_ns=recording.started_ns,
            ended_ns=recording.ended_ns,
            upstream=recording.upstream,
            server=recording.server,
            format=schema.FORMAT_VERSION,
        )
        return LogWriter(self, rec)


def _recording(row: Any) -> Recording:
    return Recording(
        id=row.id,
        name=row.name,
        started_ns=row.started_ns,
        ended_ns=row.ended_ns,
        upstream=row.upstream,
        server=None if row.server is None else loads(bytes(row.server)),
        format=row.format,
    )


# --------------------------------------------------------------------------- raw SQL


class _SQL:
    """Driver-level SQL strings for one dialect (placeholders and identifier quoting)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        quote = engine.dialect.identifier_preparer.quote
        mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self.mark = mark

        def insert(table: sa.Table, columns: Sequence[str], *, ignore: bool = False) -> str:
            names = ", ".join(quote(c) for c in columns)
            marks = ", ".join(mark for _ in columns)
            tail = " ON CONFLICT DO NOTHING" if ignore else ""
            return f"INSERT INTO {quote(table.name)} ({names}) VALUES ({marks}){tail}"

        self.insert = insert
        self.insert_messages = insert(schema.messages, schema.MESSAGE_COLUMNS)
        self.insert_events = insert(schema.events, schema.EVENT_COLUMNS, ignore=True)
        self.event_payloads = (
            f"SELECT v, event FROM events WHERE recording_id = {mark} AND v >= {mark} "
            f"AND v <= {mark} ORDER BY v LIMIT {mark}"
        )

    def summary(self, rec: Recording) -> RecordingSummary:
        return _Summaries.build(self.engine, rec)


# --------------------------------------------------------------------------- reader


_BIG = 2**62


class LogReader:
    """Reads one recording in pages; never holds a transaction open between pages."""

    recording: Recording

    def __init__(self, log: Log, recording: Recording, *, page_size: int = PAGE_SIZE) -> None:
        self.log = log
        self.recording = recording
        self.page_size = page_size
        self._rid = recording.id

    # ---- helpers

    def _all(self, query: Any) -> list[Any]:
        with self.log.engine.connect() as conn:
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
            rows = self._all(query.order_by(col).limit(self.page_size))
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
    ) -> Iterator[Message]:
        """Messages with ``from_seq <= seq <= to_seq`` in ``seq`` order, streamed in pages."""
        t = schema.messages
        extra = []
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

    def events(self, from_v: int | None = None, to_v: int | None = None) -> Iterator[Event]:
        """Events with ``from_v <= v <= to_v`` in ``v`` order, streamed in pages."""
        for row in self._pages(schema.events, "v", from_v, to_v):
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
        is finished before the page is handed out), other databases roll back after each page.
        Pages are handed out whole so the replayer can walk them without a per-row generator;
        they are small (``PAYLOAD_PAGE``) so that a page's bytes are still in the CPU's cache
        when the replayer decodes them.
        """
        sql = self.log._sql.event_payloads
        lo = -_BIG if from_v is None else from_v
        hi = _BIG if to_v is None else to_v
        page = PAYLOAD_PAGE
        if lo > hi:
            return
        with self.log.engine.connect() as conn:
            dbapi = conn.connection.dbapi_connection
            while True:
                cursor = dbapi.cursor()
                try:
                    cursor.execute(sql, (self._rid, lo, hi, page))
                    rows = cursor.fetchall()
                finally:
                    cursor.close()
                if not self.log.is_sqlite:
                    dbapi.rollback()
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
        mark = self.log._sql.mark
        sql = (
            f"SELECT v, hash FROM events WHERE recording_id = {mark} AND v >= {mark} "
            f"AND v <= {mark} AND hash IS NOT NULL ORDER BY v LIMIT {mark}"
        )
        lo = -_BIG if from_v is None else from_v
        hi = _BIG if to_v is None else to_v
        page = self.page_size
        while lo <= hi:
            with self.log.engine.connect() as conn:
                cursor = conn.connection.dbapi_connection.cursor()
                try:
                    cursor.execute(sql, (self._rid, lo, hi, page))
                    rows = cursor.fetchall()
                finally:
                    cursor.close()
                if not self.log.is_sqlite:
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
            .order_by(t.c.v.desc())
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

    # ---- counts

    def counts(self) -> RecordingSummary:
        """The recording with its counts and time span (as ``rdt ls`` shows it)."""
        return self.log._sql.summary(self.recording)

    def _edge(self, table: sa.Table, key: str, last: bool) -> int | None:
        col = table.c[key]
        query = sa.select(col).where(table.c.recording_id == self._rid)
        query = query.order_by(col.desc() if last else col).limit(1)
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

    def checkpoints(self, key: str) -> list[tuple[int, str]]:
        """The cached checkpoints ``(v, hash)`` for reducer ``key``, by ``v``."""
        t = schema.checkpoints
        rows = self._all(
            sa.select(t.c.v, t.c.hash)
            .where(t.c.recording_id == self._rid, t.c.key == key)
            .order_by(t.c.v)
        )
        return [(row.v, row.hash) for row in rows]

    def checkpoint_state(self, key: str, v: int) -> bytes | None:
        """The cached state (JSON bytes) after event ``v`` for reducer ``key``."""
        t = schema.checkpoints
        rows = self._all(
            sa.select(t.c.state).where(t.c.recording_id == self._rid, t.c.key == key, t.c.v == v)
        )
        return bytes(rows[0][0]) if rows else None

    def save_checkpoints(self, key: str, rows: Iterable[tuple[int, bytes, str]]) -> None:
        """Cache ``(v, state JSON bytes, hash)`` rows for ``key``; existing ``v`` are kept."""
        sql = self.log._sql.insert(
            schema.checkpoints, ("recording_id", "key", "v", "state", "hash"), ignore=True
        )
        batch = [(self._rid, key, v, bytes(state), h) for v, state, h in rows]
        if not batch:
            return
        with self.log.engine.connect().execution_options(sqlite_immediate=True) as conn:
            conn.exec_driver_sql(sql, batch)
            conn.commit()


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


class _Summaries:
    """Counts and time spans, each from an index (count) or an index edge (first/last)."""

    @staticmethod
    def build(engine: Engine, rec: Recording) -> RecordingSummary:
        rid = rec.id
        counts: dict[str, int] = {}
        spans: list[int] = []
        with engine.connect() as conn:
            for table in (
                schema.connections,
                schema.messages,
                schema.events,
                schema.snapshots,
                schema.gaps,
            ):
                query = sa.select(sa.func.count()).select_from(table)
                counts[table.name] = conn.execute(
                    query.where(table.c.recording_id == rid)
                ).scalar_one()
            for table, key in (
                (schema.messages, schema.messages.c.seq),
                (schema.events, schema.events.c.v),
            ):
                for order in (key, key.desc()):
                    value = conn.execute(
                        sa.select(table.c.t_ns)
                        .where(table.c.recording_id == rid)
                        .order_by(order)
                        .limit(1)
                    ).scalar()
                    if value:
                        spans.append(value)
        return RecordingSummary(
            recording=rec,
            connections=counts["connections"],
            messages=counts["messages"],
            events=counts["events"],
            snapshots=counts["snapshots"],
            gaps=counts["gaps"],
            first_ns=min(spans) if spans else None,
            last_ns=max(spans) if spans else None,
        )


# --------------------------------------------------------------------------- writer


class LogWriter:
    """Writes one recording. Buffers records; :meth:`flush` writes them in one transaction.

    Call it from one thread at a time (typically a dedicated writer thread); the buffers are
    guarded by a lock, so ``add_*`` from one thread and ``flush`` from another is safe too. A
    failed flush raises :class:`~devtools.errors.LogError` and drops what it was writing, so
    the caller can record a gap for it.
    """

    recording_id: int
    recording: Recording

    def __init__(self, log: Log, recording: Recording, *, max_buffer: int = 50_000) -> None:
        self.log = log
        self.recording = recording
        self.recording_id = recording.id
        self.max_buffer = max_buffer
        self._lock = threading.Lock()
        self._reset()
        self._conn: SAConnection | None = None
        self._conn_thread: int | None = None
        self._closed = False
        sql = log._sql
        self._sql_connection = sql.insert(
            schema.connections,
            (
                "recording_id",
                "id",
                "peer",
                "path",
                "origin",
                "opened_ns",
                "closed_ns",
                "close_code",
                "close_reason",
            ),
        )
        m = sql.mark
        self._sql_close = (
            f"UPDATE connections SET closed_ns = {m}, close_code = {m}, close_reason = {m} "
            f"WHERE recording_id = {m} AND id = {m}"
        )
        self._sql_snapshot = sql.insert(
            schema.snapshots, ("recording_id", "v", "state", "hash", "t_ns"), ignore=True
        )
        self._sql_mark = sql.insert(schema.marks, ("recording_id", "seq", "label", "t_ns"))
        self._sql_gap = sql.insert(
            schema.gaps, ("recording_id", "kind", "range_start", "range_end", "reason", "t_ns")
        )
        self._sql_server = f"UPDATE recordings SET server = {m} WHERE id = {m}"
        self._sql_ended = f"UPDATE recordings SET ended_ns = {m} WHERE id = {m}"

    def _reset(self) -> None:
        self._connections: list[tuple] = []
        self._closes: list[tuple] = []
        self._messages: list[tuple] = []
        self._events: list[tuple] = []
        self._snapshots: list[tuple] = []
        self._marks: list[tuple] = []
        self._gaps: list[tuple] = []
        self._server: bytes | None = None
        self._pending = 0

    @property
    def pending(self) -> int:
        """How many records are buffered and not yet flushed."""
        return self._pending

    def _added(self, count: int) -> None:
        self._pending += count
        if self._pending >= self.max_buffer:
            self.flush()

    # ---- adding

    def add_connection(self, conn: Connection) -> None:
        """Buffer a new connection (ids are per recording)."""
        row = (
            self.recording_id,
            conn.id,
            conn.peer,
            conn.path,
            conn.origin,
            conn.opened_ns,
            conn.closed_ns,
            conn.close_code,
            conn.close_reason,
        )
        with self._lock:
            self._connections.append(row)
        self._added(1)

    def close_connection(
        self, conn_id: int, *, closed_ns: int, code: int | None, reason: str | None
    ) -> None:
        """Buffer the close of connection ``conn_id``."""
        with self._lock:
            self._closes.append((closed_ns, code, reason, self.recording_id, conn_id))
        self._added(1)

    def add_messages(self, messages: Sequence[Message]) -> None:
        """Buffer forwarded frames (``seq`` must be new in this recording)."""
        rid = self.recording_id
        rows = [
            (
                rid,
                m.seq,
                m.connection,
                m.direction,
                m.t_ns,
                m.type,
                m.payload,
                m.binary,
                m.flag,
                m.size,
            )
            for m in messages
        ]
        with self._lock:
            self._messages.extend(rows)
        self._added(len(rows))

    def add_message_rows(self, rows: Sequence[tuple]) -> None:
        """Buffer forwarded frames given as plain tuples (the recorder's hot path).

        Args:
            rows: one tuple per frame in :class:`~devtools.model.Message` field order:
                ``(seq, connection, direction, t_ns, type, payload, binary, flag, size)``;
                ``seq`` must be new in this recording.
        """
        rid = self.recording_id
        head = (rid,)
        rows = [head + row for row in rows]
        with self._lock:
            self._messages.extend(rows)
        self._added(len(rows))

    def add_events(self, events: Sequence[Event]) -> None:
        """Buffer events; an event whose ``v`` is already stored is ignored."""
        rid = self.recording_id
        rows = [(rid, e.v, e.type, dumps(e.event), e.cause_seq, e.hash, e.t_ns) for e in events]
        with self._lock:
            self._events.extend(rows)
        self._added(len(rows))

    def add_snapshot(self, snapshot: Snapshot) -> None:
        """Buffer a snapshot; a second snapshot at the same ``v`` is ignored."""
        row = (self.recording_id, snapshot.v, dumps(snapshot.state), snapshot.hash, snapshot.t_ns)
        with self._lock:
            self._snapshots.append(row)
        self._added(1)

    def add_mark(self, mark: Mark) -> None:
        """Buffer a mark."""
        with self._lock:
            self._marks.append((self.recording_id, mark.seq, mark.label, mark.t_ns))
        self._added(1)

    def add_gap(self, gap: Gap) -> None:
        """Buffer a gap record."""
        row = (self.recording_id, gap.kind, gap.start, gap.end, gap.reason, gap.t_ns)
        with self._lock:
            self._gaps.append(row)
        self._added(1)

    def set_server(self, server: dict) -> None:
        """Record the server's ``{"name", "version"}`` (written at the next flush)."""
        with self._lock:
            self._server = dumps(server)
        self.recording = Recording(
            id=self.recording.id,
            name=self.recording.name,
            started_ns=self.recording.started_ns,
            ended_ns=self.recording.ended_ns,
            upstream=self.recording.upstream,
            server=server,
            format=self.recording.format,
        )
        self._added(1)

    # ---- writing

    def _connection(self) -> SAConnection:
        me = threading.get_ident()
        if self._conn is not None and self._conn_thread != me:
            self._drop_connection()
        if self._conn is None:
            self._conn = self.log.engine.connect().execution_options(sqlite_immediate=True)
            self._conn_thread = me
        return self._conn

    def _drop_connection(self) -> None:
        conn, self._conn, self._conn_thread = self._conn, None, None
        if conn is not None:
            with contextlib.suppress(Exception):  # the connection is being thrown away
                conn.close()

    def _write(self, cursor: Any, batch: tuple) -> None:
        connections, messages, events, snapshots, marks, gaps, closes, server = batch
        sql = self.log._sql
        try:
            if connections:
                cursor.executemany(self._sql_connection, connections)
            if messages:
                cursor.executemany(sql.insert_messages, messages)
            if events:
                cursor.executemany(sql.insert_events, events)
            if snapshots:
                cursor.executemany(self._sql_snapshot, snapshots)
            if marks:
                cursor.executemany(self._sql_mark, marks)
            if gaps:
                cursor.executemany(self._sql_gap, gaps)
            if closes:
                cursor.executemany(self._sql_close, closes)
            if server is not None:
                cursor.execute(self._sql_server, (server, self.recording_id))
        finally:
            cursor.close()

    def flush(self) -> None:
        """Write everything buffered in one transaction.

        Raises:
            LogError: the write failed; the buffered records are dropped (record a gap).
        """
        with self._lock:
            batch = (
                self._connections,
                self._messages,
                self._events,
                self._snapshots,
                self._marks,
                self._gaps,
                self._closes,
                self._server,
            )
            if not self._pending:
                return
            self._reset()
        try:
            conn = self._connection()
            if self.log.is_sqlite:
                # pysqlite is in autocommit mode (see the engine hooks): drive the
                # transaction on the driver connection itself, the cheapest path.
                dbapi = conn.connection.dbapi_connection
                dbapi.execute("BEGIN IMMEDIATE")
                try:
                    self._write(dbapi.cursor(), batch)
                except BaseException:
                    dbapi.execute("ROLLBACK")
                    raise
                dbapi.execute("COMMIT")
            else:
                with conn.begin():
                    self._write(conn.connection.dbapi_connection.cursor(), batch)
        except Exception as error:
            self._drop_connection()
            raise LogError(f"cannot write to {self.log.target}: {_one_line(error)}") from error

    def close(self, *, ended_ns: int | None = None, mark_end: bool = True) -> None:
        """Flush, set the recording's end time (default: now) and release the connection.

        Args:
            ended_ns: the end time; ``None`` means now.
            mark_end: ``False`` leaves the end time as it is (an import of an open recording).
        """
        if self._closed:
            return
        try:
            self.flush()
            if mark_end:
                ended = time.time_ns() if ended_ns is None else ended_ns
                conn = self._connection()
                with conn.begin():
                    conn.exec_driver_sql(self._sql_ended, (ended, self.recording_id))
                self.recording = Recording(
                    id=self.recording.id,
                    name=self.recording.name,
                    started_ns=self.recording.started_ns,
                    ended_ns=ended,
                    upstream=self.recording.upstream,
                    server=self.recording.server,
                    format=self.recording.format,
                )
        finally:
            self._closed = True
            self._drop_connection()

    def discard(self) -> None:
        """Drop what is buffered and delete the whole recording (a failed import)."""
        with self._lock:
            self._reset()
        self._closed = True
        self._drop_connection()
        self.log.delete_recording(self.recording_id)

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
