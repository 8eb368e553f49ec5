"""The log store: open a log, write recordings in batches, read them back in pages.

``LOG`` is a file path (SQLite, the embedded default) or a SQLAlchemy URL (anything containing
``://``, e.g. ``postgresql+psycopg://…``). One :class:`Log` owns one ``Engine``.

SQLite is opened in WAL mode with ``synchronous=NORMAL`` and a busy timeout. pysqlite's own
transaction handling is switched off and SQLAlchemy emits ``BEGIN`` itself (the documented
event-hook recipe), so the writer can take ``BEGIN IMMEDIATE`` (the write lock up front, never a
deadlocking upgrade) while readers use plain deferred transactions. SQLite connections are
never shared between threads: the engine uses ``NullPool`` (a connection per checkout, opened in
the calling thread), and the writer keeps its one connection only while the same thread calls it.

Reading is :class:`devtools.log_reader.LogReader`, writing :class:`devtools.log_writer.LogWriter`;
both are re-exported here, with the reader's page sizes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Connection as SAConnection
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from devtools import schema
from devtools.errors import (
    AmbiguousRecording,
    LogError,
    LogTooNew,
    NotALog,
    UnknownRecording,
    one_line,
)
from devtools.jsonutil import dumps, loads
from devtools.log_db import LogDb
from devtools.log_reader import PAGE_SIZE, PAYLOAD_PAGE, LogReader
from devtools.log_writer import LogWriter
from devtools.masking import mask
from devtools.model import (
    Recording,
    RecordingSummary,
)

__all__ = [
    "discard_if_new",
    "ID_PREFIX",
    "NAME_PREFIX",
    "PAGE_SIZE",
    "PAYLOAD_PAGE",
    "RECORDING_RULE",
    "Log",
    "LogReader",
    "LogWriter",
]

ID_PREFIX = "id:"
NAME_PREFIX = "name:"
RECORDING_RULE = (
    "A number is a recording id, or the name of a recording when no recording has that id; "
    "any other text is a name (the latest recording of that name). When a number is one "
    "recording's id and another's name, rdt stops (exit 3): write id:N or name:N to choose."
)
"""How ``--recording REF`` picks a recording, in every command (:meth:`Log.recording`)."""


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()


_SQLITE_HEADER = b"SQLite format 3\x00"
_BUSY_TIMEOUT_MS = 10_000


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


@contextlib.contextmanager
def discard_if_new(target: str | Path) -> Iterator[None]:
    """Remove the SQLite log file at ``target`` again when the block fails and the file did not
    exist before it (a failed ``rdt record`` or ``rdt import`` leaves no new log behind).

    A URL target is left alone (its database is not ours to drop).
    """
    text = str(target)
    existed = "://" in text or Path(text).exists()
    try:
        yield
    except BaseException:
        if not existed:
            for suffix in ("", "-wal", "-shm", "-journal"):
                with contextlib.suppress(OSError):
                    Path(text + suffix).unlink()
        raise


def _display(target: str | Path) -> str:
    """The target for messages: every password masked (:func:`devtools.masking.mask`)."""
    return mask(str(target))


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
        self.db = LogDb(engine, target, is_sqlite=is_sqlite)
        """The handle readers and writers share (engine, SQL, dialect facts)."""

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
                raise LogError(f"cannot open {shown}: {one_line(error)}") from None
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
            if self.is_sqlite and "not a database" in one_line(error):
                raise NotALog(f"{self.target} is not an rdt log") from None
            raise LogError(f"cannot open {self.target}: {one_line(error)}") from None
        except sa.exc.SQLAlchemyError as error:
            raise LogError(f"cannot open {self.target}: {one_line(error)}") from None
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
        required = missing - set(schema.OPTIONAL_TABLES)
        if required:
            names = ", ".join(sorted(required))
            raise NotALog(f"{self.target} is not an rdt log (missing {names})")
        if missing:
            # The cache table, and tables added since the log was written (an older rdt's log
            # has no worker tables), are created empty on an existing log.
            self._create_tables(missing)
        self._add_missing_columns()

    def _create_tables(self, names: set[str]) -> None:
        try:
            with self.engine.begin() as conn:
                for name in sorted(names):
                    schema.metadata.tables[name].create(conn, checkfirst=True)
        except sa.exc.SQLAlchemyError as error:
            raise LogError(
                f"cannot open {self.target}: adding the tables {', '.join(sorted(names))} "
                f"failed: {one_line(error)}"
            ) from None

    def _add_missing_columns(self) -> None:
        """Logs written before ``connections.handshake`` existed get the (nullable) column."""
        columns = {c["name"] for c in sa.inspect(self.engine).get_columns("connections")}
        if "handshake" in columns:
            return
        kind = "BLOB" if self.is_sqlite else "BYTEA"
        try:
            with self.engine.begin() as conn:
                conn.exec_driver_sql(f"ALTER TABLE connections ADD COLUMN handshake {kind}")
        except sa.exc.SQLAlchemyError as error:
            raise LogError(
                f"cannot open {self.target}: adding connections.handshake failed: {one_line(error)}"
            ) from None

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

    def checkpoint(self) -> None:
        """SQLite: copy what the write-ahead log holds into the file now (``PASSIVE``: waiting
        for no one), so that the last connection's close, which does the same, has little left
        to copy and sync. Elsewhere nothing. Blocking (call it off the event loop); a failure
        is ignored, as the close will do it anyway."""
        if not self.is_sqlite:
            return
        with contextlib.suppress(sa.exc.SQLAlchemyError), self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

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
        return self.db.summary(rec)

    def recording(self, ref: int | str | None = None) -> Recording:
        """The recording ``ref`` names, by the one rule every command's ``--recording`` uses.

        See :data:`RECORDING_RULE`: ``None`` is the latest; an ``int`` is an id; ``"id:N"`` an
        id and ``"name:X"`` a name, exactly; a string of digits is an id, or the name of a
        recording when no recording has that id; any other string is a name (the latest
        recording of that name).

        Raises:
            UnknownRecording: no such recording (or the log has none).
            AmbiguousRecording: ``ref`` is a number that is one recording's id and another
                recording's name.
        """
        if ref is None:
            rows = self._recording_rows()
            if not rows:
                raise UnknownRecording(
                    f"no recordings in {self.target} yet; see rdt ls {self.target}"
                )
            return rows[-1]
        if isinstance(ref, int) and not isinstance(ref, bool):
            return self._by_id(ref) or self._unknown(str(ref))
        if not isinstance(ref, str):
            raise TypeError(f"a recording ref is an int, a str or None, not {type(ref).__name__}")
        if ref.startswith(ID_PREFIX):
            digits = ref[len(ID_PREFIX) :]
            if not _is_number(digits):
                raise UnknownRecording(
                    f"--recording {ref!r}: {ID_PREFIX} takes a recording id (a number); "
                    f"see rdt ls {self.target}"
                )
            return self._by_id(int(digits)) or self._unknown(ref)
        if ref.startswith(NAME_PREFIX):
            return self._by_name(ref[len(NAME_PREFIX) :]) or self._unknown(ref)
        if not _is_number(ref):
            return self._by_name(ref) or self._unknown(ref)
        by_id, by_name = self._by_id(int(ref)), self._by_name(ref)
        if by_id is not None and by_name is not None and by_id.id != by_name.id:
            raise AmbiguousRecording(
                f"--recording {ref} is ambiguous in {self.target}: recording id {ref} is named "
                f"{by_id.name!r} and recording {by_name.id} is named {ref!r}; "
                f"write {ID_PREFIX}{ref} or {NAME_PREFIX}{ref}"
            )
        return by_id or by_name or self._unknown(ref)

    def _by_id(self, rid: int) -> Recording | None:
        rows = self._recording_rows(schema.recordings.c.id == rid)
        return rows[0] if rows else None

    def _by_name(self, name: str) -> Recording | None:
        rows = self._recording_rows(schema.recordings.c.name == name)
        return rows[-1] if rows else None

    def _unknown(self, ref: str) -> NoReturn:
        raise UnknownRecording(f"no recording {ref!r} in {self.target}; see rdt ls {self.target}")

    def delete_recording(self, recording_id: int) -> int:
        """Delete a recording and everything in it (checkpoints included), in short batches
        (:meth:`devtools.log_db.LogDb.delete_recording`); returns the rows deleted."""
        return self.db.delete_recording(recording_id)

    def older_than(self, cutoff_ns: int) -> list[Recording]:
        """The recordings whose last activity (end, else last record, else start) is before
        ``cutoff_ns``: a recording still being written is never among them."""
        return [rec for rec in self._recording_rows() if self.db.last_activity_ns(rec) < cutoff_ns]

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
        with self.db.connect(write=True) as conn:
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
