"""The core ``rdt`` commands over a log: ``ls``, ``log``, ``export``, ``import``, ``drop``.

Thin: each opens the log, calls :mod:`devtools.store`, :mod:`devtools.jsonl` or
:mod:`devtools.redux`, and prints. Recorded data is untrusted: it is printed as ``Text`` with
control and bidi characters made visible, never as markup.
"""

from __future__ import annotations

import contextlib
import fnmatch
import re
import sys
import time
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from devtools.clikit import LOG, RECORDING, json_option, out_console, print_json, reports_errors
from devtools.errors import BadInput
from devtools.jsonl import import_file, iso_utc, record
from devtools.jsonutil import dumps
from devtools.model import Event, Message, Recording, RecordingSummary
from devtools.redux import dumps_file, export_document
from devtools.sanitize import visible
from devtools.store import Log, discard_if_new


class Kind(StrEnum):
    messages = "messages"
    events = "events"


class Format(StrEnum):
    jsonl = "jsonl"
    redux_devtools = "redux-devtools"


# --------------------------------------------------------------------------- ls


def _summary_json(s: RecordingSummary) -> dict[str, Any]:
    rec = s.recording
    return {
        "id": rec.id,
        "name": rec.name,
        "started_at": iso_utc(rec.started_ns),
        "started_ns": rec.started_ns,
        "ended_ns": rec.ended_ns,
        "upstream": rec.upstream,
        "server": rec.server,
        "format": rec.format,
        "connections": s.connections,
        "messages": s.messages,
        "events": s.events,
        "snapshots": s.snapshots,
        "gaps": s.gaps,
        "first_ns": s.first_ns,
        "last_ns": s.last_ns,
    }


def _when(ns: int | None) -> str:
    return "-" if ns is None else iso_utc(ns - ns % 10**9).replace("T", " ").rstrip("Z")


def _span(first: int | None, last: int | None) -> str:
    if first is None or last is None:
        return "-"
    seconds = (last - first) / 1e9
    if seconds < 120:
        return f"{seconds:.3f}s"
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def ls(
    log: str = LOG,
    json_out: bool = json_option("Print a JSON list instead of a table."),
) -> None:
    """List the recordings in a log, with their counts and time span.

    Example: rdt ls orders.rdtlog --json
    """
    with Log.open(log) as opened:
        summaries = opened.recordings()
        shown = opened.target
    if json_out:
        print_json([_summary_json(s) for s in summaries])
        return
    console = out_console()
    if not summaries:
        console.print(Text(f"no recordings in {visible(shown)}"))
        return
    table = Table(
        title=Text(visible(shown)), title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False
    )
    for column in ("id", "name", "started", "span", "conns", "msgs", "events", "gaps"):
        numeric = column in {"id", "conns", "msgs", "events", "gaps"}
        table.add_column(
            column,
            justify="right" if numeric else "left",
            no_wrap=column != "name",
            overflow="fold",
            min_width={"started": 19, "name": 10}.get(column),
        )
    for s in summaries:
        rec = s.recording
        table.add_row(
            Text(str(rec.id)),
            Text(visible(rec.name)),
            Text(_when(rec.started_ns)),
            Text(_span(s.first_ns, s.last_ns)),
            Text(str(s.connections)),
            Text(str(s.messages)),
            Text(str(s.events)),
            Text(str(s.gaps), style="bold red" if s.gaps else ""),
        )
    console.print(table)


# --------------------------------------------------------------------------- log


def _type_matches(glob: str | None, type_: str | None) -> bool:
    return glob is None or fnmatch.fnmatchcase(type_ or "", glob)


def _literal_prefix(glob: str | None) -> str | None:
    """What every type matching ``glob`` starts with: the database narrows the rows by it."""
    if glob is None:
        return None
    return re.split(r"[*?\[]", glob, maxsplit=1)[0] or None


SHOWN_CHARS = 2000
"""How much of a payload one line of ``rdt log`` shows (``--full``: all of it; ``--json``
always writes whole records)."""


def _clipped(text: str, full: bool) -> str:
    if full or len(text) <= SHOWN_CHARS:
        return text
    return f"{text[:SHOWN_CHARS]}… (+{len(text) - SHOWN_CHARS:,} characters; --full shows all)"


