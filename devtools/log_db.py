"""The handle the store's reader and writer share: one engine, its SQL, its dialect's facts.

:class:`LogDb` is what :class:`devtools.log_reader.LogReader`,
:class:`devtools.log_writer.LogWriter` and :class:`devtools.checkpoint_store.CheckpointStore`
work through; a
:class:`devtools.store.Log` opens one and hands it out as ``log.db``. Nothing here imports the
reader, the writer or the store, so the store's modules form no import cycle::

    store ──> log_reader ──> log_db
      │   └─> log_writer ──> log_db
      └─────> checkpoint_store ──> log_db

The driver-level SQL strings (placeholders and identifier quoting for the dialect) are built
once here: the hot paths (the writer's ``executemany``, the replay's page reads) skip
SQLAlchemy's statement compilation.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection as SAConnection
from sqlalchemy.engine import Engine

from devtools import schema
from devtools.model import Recording, RecordingSummary

__all__ = ["ANALYZE_FIRST", "ANALYZE_STEP", "DROP_BATCH", "HasDb", "LogDb"]

INDEX_PLANS = (
    "SELECT set_config('enable_seqscan', 'off', true), "
    "set_config('enable_bitmapscan', 'off', true), set_config('enable_sort', 'off', true)"
)
"""PostgreSQL: run in a read's transaction (``SET LOCAL``), so its queries take the index.

