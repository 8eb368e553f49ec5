"""``rdt import-events``: events pulled from an event store's own table (the thin I/O shell).

Reads the table in keyset pages (``WHERE key >= cursor ORDER BY key LIMIT n`` through a
server-side cursor, one short transaction a page), so memory stays flat on any number of rows;
the pure rules (row → event, presets, bad rows) are :mod:`devtools.event_table`. Each page is
written in one log transaction together with the resume point (the recording's server info
``last_key``/``seen``), so a second run — or ``--follow`` — appends only the rows after it.

The recording is marked ``{"events_from": "table", "table": …, "source": <URL, password
masked>, "key": […], "last_key": […], "seen": N}`` in its server info (no schema change).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from devtools.errors import BadInput, LogError, one_line
from devtools.event_table import BadRow, Layout, Tally, key_json, row_event, row_key
from devtools.schema import EVENTS_FROM
from devtools.store import Log, LogWriter

PAGE = 5000
"""Rows read per page."""


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What one ``rdt import-events`` run did."""

    recording_id: int
    name: str
    appended: bool
    """The run appended to an earlier import's recording."""
    first_v: int | None
    last_v: int | None
    """The ``v`` range this run imported (``None``: nothing new)."""
    tally: Tally


def masked(url: str) -> str:
    """``url`` with its password hidden (for output and the recording's server info)."""
    if "://" not in url:
        return url
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - display only
        return url.split("://", 1)[0] + "://…"


def source_engine(url: str) -> sa.Engine:
    """An engine on the event table's database (a path means a SQLite file).

    Raises:
        BadInput: a URL SQLAlchemy cannot parse, or a driver that is not installed.
    """
    if "://" not in url:
        if not Path(url).is_file():
            raise BadInput(f"no such database file: {url}")
        url = f"sqlite:///{Path(url).resolve()}"
    try:
        return sa.create_engine(url, poolclass=sa.pool.NullPool)
    except ModuleNotFoundError as error:
        hint = " (pip install 'reducer-devtools[mysql]')" if "mysql" in url else ""
        raise BadInput(f"no driver for {masked(url)}: {error.name} is missing{hint}") from None
    except (sa.exc.ArgumentError, ValueError) as error:
        raise BadInput(f"not a database URL: {masked(url)}: {one_line(error)}") from None


def reflect(engine: sa.Engine, table: str, layout: Layout) -> sa.Table:
    """The table, with every column the layout needs (raises ``BadInput`` naming what lacks)."""
    schema, _, name = table.rpartition(".")
    try:
        found = sa.Table(name, sa.MetaData(), schema=schema or None, autoload_with=engine)
    except sa.exc.NoSuchTableError:
        raise BadInput(f"no table {table!r} in {masked(str(engine.url))}") from None
    except sa.exc.SQLAlchemyError as error:
        raise BadInput(f"cannot read {masked(str(engine.url))}: {one_line(error)}") from None
    missing = [c for c in layout.needed() if c not in found.c]
    if missing:
        have = ", ".join(found.c.keys())
        raise BadInput(f"table {table!r} has no column {', '.join(missing)} (it has {have})")
    return found


def _find_recording(log: Log, name: str, table: str) -> Any:
    """The latest earlier import of ``table`` named ``name``, or ``None``."""
    for summary in reversed(log.recordings()):
        rec = summary.recording
        server = rec.server or {}
        if rec.name == name and server.get(EVENTS_FROM) == "table" and server.get("table") == table:
            return rec
    return None


class _Pages:
    """Keyset pages of one table, from a cursor (the key of the last row seen, and how many
    rows with that key were seen: rows with an equal key are dropped that many times, so a
    repeated ``v`` is read, not skipped by ``>``)."""

    def __init__(
        self, engine: sa.Engine, table: sa.Table, layout: Layout, where: str | None, page: int
    ) -> None:
        self.engine = engine
        self.layout = layout
        self.page = page
        self.key_cols = [table.c[c] for c in layout.key]
        self.select = sa.select(*[table.c[c] for c in layout.needed()])
        self.count_select = sa.select(sa.func.count()).select_from(table)
        if where:
            self.select = self.select.where(sa.text(where))
            self.count_select = self.count_select.where(sa.text(where))
        self.select = self.select.order_by(*self.key_cols)

    def _after(self, stmt: Any, cursor: tuple | None) -> Any:
        if cursor is None:
            return stmt
        if len(self.key_cols) == 1:
            return stmt.where(self.key_cols[0] >= cursor[0])
        return stmt.where(sa.tuple_(*self.key_cols) >= sa.tuple_(*cursor))

    def remaining(self, cursor: tuple | None) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(self._after(self.count_select, cursor)).scalar_one())

    def read(self, cursor: tuple | None, seen: int) -> list[dict[str, Any]]:
        """The next rows after the cursor (at most a page, plus the ones dropped)."""
        stmt = self._after(self.select, cursor).limit(self.page + seen)
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=self.page).execute(stmt)
            rows = [dict(row._mapping) for row in result]
        drop = 0
        while drop < min(seen, len(rows)) and row_key(rows[drop], self.layout) == cursor:
            drop += 1
        return rows[drop:]


