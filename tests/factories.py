"""Test factories: build model records and write small logs (one place, shared by every suite).

Every factory has defaults that make a valid record, and keyword arguments for what a test
cares about. Times are derived from :data:`T0` so they are deterministic.

    >>> msg = message(1, {"type": "counter/add", "by": 2})
    >>> rec = write_log(tmp_path / "a.rdtlog", events=10)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from devtools.jsonutil import dumps
from devtools.model import Connection, Event, Gap, Mark, Message, Recording, Snapshot

T0 = 1_795_420_800_000_000_000
"""2026-11-23T08:00:00Z in integer nanoseconds: the base of every factory time."""


def connection(
    id: int = 1, *, origin: str = "client", opened_ns: int | None = None, **fields: Any
) -> Connection:
    """A client connection from ``127.0.0.1:50000+id`` on path ``/``."""
    return Connection(
        id=id,
        peer=fields.pop("peer", f"127.0.0.1:{50000 + id}"),
        path=fields.pop("path", "/"),
        origin=origin,  # type: ignore[arg-type]
        opened_ns=T0 + id if opened_ns is None else opened_ns,
        **fields,
    )


def message(
    seq: int,
    data: Any = None,
    *,
    payload: bytes | str | None = None,
    binary: bool = False,
    connection: int = 1,
    direction: str = "in",
    t_ns: int | None = None,
    type: str | None = None,
    flag: str | None = None,
    size: int = -1,
) -> Message:
    """A forwarded frame.

    With ``data`` (any JSON value) the frame is its compact JSON; ``type`` and ``flag`` follow
    from it (a dict with a string ``type`` is a valid message). With ``payload`` the frame is
    exactly those bytes (``str`` is UTF-8 encoded) and ``type``/``flag`` are as given.
    """
    if payload is None:
        if data is None:
            data = {"type": "counter/add", "by": seq}
        payload = dumps(data)
        if isinstance(data, dict) and isinstance(data.get("type"), str):
            type = data["type"] if type is None else type
        elif flag is None:
            flag = "not-object" if not isinstance(data, dict) else "no-type"
    elif isinstance(payload, str):
        payload = payload.encode("utf-8", "surrogatepass")
    if binary and flag is None:
        flag = "binary"
    return Message(
        seq=seq,
        connection=connection,
        direction=direction,  # type: ignore[arg-type]
        t_ns=T0 + 1000 * seq if t_ns is None else t_ns,
        type=type,
        payload=payload,
        binary=binary,
        flag=flag,
        size=size,
    )


def event(
    v: int,
    type: str = "counter/added",
    *,
    sender: str = "c1",
    ts: int | None = None,
    cause_seq: int | None = None,
    hash: str | None = None,
    t_ns: int | None = None,
    **fields: Any,
) -> Event:
    """An event as the reducer receives it: ``{"type", "v", "ts", "sender", **fields}``."""
    ts = T0 + 1000 * v + 500 if ts is None else ts
    body = {"type": type, "v": v, "ts": ts, "sender": sender, **fields}
    return Event(
        v=v,
        type=type,
        event=body,
        cause_seq=cause_seq,
        hash=hash,
        t_ns=ts if t_ns is None else t_ns,
    )


def snapshot(
    v: int = 0, state: Any = None, *, hash: str | None = None, t_ns: int | None = None
) -> Snapshot:
    """The state after event ``v`` (default ``{"count": 0}``)."""
    return Snapshot(
        v=v,
        state={"count": 0} if state is None else state,
        hash=hash,
        t_ns=T0 + 1000 * v + 700 if t_ns is None else t_ns,
    )


def mark(seq: int, label: str = "here", *, t_ns: int | None = None) -> Mark:
    """A user's mark after message ``seq``."""
    return Mark(seq=seq, label=label, t_ns=T0 + 1000 * seq + 1 if t_ns is None else t_ns)


def gap(
    start: int,
    end: int,
    reason: str = "store unavailable",
    *,
    kind: str = "messages",
    t_ns: int | None = None,
) -> Gap:
    """Unrecorded messages (or events, with ``kind="events"``) ``start..end``."""
    return Gap(
        kind=kind,
        start=start,
        end=end,
        reason=reason,  # type: ignore[arg-type]
        t_ns=T0 + 1000 * end + 2 if t_ns is None else t_ns,
    )


def counter_events(count: int, *, start: int = 1, sender: str = "c1") -> list[Event]:
    """``count`` events ``counter/added`` with ``by`` = 1, 2, 3 … (cause_seq = v)."""
    return [event(v, by=v, sender=sender, cause_seq=v) for v in range(start, start + count)]


def counter_reducer(state: Any, ev: dict) -> Any:
    """A tiny pure reducer for the factory events: ``{"count": sum of by}``."""
    if state is None:
        state = {"count": 0}
    if ev.get("type") == "counter/added":
        return {**state, "count": state["count"] + ev["by"]}
    return state