def _message_line(m: Message, full: bool = False) -> Text:
    body = (
        f"<binary {m.frame_size} bytes> {m.payload[:32].hex()}"
        if m.binary
        else _clipped(m.text, full)
    )
    arrow = "→" if m.direction == "in" else "←"
    line = Text()
    line.append(f"{m.seq:>6} ", style="dim")
    line.append(f"{m.connection:>3} {arrow} ")
    line.append(visible(m.type) if m.type is not None else "-", style="bold")
    if m.flag:
        line.append(f" [{m.flag}]", style="yellow")
    line.append(" ")
    line.append(visible(body))
    return line


def _event_line(e: Event, full: bool = False) -> Text:
    line = Text()
    line.append(f"{e.v:>6} ", style="dim")
    line.append(visible(e.type), style="bold")
    if e.cause_seq is not None:
        line.append(f" (seq {e.cause_seq})", style="dim")
    line.append(" ")
    line.append(visible(_clipped(dumps(e.event).decode("utf-8"), full)))
    return line


def _write_line(data: bytes) -> None:
    sys.stdout.buffer.write(data)


def log_cmd(
    log: str = LOG,
    recording: str | None = RECORDING,
    kind: Kind = typer.Option(Kind.messages, "--kind", help="List messages or events."),
    type_glob: str | None = typer.Option(
        None, "--type", help="Only records whose type matches this glob, e.g. 'order/*'."
    ),
    from_: int | None = typer.Option(None, "--from", help="First seq (messages) or v (events)."),
    to: int | None = typer.Option(None, "--to", help="Last seq (messages) or v (events)."),
    json_out: bool = json_option("Print JSON Lines records (docs/PROTOCOL.md §5)."),
    full: bool = typer.Option(
        False, "--full", help=f"Show whole payloads (a line shows {SHOWN_CHARS:,} characters)."
    ),
) -> None:
    """List the messages or events of a recording, streamed.

    Example: rdt log orders.rdtlog --kind events --type 'order/*' --from 10 --to 20 --json
    """
    with Log.open(log) as opened:
        reader = opened.reader(recording)
        prefix = _literal_prefix(type_glob)
        items: Iterator[Message] | Iterator[Event] = (
            reader.messages(from_, to, type_prefix=prefix)
            if kind is Kind.messages
            else reader.events(from_, to, type_prefix=prefix)
        )
        console = None if json_out else out_console()
        try:
            for item in items:
                if not _type_matches(type_glob, item.type):
                    continue
                if console is None:
                    _write_line(dumps(record(item)) + b"\n")
                elif isinstance(item, Message):
                    console.print(_message_line(item, full), soft_wrap=True)
                else:
                    console.print(_event_line(item, full), soft_wrap=True)
        except BrokenPipeError:  # `rdt log … | head`
            with contextlib.suppress(Exception):
                sys.stdout = None  # type: ignore[assignment]
            return
        if json_out:
            sys.stdout.flush()


# --------------------------------------------------------------------------- export


@contextlib.contextmanager
def _output(path: Path | None) -> Iterator[BinaryIO]:
    if path is None or str(path) == "-":
        yield sys.stdout.buffer
        sys.stdout.flush()
        return
    try:
        handle = path.open("wb")
    except OSError as error:
        raise BadInput(f"cannot write {path}: {error.strerror or error}") from None
    with handle:
        yield handle


def export(
    log: str = LOG,
    recording: str | None = RECORDING,
    fmt: Format = typer.Option(Format.jsonl, "--format", help="jsonl or redux-devtools."),
    output: Path | None = typer.Option(None, "-o", "--output", help="File (default: stdout)."),
    allow_empty: bool = typer.Option(
        False,
        "--allow-empty",
        help="redux-devtools: export a recording without events (default: exit 3).",
    ),
) -> None:
    """Export a recording as JSON Lines or as a Redux DevTools extension file.

    A Redux DevTools export of a recording without events exits 3 (--allow-empty exports it).

    Example: rdt export orders.rdtlog --format redux-devtools -o state.json
    """
    from devtools.jsonl import export_lines

    with Log.open(log) as opened:
        reader = opened.reader(recording)
        document = None
        if fmt is not Format.jsonl:
            document = export_document(reader, allow_empty=allow_empty)
        with _output(output) as out:
            if document is None:
                for line in export_lines(reader):
                    out.write(line)
            else:
                out.write(dumps_file(document))


# --------------------------------------------------------------------------- import


