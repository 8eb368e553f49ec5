"""JSON Lines interchange (PROTOCOL.md §4): one record per line, the recording first.

Export streams a recording line by line (never the whole log in memory); import reads such
lines into a new recording. Export → import → export gives the same bytes.

A message's frame is written so import restores it byte for byte:

- ``data``: the frame is valid JSON text (any JSON value; ``flag`` says when it is not a valid
  message). When re-serialising ``data`` compactly would not give the frame's exact bytes
  (other whitespace, escapes or number spellings), ``raw`` is written beside it and is what
  import stores.
- ``raw``: a UTF-8 text frame that is not JSON.
- ``b64``: a binary frame (base64); a text frame that is not valid UTF-8 is written as ``b64``
  with ``"binary": false``.

Fields beyond PROTOCOL.md's examples (``started_ns``, ``t_ns``, ``flag``, ``size`` …) are added,
never renamed. :func:`record` is the one place a model object becomes a §4 record, so ``rdt log
--json`` and the recorder's control endpoint write the same shapes.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePath
from typing import Any, BinaryIO

from devtools import schema
from devtools.errors import BadInput, InvalidJSON
from devtools.jsonutil import dumps, loads
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

__all__ = [
    "Imported",
    "export_lines",
    "import_file",
    "import_lines",
    "parse_record",
    "record",
    "recording_record",
]

Record = (
    Recording
    | Connection
    | Message
    | Event
    | Snapshot
    | Mark
    | Gap
    | Worker
    | WorkerHash
    | WorkerSnapshot
)

_IMPORT_BATCH = 5000


# --------------------------------------------------------------------------- to records


def iso_utc(ns: int) -> str:
    """``ns`` (integer nanoseconds since the epoch) as ``2026-11-23T08:00:00Z`` (UTC)."""
    seconds, rest = divmod(ns, 10**9)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if rest:
        text += f".{rest:09d}".rstrip("0")
    return text + "Z"


def recording_record(rec: Recording) -> dict[str, Any]:
    """The first line of an export."""
    return {
        "kind": "recording",
        "format": schema.FORMAT_VERSION,
        "name": rec.name,
        "started_at": iso_utc(rec.started_ns),
        "started_ns": rec.started_ns,
        "ended_ns": rec.ended_ns,
        "upstream": rec.upstream,
        "server": rec.server,
    }


def _frame_fields(msg: Message) -> dict[str, Any]:
    payload = msg.payload
    if msg.binary:
        return {"b64": base64.b64encode(payload).decode("ascii")}
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(payload).decode("ascii"), "binary": False}
    try:
        value = loads(payload)
        exact = dumps(value) == payload
    except (ValueError, TypeError, RecursionError):
        return {"raw": text}
    return {"data": value} if exact else {"data": value, "raw": text}


def record(obj: Record) -> dict[str, Any]:
    """A model object as its PROTOCOL.md §4 record (a dict with ``kind``)."""
    if isinstance(obj, Message):
        out: dict[str, Any] = {
            "kind": "message",
            "seq": obj.seq,
            "connection": obj.connection,
            "dir": obj.direction,
            "t_ns": obj.t_ns,
            "type": obj.type,
        }
        out.update(_frame_fields(obj))
        if obj.flag is not None:
            out["flag"] = obj.flag
        if obj.size >= 0:
            out["size"] = obj.size
        return out
    if isinstance(obj, Event):
        return {
            "kind": "event",
            "v": obj.v,
            "type": obj.type,
            "event": obj.event,
            "cause_seq": obj.cause_seq,
            "hash": obj.hash,
            "t_ns": obj.t_ns,
        }
    if isinstance(obj, Connection):
        return {
            "kind": "connection",
            "id": obj.id,
            "peer": obj.peer,
            "path": obj.path,
            "origin": obj.origin,
            "opened_ns": obj.opened_ns,
            "closed_ns": obj.closed_ns,
            "close_code": obj.close_code,
            "close_reason": obj.close_reason,
            **({"handshake": obj.handshake} if obj.handshake is not None else {}),
        }
    if isinstance(obj, Snapshot):
        return {
            "kind": "snapshot",
            "v": obj.v,
            "state": obj.state,
            "hash": obj.hash,
            "t_ns": obj.t_ns,
        }
    if isinstance(obj, Mark):
        return {"kind": "mark", "seq": obj.seq, "label": obj.label, "t_ns": obj.t_ns}
    if isinstance(obj, Gap):
        unit = "seq" if obj.kind == "messages" else "v"
        return {
            "kind": "gap",
            f"from_{unit}": obj.start,
            f"to_{unit}": obj.end,
            "reason": obj.reason,
            "t_ns": obj.t_ns,
        }
    if isinstance(obj, WorkerHash):
        out = {"kind": "worker_hash", "worker": obj.worker, "v": obj.v, "hash": obj.hash}
        if obj.event is not None:
            out["event"] = obj.event
        return out
    if isinstance(obj, Worker):
        return {
            "kind": "worker",
            "index": obj.index,
            "id": obj.id,
            "url": obj.url,
            "name": obj.name,
            "version": obj.version,
            "server": obj.server,
        }
    if isinstance(obj, WorkerSnapshot):
        return {
            "kind": "worker_snapshot",
            "worker": obj.worker,
            "v": obj.v,
            "state": obj.state,
            "hash": obj.hash,
            "t_ns": obj.t_ns,
        }
    if isinstance(obj, Recording):
        return recording_record(obj)
    raise TypeError(f"not a log record: {type(obj).__name__}")


def export_lines(reader: Any) -> Iterator[bytes]:
    """Every record of ``reader``'s recording as JSON lines (each ending in ``\\n``), streamed.

    Args:
        reader: a :class:`devtools.store.LogReader`.
    """
    yield dumps(recording_record(reader.recording)) + b"\n"
    for source in (
        reader.connections(),
        reader.messages(),
        reader.events(),
        reader.snapshots(),
        reader.marks(),
        reader.gaps(),
        reader.workers(),
        reader.worker_hashes(),
        reader.worker_snapshots(),
    ):
        for obj in source:
            yield dumps(record(obj)) + b"\n"


# --------------------------------------------------------------------------- from records


class _Fields:
    """Typed access to one record's fields; a missing or mistyped field is a ``BadInput``."""

    def __init__(self, obj: dict[str, Any], where: str) -> None:
        self.obj = obj
        self.where = where

    def bad(self, why: str) -> BadInput:
        return BadInput(f"{self.where}: {why}")

    def get(
        self,
        name: str,
        kind: type | tuple[type, ...],
        *,
        optional: bool = False,
        default: Any = None,
    ) -> Any:
        if name not in self.obj or self.obj[name] is None:
            if optional:
                return default
            raise self.bad(f"a {self.obj.get('kind')} record needs {name!r}")
        value = self.obj[name]
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise self.bad(f"{name!r} must be an integer")
        if not isinstance(value, kind):
            raise self.bad(f"{name!r} has the wrong type ({type(value).__name__})")
        return value


