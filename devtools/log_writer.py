"""Writing one recording into a log, in batches (:class:`LogWriter`).

The writer buffers records and writes everything buffered in one transaction per
:meth:`LogWriter.flush`; messages and events go through the driver-level ``executemany``
(SQLAlchemy Core's ``insert()`` executemany reached only 0.41× of raw ``sqlite3``).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence
from itertools import chain
from typing import Any

from sqlalchemy.engine import Connection as SAConnection

from devtools import schema
from devtools.errors import LogError, one_line
from devtools.jsonutil import dumps
from devtools.log_db import ANALYZE_FIRST, ANALYZE_STEP, MESSAGE_ROWS_PER_INSERT, HasDb
from devtools.model import (
    Connection,
    Event,
    Gap,
    Mark,
    Message,
    Recording,
    Snapshot,
    Worker,
    WorkerHash,
    WorkerSnapshot,
)


class LogWriter:
    """Writes one recording. Buffers records; :meth:`flush` writes them in one transaction.

    Call it from one thread at a time (typically a dedicated writer thread); the buffers are
    guarded by a lock, so ``add_*`` from one thread and ``flush`` from another is safe too. A
    failed flush raises :class:`~devtools.errors.LogError` and drops what it was writing, so
    the caller can record a gap for it.
    """

    recording_id: int
    recording: Recording

    def __init__(self, log: HasDb, recording: Recording, *, max_buffer: int = 50_000) -> None:
        """Write ``recording`` (already a row of ``recordings``) into ``log`` (a
        :class:`devtools.store.Log`: anything with a :class:`~devtools.log_db.LogDb` as ``db``)."""
        self.log: Any = log
        """The log this writer writes."""
        self.db = sql = log.db
        self.recording = recording
        self.recording_id = recording.id
        self.max_buffer = max_buffer
        self._lock = threading.Lock()
        self._reset()
        self._conn: SAConnection | None = None
        self._conn_thread: int | None = None
        self._closed = False
        self.rows_written = 0
        """Messages, events and snapshots this writer has committed."""
        self._analyzed = 0
        self._next_analyze = ANALYZE_FIRST
        self._touched: set[str] = set()
        self._analyzer: threading.Thread | None = None
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
                "handshake",
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
        self._sql_worker_delete = f"DELETE FROM workers WHERE recording_id = {m} AND worker = {m}"
        self._sql_worker = sql.insert(
            schema.workers,
            ("recording_id", "worker", "worker_id", "url", "name", "version", "server"),
        )
        self._sql_worker_hashes = sql.insert(
            schema.worker_hashes, schema.WORKER_HASH_COLUMNS, ignore=True
        )
        self._copy_worker_hashes = sql.copy(schema.worker_hashes, schema.WORKER_HASH_COLUMNS)
        self._sql_worker_snapshot = sql.insert(
            schema.worker_snapshots,
            ("recording_id", "v", "worker", "state", "hash", "t_ns"),
            ignore=True,
        )
        self._sql_fill = (
            f"UPDATE events SET hash = COALESCE(hash, {m}), cause_seq = COALESCE(cause_seq, {m}) "
            f"WHERE recording_id = {m} AND v = {m}"
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
        self._workers: dict[int, tuple] = {}
        self._worker_hashes: list[tuple] = []
        self._worker_snapshots: list[tuple] = []
        self._fills: list[tuple] = []
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
            None if conn.handshake is None else dumps(conn.handshake),
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

    def add_worker(self, worker: Worker) -> None:
        """Buffer a worker's row; a later call for the same index replaces it (its hello)."""
        row = (
            self.recording_id,
            worker.index,
            worker.id,
            worker.url,
            worker.name,
            worker.version,
            None if worker.server is None else dumps(worker.server),
        )
        with self._lock:
            self._workers[worker.index] = row
        self._added(1)

    def add_worker_hashes(self, hashes: Sequence[WorkerHash]) -> None:
        """Buffer workers' hashes; a ``(v, worker)`` already stored is ignored."""
        rid = self.recording_id
        rows = [
            (rid, h.v, h.worker, h.hash, None if h.event is None else dumps(h.event))
            for h in hashes
        ]
        with self._lock:
            self._worker_hashes.extend(rows)
        self._added(len(rows))

    def add_worker_snapshot(self, snapshot: WorkerSnapshot) -> None:
        """Buffer a worker's snapshot; a second one of the same worker at the same ``v`` is
        ignored."""
        row = (
            self.recording_id,
            snapshot.v,
            snapshot.worker,
            dumps(snapshot.state),
            snapshot.hash,
            snapshot.t_ns,
        )
        with self._lock:
            self._worker_snapshots.append(row)
        self._added(1)

    def fill_events(self, fills: Sequence[tuple[int, str | None, int | None]]) -> None:
        """Buffer ``(v, hash, cause_seq)``: set a stored event's hash and cause where they are
        still NULL (an event stored from one worker's report, completed by another's)."""
        rid = self.recording_id
        rows = [(h, cause, rid, v) for v, h, cause in fills]
        with self._lock:
            self._fills.extend(rows)
        self._added(len(rows))

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
            self._conn = self.db.connect(write=True)
            self._conn_thread = me
        return self._conn

    def _drop_connection(self) -> None:
        conn, self._conn, self._conn_thread = self._conn, None, None
        if conn is not None:
            with contextlib.suppress(Exception):  # the connection is being thrown away
                conn.close()

    def _write(self, cursor: Any, batch: tuple) -> None:
        connections, messages, events, snapshots, marks, gaps, closes, server, more = batch
        workers, worker_hashes, worker_snapshots, fills = more
        sql = self.db
        try:
            if connections:
                cursor.executemany(self._sql_connection, connections)
            if messages:
                if sql.copy_messages is not None:
                    _copy(cursor, sql.copy_messages, messages)  # a repeated seq fails: loud
                elif sql.insert_message_rows is not None:
                    _insert_in_groups(cursor, sql, messages)
                else:
                    cursor.executemany(sql.insert_messages, messages)
            if events:
                if sql.copy_events is not None:
                    self._copy_or_insert(cursor, sql.copy_events, sql.insert_events, events)
                else:
                    cursor.executemany(sql.insert_events, events)
            if snapshots:
                cursor.executemany(self._sql_snapshot, snapshots)
            if marks:
                cursor.executemany(self._sql_mark, marks)
            if gaps:
                cursor.executemany(self._sql_gap, gaps)
            if closes:
                cursor.executemany(self._sql_close, closes)
            if workers:
                cursor.executemany(self._sql_worker_delete, [row[:2] for row in workers])
                cursor.executemany(self._sql_worker, workers)
            if worker_hashes:
                if self._copy_worker_hashes is not None:
                    self._copy_or_insert(
                        cursor, self._copy_worker_hashes, self._sql_worker_hashes, worker_hashes
                    )
                else:
                    cursor.executemany(self._sql_worker_hashes, worker_hashes)
            if worker_snapshots:
                cursor.executemany(self._sql_worker_snapshot, worker_snapshots)
            if fills:
                cursor.executemany(self._sql_fill, fills)
            if server is not None:
                cursor.execute(self._sql_server, (server, self.recording_id))
        finally:
            cursor.close()

    @staticmethod
    def _copy_or_insert(cursor: Any, copy_sql: str | None, insert_sql: str, rows: list) -> None:
        """PostgreSQL: ``COPY`` the rows; if one is already stored (same key: a resent event),
        undo the copy and insert them row by row, keeping the stored ones."""
        cursor.execute("SAVEPOINT rdt_copy")
        try:
            _copy(cursor, copy_sql, rows)  # type: ignore[arg-type]
        except Exception as error:
            if getattr(error, "sqlstate", None) != "23505":  # unique_violation
                raise
            cursor.execute("ROLLBACK TO SAVEPOINT rdt_copy")
            cursor.executemany(insert_sql, rows)
        cursor.execute("RELEASE SAVEPOINT rdt_copy")

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
                (
                    list(self._workers.values()),
                    self._worker_hashes,
                    self._worker_snapshots,
                    self._fills,
                ),
            )
            if not self._pending:
                return
            self._reset()
        try:
            conn = self._connection()
            if self.db.is_sqlite:
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
            raise LogError(f"cannot write to {self.db.target}: {one_line(error)}") from error
        self.rows_written += len(batch[1]) + len(batch[2]) + len(batch[3]) + len(batch[8][1])
        names = ("connections", "messages", "events", "snapshots")
        self._touched.update(name for name, rows in zip(names, batch, strict=False) if rows)
        if batch[8][1]:
            self._touched.add("worker_hashes")
        if self.rows_written >= self._next_analyze:
            self._analyze(background=True)

    def _analyze(self, *, background: bool = False) -> None:
        """Statistics up to date for this recording's rows (PostgreSQL; see ``LogDb.analyze``).

        At :data:`~devtools.log_db.ANALYZE_FIRST` rows, then each time the rows double (at
        least every :data:`~devtools.log_db.ANALYZE_STEP`), and when the writer closes: a
        handful of ``ANALYZE`` runs per recording, each sampling a bounded number of rows.
        While recording (``background``) it runs on a thread and connection of its own, so
        the writer's flushes never wait for it (a few hundred ms on a table of millions);
        at close it runs before :meth:`close` returns (an import's tables are analyzed when
        the import is done).
        """
        if self.rows_written == self._analyzed or self.db.is_sqlite:
            return
        running = self._analyzer
        if running is not None:
            if background and running.is_alive():
                return  # the one still running will do; try again at the next step
            running.join()
        touched, self._touched = sorted(self._touched), set()
        if background:
            self._analyzer = threading.Thread(
                target=self.db.analyze, args=(touched,), name="rdt-analyze", daemon=True
            )
            self._analyzer.start()
        else:
            self.db.analyze(touched)
        self._analyzed = self.rows_written
        self._next_analyze = self.rows_written + min(
            max(self.rows_written, ANALYZE_FIRST), ANALYZE_STEP
        )

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
        self._analyze()

    def drop_buffered(self) -> None:
        """Forget the rows buffered since the last flush (a flush that failed: the recorder
        has covered them with a gap); what was written stays."""
        with self._lock:
            self._reset()

    def discard(self) -> None:
        """Drop what is buffered and delete the whole recording (a failed import)."""
        with self._lock:
            self._reset()
        self._closed = True
        self._drop_connection()
        self.db.delete_recording(self.recording_id)

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _copy(cursor: Any, sql: str, rows: list[tuple]) -> None:
    """Rows through psycopg's ``COPY … FROM STDIN`` (PostgreSQL's bulk path: ~4× executemany)."""
    with cursor.copy(sql) as copy:
        write = copy.write_row
        for row in rows:
            write(row)


def _insert_in_groups(cursor: Any, sql: Any, rows: list[tuple]) -> None:
    """SQLite: messages :data:`~devtools.log_db.MESSAGE_ROWS_PER_INSERT` to a statement, the
    few left over one by one."""
    size = MESSAGE_ROWS_PER_INSERT
    whole = len(rows) - len(rows) % size
    if whole:
        flat = chain.from_iterable
        groups = [tuple(flat(rows[i : i + size])) for i in range(0, whole, size)]
        cursor.executemany(sql.insert_message_rows, groups)
    if whole < len(rows):
        cursor.executemany(sql.insert_messages, rows[whole:])