def _read_source(path: str) -> tuple[BinaryIO, str]:
    if path == "-":
        return sys.stdin.buffer, "<stdin>"
    file = Path(path)
    if not file.exists():
        raise BadInput(f"no such file: {path}")
    if file.is_dir():
        raise BadInput(f"{path} is a directory, not a file")
    try:
        return file.open("rb"), path
    except OSError as error:
        raise BadInput(f"cannot read {path}: {error.strerror or error}") from None


def import_cmd(
    file: str = typer.Argument(
        ..., help="A JSON Lines export or a Redux DevTools file; - = stdin."
    ),
    log: str = typer.Option(..., "--log", help="The log to import into (created if missing)."),
    name: str | None = typer.Option(None, "--name", help="Name of the new recording."),
) -> None:
    """Import a JSON Lines export or a Redux DevTools file as a new recording.

    Example: rdt import orders.jsonl --log copy.rdtlog --name orders-copy
    """
    handle, source = _read_source(file)
    with (
        contextlib.closing(handle),
        discard_if_new(log),  # a failed import leaves no new log
        Log.open(log, create=True) as opened,
    ):
        imported = import_file(handle, opened, name=name, source=source)
        shown = opened.target
    out_console().print(
        Text(
            f"imported {imported.messages} messages and {imported.events} events into "
            f"recording {imported.recording_id} "
            f"of {visible(shown)}"
        )
    )


# --------------------------------------------------------------------------- import-events


def import_events_cmd(
    db_url: str = typer.Argument(
        ..., metavar="DB_URL", help="The event store: a SQLAlchemy URL or a SQLite file path."
    ),
    table: str = typer.Option(None, "--table", help="The event table ([schema.]name)."),
    log: str = typer.Option(..., "--log", help="The rdt log to import into (path or URL)."),
    preset: str = typer.Option(
        None, "--preset", help="A known layout: row-per-event (id, type, payload) or resolve."
    ),
    v_column: str = typer.Option(
        None, "--v-column", help="Numbers the events: integers >= 1, increasing (default v)."
    ),
    type_column: str = typer.Option(None, "--type-column", help="The event type (default type)."),
    payload_column: str = typer.Option(
        None, "--payload-column", help="A JSON column merged into the event (default payload)."
    ),
    ts_column: str = typer.Option(None, "--ts-column", help="The event time (becomes ts, ns)."),
    ts_unit: str = typer.Option(None, "--ts-unit", help="Unit of an integer ts: s, ms, us, ns."),
    sender_column: str = typer.Option(None, "--sender-column", help="Becomes the sender."),
    where: str = typer.Option(None, "--where", help="An SQL condition on the table's rows."),
    order_by: str = typer.Option(
        None,
        "--order-by",
        help="COL[,COL…]: the read order and resume key, unique (default: the v column).",
    ),
    name: str = typer.Option(None, "--name", help="The recording (default: the table's name)."),
    on_bad: str = typer.Option(
        "refuse", "--on-bad", help="refuse (exit 3, naming the row) or skip (counted) bad rows."
    ),
    follow: bool = typer.Option(False, "--follow", help="Keep tailing the table until Ctrl-C."),
    interval: int = typer.Option(1000, "--interval", min=10, help="--follow: poll every MS."),
    page: int = typer.Option(5000, "--page-size", min=1, help="Rows read per page."),
    json_output: bool = json_option("Print the outcome as one JSON document."),
) -> None:
    """Import events from an event store's table into a recording, resumably.

    Reads the table in keyset pages (flat memory on any size); each row becomes the event
    {"type", ...payload fields, "v", "ts", "sender"}. A second run appends only the rows past
    the last imported one into the same recording (same --name and table); --follow keeps
    tailing. Bad rows (payload not JSON, no type, a v that repeats or goes backwards) are
    named by their key and refused (exit 3; a new recording is then not kept) or, with
    --on-bad skip, skipped and counted. SQLite, PostgreSQL (postgresql+psycopg://) and MariaDB
    (mysql+pymysql://, pip install 'reducer-devtools[mysql]').

    Example: rdt import-events postgresql+psycopg://app@db/shop --table salesOrder_events
    --preset row-per-event --log orders.rdtlog
    """
    import signal
    import threading

    from devtools.event_table import preset_layout
    from devtools.import_events import import_events, masked, rich_progress

    layout, preset_table = preset_layout(
        preset,
        v_column=v_column,
        type_column=type_column,
        payload_column=payload_column,
        ts_column=ts_column,
        ts_unit=ts_unit,
        sender_column=sender_column,
        order_by=tuple(c.strip() for c in order_by.split(",") if c.strip()) if order_by else (),
    )
    table = table or preset_table
    if not table:
        raise BadInput("--table is required (no preset names a table)")
    stop = threading.Event()
    if follow:
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
    result = import_events(
        db_url,
        table=table,
        log=log,
        layout=layout,
        name=name,
        where=where,
        on_bad=on_bad,
        page=page,
        follow=follow,
        interval_ms=interval,
        stop=stop,
        progress=rich_progress if sys.stderr.isatty() else None,
    )
    tally = result.tally
    if json_output:
        print_json(
            {
                "recording": result.recording_id,
                "name": result.name,
                "appended": result.appended,
                "imported": tally.imported,
                "first_v": result.first_v,
                "last_v": result.last_v,
                "skipped": tally.skipped,
                "skipped_rows": tally.first_bad,
            }
        )
        return
    console = out_console()
    span = f", v={result.first_v}..{result.last_v}" if result.last_v is not None else ""
    verb = "appended" if result.appended else "imported"
    console.print(
        Text(
            f"{verb} {tally.imported} events from {visible(masked(db_url))} {visible(table)} "
            f"into recording {result.recording_id} ({visible(result.name)}){span}"
        )
    )
    if tally.skipped_total:
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(tally.skipped.items()))
        console.print(Text(f"skipped {tally.skipped_total} bad rows ({kinds})"))
        for line in tally.first_bad:
            console.print(Text(f"  {visible(line)}"))