def _parse_payload(f: _Fields) -> tuple[bytes, bool]:
    obj = f.obj
    if "raw" in obj and obj["raw"] is not None:
        raw = f.get("raw", str)
        try:
            return raw.encode("utf-8"), False
        except UnicodeEncodeError:
            raise f.bad("'raw' holds a lone surrogate") from None
    if "b64" in obj and obj["b64"] is not None:
        try:
            payload = base64.b64decode(f.get("b64", str), validate=True)
        except (binascii.Error, ValueError):
            raise f.bad("'b64' is not valid base64") from None
        return payload, bool(obj.get("binary", True))
    if "data" in obj:
        try:
            return dumps(obj["data"]), False
        except (TypeError, ValueError) as error:
            raise f.bad(f"'data' cannot be written as JSON ({error})") from None
    raise f.bad("a message record needs 'data', 'raw' or 'b64'")


def parse_record(obj: Any, where: str = "<record>") -> Record:
    """A §4 record (a parsed JSON object) as a model object.

    Args:
        obj: the parsed line.
        where: ``FILE:LINE`` for messages.

    Raises:
        BadInput: not an object, an unknown ``kind``, a missing or mistyped field, or a
            ``recording`` of a newer format.
    """
    if not isinstance(obj, dict):
        raise BadInput(f"{where}: a record must be a JSON object")
    f = _Fields(obj, where)
    kind = obj.get("kind")
    if kind == "message":
        payload, binary = _parse_payload(f)
        direction = f.get("dir", str)
        if direction not in ("in", "out"):
            raise f.bad("'dir' must be 'in' or 'out'")
        return Message(
            seq=f.get("seq", int),
            connection=f.get("connection", int),
            direction=direction,
            t_ns=f.get("t_ns", int, optional=True, default=0),
            type=f.get("type", str, optional=True),
            payload=payload,
            binary=binary,
            flag=f.get("flag", str, optional=True),
            size=f.get("size", int, optional=True, default=-1),
        )
    if kind == "event":
        event = f.get("event", dict)
        type_ = f.get("type", str, optional=True, default=event.get("type"))
        if not isinstance(type_, str):
            raise f.bad("an event needs a string 'type'")
        return Event(
            v=f.get("v", int),
            type=type_,
            event=event,
            cause_seq=f.get("cause_seq", int, optional=True),
            hash=f.get("hash", str, optional=True),
            t_ns=f.get("t_ns", int, optional=True, default=0),
        )
    if kind == "connection":
        origin = f.get("origin", str, optional=True, default="client")
        if origin not in ("client", "injected", "devtools"):
            raise f.bad(f"unknown connection origin {origin!r}")
        return Connection(
            id=f.get("id", int),
            peer=f.get("peer", str, optional=True, default=""),
            path=f.get("path", str, optional=True, default="/"),
            origin=origin,
            opened_ns=f.get("opened_ns", int, optional=True, default=0),
            closed_ns=f.get("closed_ns", int, optional=True),
            close_code=f.get("close_code", int, optional=True),
            close_reason=f.get("close_reason", str, optional=True),
            handshake=f.get("handshake", dict, optional=True),
        )
    if kind == "snapshot":
        if "state" not in obj:
            raise f.bad("a snapshot record needs 'state'")
        return Snapshot(
            v=f.get("v", int),
            state=obj["state"],
            hash=f.get("hash", str, optional=True),
            t_ns=f.get("t_ns", int, optional=True, default=0),
        )
    if kind == "mark":
        return Mark(
            seq=f.get("seq", int),
            label=f.get("label", str, optional=True, default=""),
            t_ns=f.get("t_ns", int, optional=True, default=0),
        )
    if kind == "gap":
        gap_kind, unit = ("messages", "seq") if "from_seq" in obj else ("events", "v")
        return Gap(
            kind=gap_kind,
            start=f.get(f"from_{unit}", int),
            end=f.get(f"to_{unit}", int),
            reason=f.get("reason", str, optional=True, default=""),
            t_ns=f.get("t_ns", int, optional=True, default=0),
        )
    if kind == "worker":
        return Worker(
            index=f.get("index", int),
            url=f.get("url", str, optional=True),
            id=f.get("id", str, optional=True),
            name=f.get("name", str, optional=True),
            version=f.get("version", str, optional=True),
            server=f.get("server", dict, optional=True),
        )
    if kind == "worker_hash":
        return WorkerHash(
            worker=f.get("worker", int),
            v=f.get("v", int),
            hash=f.get("hash", str, optional=True),
            event=f.get("event", dict, optional=True),
        )
    if kind == "worker_snapshot":
        if "state" not in obj:
            raise f.bad("a worker_snapshot record needs 'state'")
        return WorkerSnapshot(
            worker=f.get("worker", int),
            v=f.get("v", int),
            state=obj["state"],
            hash=f.get("hash", str, optional=True),
            t_ns=f.get("t_ns", int, optional=True, default=0),
        )
    if kind == "recording":
        version = f.get("format", int, optional=True, default=schema.FORMAT_VERSION)
        if version > schema.FORMAT_VERSION:
            raise BadInput(f"{where}: written by a newer rdt (format {version}); please update")
        started_ns = f.get("started_ns", int, optional=True)
        if started_ns is None:
            started_ns = _parse_iso(f)
        server = f.get("server", dict, optional=True)
        return Recording(
            id=0,
            name=f.get("name", str, optional=True, default="imported"),
            started_ns=started_ns,
            ended_ns=f.get("ended_ns", int, optional=True),
            upstream=f.get("upstream", str, optional=True),
            server=server,
        )
    if kind is None:
        raise f.bad("a record needs a 'kind'")
    raise f.bad(f"unknown kind {str(kind)!r}")