def write_log(
    target: str | Path,
    *,
    name: str = "test",
    messages: int = 20,
    events: int = 10,
    snapshots: tuple[int, ...] = (0,),
    marks: tuple[int, ...] = (),
    gaps: tuple[tuple[int, int], ...] = (),
    server: dict | None = None,
    extra_messages: list[Message] | None = None,
    extra_events: list[Event] | None = None,
) -> Recording:
    """Write a small recording into the log at ``target`` (created if needed) and return it.

    Two client connections; ``messages`` messages alternating ``in``/``out`` over them; the
    counter events ``1..events`` (states ``{"count": …}`` at each ``v`` in ``snapshots``);
    marks after the given seqs and message gaps for the given ranges.
    """
    from devtools.store import Log

    with Log.open(target, create=True) as log:
        writer = log.writer(
            name=name,
            upstream="ws://127.0.0.1:9000",
            server=server or {"name": "counter", "version": "1.0"},
            started_ns=T0,
        )
        writer.add_connection(connection(1))
        writer.add_connection(connection(2))
        writer.add_messages(
            [
                message(seq, connection=1 + seq % 2, direction="in" if seq % 2 else "out")
                for seq in range(1, messages + 1)
            ]
            + list(extra_messages or [])
        )
        evs = counter_events(events) + list(extra_events or [])
        writer.add_events(evs)
        for v in snapshots:
            total = sum(e.event.get("by", 0) for e in evs if e.v <= v)
            writer.add_snapshot(snapshot(v, {"count": total}))
        for seq in marks:
            writer.add_mark(mark(seq))
        for start, end in gaps:
            writer.add_gap(gap(start, end))
        writer.close_connection(1, closed_ns=T0 + 10**9, code=1000, reason="bye")
        writer.close(ended_ns=T0 + 2 * 10**9)
        return writer.recording


# --------------------------------------------------------------------------- a Logux recording

LOGUX_BASE = 1_795_420_800_000
"""The Logux server's clock at ``connected`` (ms): the base time of :data:`LOGUX_FRAMES`."""

LOGUX_FRAMES: list[tuple[str, Any]] = [
    ("in", ["connect", 5, "10:a", 0, {"subprotocol": 1}]),
    ("out", ["connected", 5, "server:s", [LOGUX_BASE - 1, LOGUX_BASE]]),
    (
        "in",
        ["sync", 2, {"type": "counter/add", "by": 2}, {"id": [1, 0], "time": 1}]
        + [{"type": "counter/add", "by": -1}, {"id": [2, 1], "time": 2}],
    ),
    ("out", ["synced", 2]),
    (
        "out",
        ["sync", 7, {"type": "logux/processed", "id": f"{LOGUX_BASE + 1} 10:a 0"}]
        + [{"id": 10, "time": 10}],
    ),
    ("in", ["synced", 7]),
    (
        "out",
        ["sync", 8, {"type": "logux/undo", "id": f"{LOGUX_BASE + 2} 10:a 1", "reason": "denied"}]
        + [{"id": 11, "time": 11}],
    ),
    ("in", ["synced", 8]),
    ("in", ["ping", 1]),
    ("out", ["pong", 1]),
]
"""One Logux client's traffic (messages #1–#10): two actions synced in #3, the first processed
(#5), the second undone (#7), every sync confirmed by a ``synced``, a ping and its pong."""


def write_logux_log(target: str | Path, frames: list[tuple[str, Any]] | None = None) -> str:
    """Record ``frames`` (default :data:`LOGUX_FRAMES`, on one connection) as ``rdt record
    --protocol logux`` does — through the recorder's own session, no sockets — into ``target``.

    With the default frames the events are v 1–2 the ``counter/add`` actions (cause #3), v 3
    their ``logux/processed`` (cause #5), v 4 the ``logux/undo`` (cause #7).
    """
    from devtools.store import Log
    from recorder.session import Session
    from recorder.settings import RecorderSettings, Upstream

    clock = iter(range(T0, T0 + 10**12, 1000))
    settings = RecorderSettings(
        upstream=Upstream("127.0.0.1", 1),
        log=str(target),
        token="t",
        protocol="logux",
        clock=lambda: next(clock),
    )
    records: list[Any] = []
    session = Session(settings, records.append)
    conn = session.open_connection("127.0.0.1:5000", "/")
    for direction, value in frames or LOGUX_FRAMES:
        session.message(conn.id, direction, dumps(value), False)  # type: ignore[arg-type]
    with Log.open(target, create=True) as log:
        server = {"events_from": "messages", "protocol": "logux", "event_types": []}
        writer = log.writer(name="logux", upstream="ws://127.0.0.1:31337", server=server)
        writer.add_connection(conn)
        writer.add_messages([r for r in records if isinstance(r, Message)])
        writer.add_events([r for r in records if isinstance(r, Event)])
        writer.close()
    return str(target)
