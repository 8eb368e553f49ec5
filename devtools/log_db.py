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

from collections.abc import Sequence
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection as SAConnection
from sqlalchemy.engine import Engine

from devtools import schema
from devtools.model import Recording, RecordingSummary

__all__ = ["HasDb", "LogDb"]


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
        self.insert_events = self.insert(schema.events, schema.EVENT_COLUMNS, ignore=True)
        self.event_payloads = (
            f"SELECT v, event FROM events WHERE recording_id = {mark} AND v >= {mark} "
            f"AND v <= {mark} ORDER BY v LIMIT {mark}"
        )
        """``(recording_id, lo, hi, limit)`` → ``(v, event JSON)`` rows."""
        self.event_hashes = (
            f"SELECT v, hash FROM events WHERE recording_id = {mark} AND v >= {mark} "
            f"AND v <= {mark} AND hash IS NOT NULL ORDER BY v LIMIT {mark}"
        )
        """``(recording_id, lo, hi, limit)`` → ``(v, recorded hash)`` rows."""

    def insert(self, table: sa.Table, columns: Sequence[str], *, ignore: bool = False) -> str:
        """A driver-level ``INSERT`` of ``columns`` (``ignore``: keep rows already there)."""
        quote, mark = self._quote, self.mark
        names = ", ".join(quote(c) for c in columns)
        marks = ", ".join(mark for _ in columns)
        tail = " ON CONFLICT DO NOTHING" if ignore else ""
        return f"INSERT INTO {quote(table.name)} ({names}) VALUES ({marks}){tail}"

    def connect(self, *, write: bool = False) -> SAConnection:
        """A connection; ``write`` takes SQLite's write lock at ``BEGIN`` (``BEGIN IMMEDIATE``)."""
        conn = self.engine.connect()
        return conn.execution_options(sqlite_immediate=True) if write else conn

    def summary(self, rec: Recording) -> RecordingSummary:
        """``rec`` with its counts and time span, each from an index (count) or an index edge."""
        rid = rec.id
        counts: dict[str, int] = {}
        spans: list[int] = []
        with self.engine.connect() as conn:
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

    def delete_recording(self, recording_id: int) -> None:
        """Delete a recording and everything in it (checkpoints included)."""
        with self.connect(write=True) as conn:
            for table in reversed(schema.metadata.sorted_tables):
                if "recording_id" in table.c:
                    conn.execute(table.delete().where(table.c.recording_id == recording_id))
            conn.execute(schema.recordings.delete().where(schema.recordings.c.id == recording_id))
            conn.commit()


class HasDb(Protocol):
    """What a reader or writer is opened on: a :class:`devtools.store.Log` (its ``db``)."""

    db: LogDb