def _parse_iso(f: _Fields) -> int:
    text = f.get("started_at", str, optional=True)
    if text is None:
        return 0
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise f.bad(f"'started_at' is not an ISO 8601 time: {text!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = when - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000


def parse_lines(lines: Iterable[bytes | str], source: str = "<input>") -> Iterator[Record]:
    """Parse JSON lines into model objects, the recording first; blank lines are skipped.

    Raises:
        InvalidJSON: a line that is not JSON (``SOURCE:LINE: …``).
        BadInput: the first record is not a recording, or any record is malformed.
    """
    first = True
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{source}:{number}"
        try:
            obj = loads(line)
        except ValueError as error:
            reason = str(error).splitlines()[0] if str(error) else "invalid"
            raise InvalidJSON(f"{where}: not valid JSON ({reason})") from None
        if first:
            if not isinstance(obj, dict) or obj.get("kind") != "recording":
                raise BadInput(f"{where}: the first line must be a 'recording' record")
            first = False
        elif isinstance(obj, dict) and obj.get("kind") == "recording":
            raise BadInput(f"{where}: a second 'recording' record (one recording per file)")
        yield parse_record(obj, where)
    if first:
        raise BadInput(f"{source}: empty file, no recording")


def import_lines(
    lines: Iterable[bytes | str], log: Any, *, name: str | None = None, source: str = "<input>"
) -> Recording:
    """Read JSON lines into a new recording of ``log`` and return it.

    A file that fails part way leaves no recording behind.

    Args:
        lines: the file's lines.
        log: a :class:`devtools.store.Log` (open, created if needed by the caller).
        name: the new recording's name (default: the one in the file).
        source: the file name for messages.

    Raises:
        InvalidJSON, BadInput: as :func:`parse_lines`, naming the line.
    """
    records = parse_lines(lines, source)
    rec = next(records)
    assert isinstance(rec, Recording)
    if name is not None:
        rec = Recording(
            id=0,
            name=name,
            started_ns=rec.started_ns,
            ended_ns=rec.ended_ns,
            upstream=rec.upstream,
            server=rec.server,
        )
    writer = log.import_writer(rec)
    try:
        messages: list[Message] = []
        events: list[Event] = []
        hashes: list[WorkerHash] = []
        for obj in records:
            if isinstance(obj, Message):
                messages.append(obj)
                if len(messages) >= _IMPORT_BATCH:
                    writer.add_messages(messages)
                    messages = []
            elif isinstance(obj, Event):
                events.append(obj)
                if len(events) >= _IMPORT_BATCH:
                    writer.add_events(events)
                    events = []
            elif isinstance(obj, Connection):
                writer.add_connection(obj)
            elif isinstance(obj, Snapshot):
                writer.add_snapshot(obj)
            elif isinstance(obj, Mark):
                writer.add_mark(obj)
            elif isinstance(obj, Gap):
                writer.add_gap(obj)
            elif isinstance(obj, WorkerHash):
                hashes.append(obj)
                if len(hashes) >= _IMPORT_BATCH:
                    writer.add_worker_hashes(hashes)
                    hashes = []
            elif isinstance(obj, Worker):
                writer.add_worker(obj)
            elif isinstance(obj, WorkerSnapshot):
                writer.add_worker_snapshot(obj)
            if writer.pending >= _IMPORT_BATCH:
                writer.flush()
        writer.add_messages(messages)
        writer.add_events(events)
        writer.add_worker_hashes(hashes)
        writer.close(ended_ns=rec.ended_ns, mark_end=rec.ended_ns is not None)
    except BaseException:
        writer.discard()
        raise
    return writer.recording


# --------------------------------------------------------------------------- either format


@dataclass(frozen=True, slots=True)
class Imported:
    """What :func:`import_file` added to the log."""

    recording_id: int
    messages: int
    events: int
    format: str
    """``"jsonl"`` or ``"redux-devtools"``."""


def import_file(
    handle: BinaryIO, log: Any, *, name: str | None = None, source: str = "<input>"
) -> Imported:
    """Import a JSON Lines export or a Redux DevTools file, whichever ``handle`` holds.

    The format is told by the first non-blank line: a JSON object with a ``kind`` is JSON
    Lines (streamed, never read whole); anything else is read whole and must be a Redux
    DevTools export (its recording is named ``name``, else after ``source``'s stem).

    Raises:
        InvalidJSON, BadInput: neither format, or a bad line or action (named).
    """
    from devtools.redux import import_document, looks_like_redux

    head = handle.readline()
    while head and not head.strip():
        head = handle.readline()
    try:
        first = loads(head) if head.strip() else None
    except ValueError:
        first = None
    if isinstance(first, dict) and "kind" in first:

        def lines() -> Iterator[bytes]:
            yield head
            yield from handle

        rec = import_lines(lines(), log, name=name, source=source)
        counts = log.reader(rec.id).counts()
        return Imported(rec.id, counts.messages, counts.events, "jsonl")
    rest = head + handle.read()
    try:
        doc = loads(rest)
    except ValueError:
        doc = None
    if not looks_like_redux(doc):
        # Neither shape: let the JSON Lines reader name the first bad line.
        import_lines(rest.splitlines(), log, name=name, source=source)
        raise BadInput(f"{source}: not a JSON Lines export nor a Redux DevTools file")
    stem = PurePath(source).stem if source != "<stdin>" else "redux-import"
    rid, n_events = import_document(doc, log, name or stem)
    return Imported(rid, 0, n_events, "redux-devtools")