# --------------------------------------------------------------------------- drop

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+)([smhdw])")


def parse_duration(text: str) -> int:
    """``30d``, ``12h``, ``1w2d``, ``90m``, ``45s`` → nanoseconds.

    Raises:
        BadInput: anything else (named in the message).
    """
    spec = text.strip().lower()
    parts = _DURATION.findall(spec)
    if not spec or "".join(n + u for n, u in parts) != spec:
        raise BadInput(f"--older-than {text!r}: give a duration such as 30d, 12h, 1w2d, 90m or 45s")
    return sum(int(n) * _UNITS[u] for n, u in parts) * 10**9


def drop(
    log: str = LOG,
    recording: str | None = typer.Option(
        None, "--recording", "-r", metavar="REF", help="The recording to drop (an id or a name)."
    ),
    older_than: str | None = typer.Option(
        None,
        "--older-than",
        metavar="DURATION",
        help="Drop every recording whose last activity (its end, else its last record) is "
        "older than this, e.g. 30d, 12h, 1w2d. A recording being written is never older.",
    ),
    json_out: bool = json_option("Print the dropped recordings as a JSON list."),
) -> None:
    """Drop recordings from a log, in short batches: other recordings stay readable and
    writable meanwhile (docs/SCHEMA.md, Retention). The space is reused by later rows.

    Example: rdt drop orders.rdtlog --older-than 30d
    """
    if (recording is None) == (older_than is None):
        raise BadInput("give --recording REF or --older-than DURATION (one of them)")
    cutoff = None if older_than is None else time.time_ns() - parse_duration(older_than)
    with Log.open(log) as opened:
        shown = opened.target
        doomed: list[Recording] = (
            [opened.recording(recording)] if cutoff is None else opened.older_than(cutoff)
        )
        dropped = [(rec, opened.delete_recording(rec.id)) for rec in doomed]
    if json_out:
        print_json([{"id": rec.id, "name": rec.name, "rows": rows} for rec, rows in dropped])
        return
    console = out_console()
    if not dropped:
        console.print(Text(f"no recordings older than {older_than} in {visible(shown)}"))
    for rec, rows in dropped:
        console.print(
            Text(f"dropped recording {rec.id} {visible(rec.name)!r} ({rows:,} rows) from ")
            + Text(visible(shown))
        )


def register(app: typer.Typer) -> None:
    """Add the core commands to the ``rdt`` app."""
    app.command("ls")(reports_errors(ls))
    app.command("log")(reports_errors(log_cmd))
    app.command("export")(reports_errors(export))
    app.command("import")(reports_errors(import_cmd))
    app.command("import-events")(reports_errors(import_events_cmd))
    app.command("drop")(reports_errors(drop))