Every query rdt reads with is a key range of a primary key (``recording_id`` first) with the
order of that key and often a ``LIMIT``: the index scan is right whatever the statistics say.
Without statistics (a freshly imported table) or with stale ones (a recording added since the
last ``ANALYZE``) the planner expects a handful of rows and picks a bitmap heap scan of every
remaining row of the recording and a top-N sort: 44 ms a page with 100,000 rows left, a replay
that grows with the square of the log. Turning the alternatives off for the transaction leaves
the planner one plan; the settings end with the transaction (each page is one).
"""

_SESSION_PLANS = INDEX_PLANS.replace("true)", "false)")
_RESET_PLANS = "RESET enable_seqscan; RESET enable_bitmapscan; RESET enable_sort"

ANALYZE_FIRST = 10_000
"""Rows a writer writes before its first ``ANALYZE`` (PostgreSQL)."""
ANALYZE_STEP = 1_000_000
"""After that, a writer analyzes each time its rows double, and at least every this many."""

DROP_BATCH = 5_000
"""Rows per transaction when a recording is dropped (PostgreSQL): each batch holds its row
locks (no one else's rows) for milliseconds, and no transaction grows with the recording."""
DROP_BATCH_SQLITE = 2_000
"""SQLite: rows per batch. A batch holds the one write lock of the file (~20 ms for 2,000
rows); after it the drop pauses at least as long (:data:`DROP_PAUSE`), so a recorder
waiting in SQLite's busy handler (which retries after 1, 2, 5 … 100 ms) gets the lock."""
DROP_PAUSE = 0.02
"""Seconds of the least pause between two SQLite batches (the pause is at least the batch's
own time: the drop holds the write lock at most half the time)."""

_WRITTEN_TABLES = (
    "messages",
    "events",
    "snapshots",
    "connections",
    "checkpoints",
    "worker_hashes",
)


MESSAGE_ROWS_PER_INSERT = 50
"""Messages per ``INSERT`` on SQLite (500 values: below even old SQLite's limit of 999)."""


class LogDb:
    """One log's engine and the SQL the reader and writer run on it."""

    engine: Engine
    target: str
    """The log as given, for messages (a URL's password hidden)."""
    is_sqlite: bool
    mark: str
    """The driver's placeholder (``?`` or ``%s``)."""

    def __init__(self, engine: Engine, target: str, *, is_sqlite: bool) -> None:
        self.engine = engine
        self.target = target
        self.is_sqlite = is_sqlite
        self.dialect = engine.dialect.name
        self._quote = engine.dialect.identifier_preparer.quote
        mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self.mark = mark
        self.insert_messages = self.insert(schema.messages, schema.MESSAGE_COLUMNS)
        self.insert_message_rows = (
            self.insert(schema.messages, schema.MESSAGE_COLUMNS, rows=MESSAGE_ROWS_PER_INSERT)
            if is_sqlite
            else None
        )
        """SQLite: one ``INSERT`` of :data:`MESSAGE_ROWS_PER_INSERT` messages (a third less
        work per row than one ``INSERT`` each; elsewhere ``None``: COPY, or the driver's own)."""
        self.insert_events = self.insert(schema.events, schema.EVENT_COLUMNS, ignore=True)
        self.event_payloads = (
            f"SELECT v, event FROM events WHERE recording_id = {mark} AND v >= {mark} "
            f"AND v <= {mark} ORDER BY recording_id, v LIMIT {mark}"
        )
        """``(recording_id, lo, hi, limit)`` → ``(v, event JSON)`` rows."""
        self.event_hashes = (
            f"SELECT v, hash FROM events WHERE recording_id = {mark} AND v >= {mark} "
            f"AND v <= {mark} AND hash IS NOT NULL ORDER BY recording_id, v LIMIT {mark}"
        )
        """``(recording_id, lo, hi, limit)`` → ``(v, recorded hash)`` rows."""
        self.copy_messages = self.copy(schema.messages, schema.MESSAGE_COLUMNS)
        """PostgreSQL: ``COPY messages (…) FROM STDIN`` (``None`` on SQLite)."""
        self.copy_events = self.copy(schema.events, schema.EVENT_COLUMNS)
        """PostgreSQL: ``COPY events (…) FROM STDIN`` (``None`` on SQLite)."""
        self.index_plans: str | None = None if is_sqlite else INDEX_PLANS
        """Run first in each read transaction (PostgreSQL; ``None`` on SQLite)."""

    def insert(
        self, table: sa.Table, columns: Sequence[str], *, ignore: bool = False, rows: int = 1
    ) -> str:
        """A driver-level ``INSERT`` of ``columns`` (``ignore``: keep rows already there), of
        ``rows`` rows at a time (their values one after the other)."""
        quote, mark = self._quote, self.mark
        names = ", ".join(quote(c) for c in columns)
        marks = "(" + ", ".join(mark for _ in columns) + ")"
        tail = " ON CONFLICT DO NOTHING" if ignore else ""
        values = ", ".join([marks] * rows)
        return f"INSERT INTO {quote(table.name)} ({names}) VALUES {values}{tail}"

    def copy(self, table: sa.Table, columns: Sequence[str]) -> str | None:
        """PostgreSQL's ``COPY table (columns) FROM STDIN`` (``None`` where there is no COPY)."""
        if self.dialect != "postgresql":
            return None
        names = ", ".join(self._quote(c) for c in columns)
        return f"COPY {self._quote(table.name)} ({names}) FROM STDIN"

    def connect(self, *, write: bool = False) -> SAConnection:
        """A connection; ``write`` takes SQLite's write lock at ``BEGIN`` (``BEGIN IMMEDIATE``)."""
        conn = self.engine.connect()
        return conn.execution_options(sqlite_immediate=True) if write else conn

    @contextlib.contextmanager
    def reading(self) -> Iterator[SAConnection]:
        """A connection for reads whose queries take the primary key (see :data:`INDEX_PLANS`).

        The transaction it opens ends when the block does (rolled back: reads only).
        """
        with self.engine.connect() as conn:
            if self.index_plans is not None:
                conn.exec_driver_sql(self.index_plans)
            yield conn

    def index_plans_on(self, cursor: Any) -> None:
        """The driver-level twin of :meth:`reading`: call first in each page's transaction."""
        if self.index_plans is not None:
            cursor.execute(self.index_plans)
            cursor.fetchall()

    @contextlib.contextmanager
    def page_session(self, dbapi: Any) -> Iterator[Any]:
        """A driver cursor for a walk of many pages on one driver connection ``dbapi``.

        SQLite: a plain cursor (pysqlite is in autocommit here: each ``SELECT`` is finished
        before its page is handed out). PostgreSQL: the connection in autocommit, so each page
        is its own transaction without a ``ROLLBACK`` round trip, with the planner settings of
        :data:`INDEX_PLANS` for the session, reset (and autocommit off) before the connection
        goes back to the pool. One round trip a page.
        """
        if self.is_sqlite:
            cursor = dbapi.cursor()
            try:
                yield cursor
            finally:
                # a walk left unfinished is closed when its generator is collected, which may
                # be after the log was closed: there is nothing left to close then
                with contextlib.suppress(Exception):
                    cursor.close()
            return
        dbapi.autocommit = True
        cursor = dbapi.cursor()
        try:
            cursor.execute(_SESSION_PLANS)
            yield cursor
        finally:
            try:
                cursor.execute(_RESET_PLANS)
                cursor.close()
                dbapi.autocommit = False
            except Exception:  # noqa: BLE001 - a broken connection: the pool drops it
                with contextlib.suppress(Exception):
                    dbapi.close()

    def analyze(self, tables: Sequence[str] = _WRITTEN_TABLES) -> None:
        """Bring the planner's statistics of ``tables`` up to date (PostgreSQL; SQLite: no-op).

        ``ANALYZE (SKIP_LOCKED)``: a table another writer is analyzing right now is skipped, never
        waited for (two recorders into one log do not queue behind each other's ``ANALYZE``).
        It samples a bounded number of rows (300 × the statistics target), so its cost does not
        grow with the table. Failures are ignored: statistics are an optimisation here, the
        reads take the index anyway (:data:`INDEX_PLANS`).
        """
        if self.is_sqlite or not tables:
            return
        names = ", ".join(self._quote(t) for t in tables)
        with (
            contextlib.suppress(sa.exc.SQLAlchemyError),
            self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn,
        ):
            conn.exec_driver_sql(f"ANALYZE (SKIP_LOCKED) {names}")

    def summary(self, rec: Recording) -> RecordingSummary:
        """``rec`` with its counts and time span, each from an index (count) or an index edge."""
        rid = rec.id
        counts: dict[str, int] = {}
        spans: list[int] = []
        with self.reading() as conn:
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
                rid_col = table.c.recording_id
                # ORDER BY the whole primary key, both ways: the index's own order (and edge)
                for order in ((rid_col, key), (rid_col.desc(), key.desc())):
                    value = conn.execute(
                        sa.select(table.c.t_ns).where(rid_col == rid).order_by(*order).limit(1)
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

    def last_activity_ns(self, rec: Recording) -> int:
        """When ``rec`` last changed: its end, else its last message or event, else its start.

        From index edges only (no counts): cheap on a recording of any size.
        """
        if rec.ended_ns is not None:
            return rec.ended_ns
        last = rec.started_ns
        with self.reading() as conn:
            for table, key in (
                (schema.messages, schema.messages.c.seq),
                (schema.events, schema.events.c.v),
            ):
                rid_col = table.c.recording_id
                value = conn.execute(
                    sa.select(table.c.t_ns)
                    .where(rid_col == rec.id)
                    .order_by(rid_col.desc(), key.desc())
                    .limit(1)
                ).scalar()
                if value is not None:
                    last = max(last, value)
        return last

    def delete_recording(self, recording_id: int, *, batch: int | None = None) -> int:
        """Delete a recording and everything in it (checkpoints included), in short batches.

        Each batch is its own transaction deleting at most ``batch`` rows of one table, found by
        a key range of its primary key (``recording_id`` first), so no batch holds a lock long
        and no table is rewritten (the space is reused by later rows; SQLite's file does not
        shrink until a ``VACUUM``). The ``recordings`` row goes last: a drop cut short leaves
        the recording listed, and running the drop again finishes it.

        Returns:
            How many rows were deleted (all tables).
        """
        if batch is None:
            batch = DROP_BATCH_SQLITE if self.is_sqlite else DROP_BATCH
        deleted = 0
        for table in reversed(schema.metadata.sorted_tables):
            if "recording_id" not in table.c:
                continue
            deleted += self._delete_batched(table, recording_id, batch)
        with self.connect(write=True) as conn:
            r = schema.recordings
            deleted += conn.execute(r.delete().where(r.c.id == recording_id)).rowcount or 0
            conn.commit()
        self.analyze()
        return deleted

    def _delete_batched(self, table: sa.Table, recording_id: int, batch: int) -> int:
        # the primary key after recording_id; marks and gaps: their own id (few rows each);
        # worker_hashes and worker_snapshots: (v, worker), a range of v at a time
        keys = [c for c in table.primary_key.columns if c.name != "recording_id"]
        if len(keys) > 1 and not isinstance(keys[0].type, sa.Integer):
            # checkpoints: (recording_id, key, v): one reducer key at a time
            head, last = keys[0], keys[-1]
            with self.reading() as conn:
                groups = [
                    row[0]
                    for row in conn.execute(
                        sa.select(head).where(table.c.recording_id == recording_id).distinct()
                    )
                ]
            return sum(
                self._delete_range(table, recording_id, last, batch, head == value)
                for value in groups
            )
        return self._delete_range(table, recording_id, keys[0], batch)

    def _delete_range(
        self, table: sa.Table, rid: int, key: sa.Column, batch: int, *extra: Any
    ) -> int:
        where = (table.c.recording_id == rid, *extra)
        bound_query = sa.select(key).where(*where).order_by(key).offset(batch - 1).limit(1)
        deleted = 0
        while True:
            started = time.perf_counter()
            with self.connect(write=True) as conn:
                if self.index_plans is not None:
                    conn.exec_driver_sql(self.index_plans)
                bound = conn.execute(bound_query).scalar()
                query = table.delete().where(*where)
                if bound is not None:
                    query = query.where(key <= bound)
                deleted += conn.execute(query).rowcount or 0
                conn.commit()
            if bound is None:
                return deleted
            if self.is_sqlite:
                time.sleep(max(DROP_PAUSE, time.perf_counter() - started))


class HasDb(Protocol):
    """What a reader or writer is opened on: a :class:`devtools.store.Log` (its ``db``)."""

    db: LogDb