def import_events(
    db_url: str,
    *,
    table: str,
    log: str,
    layout: Layout,
    name: str | None = None,
    where: str | None = None,
    on_bad: str = "refuse",
    page: int = PAGE,
    follow: bool = False,
    interval_ms: int = 1000,
    stop: threading.Event | None = None,
    progress: Callable[[int | None], Any] | None = None,
    clock: Callable[[], int] = time.time_ns,
) -> ImportResult:
    """Import (or append) a table's events into a recording of ``log``.

    Args:
        progress: called with the number of rows to read (``None`` when unknown) and returning
            an object with ``advance(n)`` and ``close()``; ``None``: no progress display.
        stop: with ``follow``, set it to stop tailing (Ctrl-C does too).

    Raises:
        BadInput: bad options, an unreadable table, or (``on_bad="refuse"``) a bad row — a new
            recording (and a log file this run created) is then removed.
    """
    if on_bad not in ("refuse", "skip"):
        raise BadInput(f"--on-bad must be refuse or skip, not {on_bad!r}")
    layout = layout.check()
    name = name or table
    engine = source_engine(db_url)
    try:
        found = reflect(engine, table, layout)
        pages = _Pages(engine, found, layout, where, page)
        log_path = Path(log) if "://" not in log else None
        fresh_file = log_path is not None and not log_path.exists()
        opened = Log.open(log, create=True)
        try:
            return _run(
                opened,
                pages,
                db_url=db_url,
                table=table,
                name=name,
                layout=layout,
                on_bad=on_bad,
                follow=follow,
                interval_ms=interval_ms,
                stop=stop or threading.Event(),
                progress=progress,
                clock=clock,
                fresh_file=fresh_file,
                log_path=log_path,
            )
        finally:
            opened.close()
    finally:
        engine.dispose()


def _run(
    opened: Log,
    pages: _Pages,
    *,
    db_url: str,
    table: str,
    name: str,
    layout: Layout,
    on_bad: str,
    follow: bool,
    interval_ms: int,
    stop: threading.Event,
    progress: Any,
    clock: Callable[[], int],
    fresh_file: bool,
    log_path: Path | None,
) -> ImportResult:
    previous = _find_recording(opened, name, table)
    server: dict[str, Any]
    if previous is not None:
        writer = LogWriter(opened, previous)
        server = dict(previous.server or {})
        last_v = opened.reader(previous.id).last_v() or 0
        if server.get("key") != list(layout.key):
            raise BadInput(
                f"recording {previous.id} ({name!r}) was imported with key {server.get('key')}, "
                f"not {list(layout.key)}: pass --name for a new recording"
            )
    else:
        server = {
            EVENTS_FROM: "table",
            "table": table,
            "source": masked(db_url),
            "key": list(layout.key),
        }
        writer = opened.writer(name=name, server=server, started_ns=clock())
        last_v = 0
    last_key = server.get("last_key")
    cursor: tuple | None = tuple(last_key) if last_key is not None else None
    seen = int(server.get("seen", 0))
    tally = Tally()
    first_v: int | None = None
    start_v = last_v
    bar = progress(pages.remaining(cursor)) if progress is not None else None
    try:
        while True:
            rows = pages.read(cursor, seen)
            if not rows:
                if not follow or stop.wait(interval_ms / 1000):
                    break
                continue
            events = []
            for row in rows:
                key = row_key(row, layout)
                seen = seen + 1 if key == cursor else 1
                cursor = key
                made = row_event(row, layout, last_v, clock())
                if isinstance(made, BadRow):
                    if on_bad == "refuse":
                        writer.add_events(events)
                        raise _Refused(made)
                    tally.skip(made, layout)
                    continue
                events.append(made)
                last_v = made.v
                if first_v is None:
                    first_v = made.v
            writer.add_events(events)
            tally.imported += len(events)
            server = {**server, "last_key": key_json(cursor), "seen": seen}
            writer.set_server(server)
            writer.flush()
            if bar is not None:
                bar.advance(len(rows))
            if stop.is_set():
                break
    except _Refused as refused:
        bad = refused.bad
        text = f"{bad.describe(layout)} [{bad.kind}]"
        if previous is None:
            writer.discard()
            opened.close()
            if fresh_file and log_path is not None:
                for suffix in ("", "-wal", "-shm", "-journal"):
                    with contextlib.suppress(OSError):
                        Path(f"{log_path}{suffix}").unlink()
            raise BadInput(
                f"{text}: refused, nothing imported (--on-bad skip skips such rows)"
            ) from None
        writer.close(mark_end=False)
        raise BadInput(
            f"{text}: refused; recording {previous.id} now ends at v={last_v} "
            "(--on-bad skip skips such rows)"
        ) from None
    except KeyboardInterrupt:
        pass  # --follow stops on Ctrl-C; what was flushed stays
    except LogError:
        if previous is None:
            writer.discard()
        raise
    finally:
        if bar is not None:
            bar.close()
    writer.close(mark_end=False)
    return ImportResult(
        writer.recording_id,
        name,
        previous is not None,
        first_v,
        last_v if last_v > start_v else None,
        tally,
    )


class _Refused(Exception):
    def __init__(self, bad: BadRow) -> None:
        self.bad = bad


def rich_progress(total: int | None) -> Any:
    """A Rich progress bar on stderr (the command passes it as ``progress`` on a terminal)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    bar = Progress(
        "importing",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task("import", total=total)
    bar.start()

    class _Bar:
        def advance(self, n: int) -> None:
            bar.advance(task, n)

        def close(self) -> None:
            bar.stop()

    return _Bar()
