"""The devtools channel (PROTOCOL.md §1) and the control endpoint (§2) as plain data.

Builders return the JSON objects a server or recorder sends; :func:`parse_request` turns a
decoded client frame into a typed request, or a :class:`ProtocolError` value (it never raises):
an unknown ``type`` or a malformed field becomes an error the caller answers with
``@@devtools/error`` while the connection stays open; unknown fields are ignored.

Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

PROTOCOL_VERSION = 1

PREFIX = "@@devtools/"
HELLO = "@@devtools/hello"
SNAPSHOT = "@@devtools/snapshot"
EVENT = "@@devtools/event"
EVENTS = "@@devtools/events"
HASHES = "@@devtools/hashes"
DISPATCHED = "@@devtools/dispatched"
ERROR = "@@devtools/error"
SUBSCRIBE = "@@devtools/subscribe"
GET_STATE = "@@devtools/get-state"
DISPATCH = "@@devtools/dispatch"
INJECT = "@@devtools/inject"
INJECTED = "@@devtools/injected"
MARK = "@@devtools/mark"
MARKED = "@@devtools/marked"
STATUS = "@@devtools/status"

CONNECTION_HEADER = "X-Rdt-Connection"
"""The handshake header a recording proxy sends upstream to name its client connection."""

MAX_CONNECTION_ID = 200
"""The longest ``X-Rdt-Connection`` value accepted (longer values are ignored)."""

RECORD_KINDS = (
    "connection",
    "message",
    "event",
    "snapshot",
    "gap",
    "mark",
    "worker",
    "worker_snapshot",
    "divergence",
)
"""The record kinds a control-endpoint subscriber may ask for (PROTOCOL.md §3, §5); the last
three only a recording of several workers has."""

DEVTOOLS_REQUESTS = frozenset({SUBSCRIBE, GET_STATE, DISPATCH})
"""Requests a reducer server's devtools channel serves."""

CONTROL_REQUESTS = frozenset({SUBSCRIBE, INJECT, MARK, STATUS})
"""Requests a recorder's control endpoint serves."""

Via = Literal["devtools", "client", "logux"]

# --------------------------------------------------------------------------- requests


@dataclass(frozen=True, slots=True)
class Subscribe:
    """``@@devtools/subscribe``: a snapshot (unless ``snapshot`` is false), then every event.

    On the control endpoint, ``from_seq`` asks for the log from that ``seq`` first and ``kinds``
    limits the record kinds (``None``: all).
    """

    snapshot: bool = True
    from_seq: int | None = None
    kinds: tuple[str, ...] | None = None
    batch: bool = False
    """The subscriber takes several events in one ``@@devtools/events`` message."""
    hashes_only: bool = False
    """The subscriber takes each event's ``v`` and state hash instead of the event, several in
    one ``@@devtools/hashes`` message (it has the events from elsewhere: a bus)."""
    type: str = SUBSCRIBE


@dataclass(frozen=True, slots=True)
class GetState:
    """``@@devtools/get-state``: a snapshot now, answered with the request's ``id``."""

    id: Any = None
    type: str = GET_STATE


@dataclass(frozen=True, slots=True)
class Dispatch:
    """``@@devtools/dispatch``: ``action`` goes through the middleware as sender ``devtools``."""

    id: Any
    action: dict[str, Any]
    type: str = DISPATCH


@dataclass(frozen=True, slots=True)
class Inject:
    """``@@devtools/inject`` (control endpoint): inject ``action`` via the devtools or a client."""

    id: Any
    action: dict[str, Any]
    via: Via = "devtools"
    type: str = INJECT


@dataclass(frozen=True, slots=True)
class Mark:
    """``@@devtools/mark`` (control endpoint): put a label on the timeline."""

    label: str
    type: str = MARK


@dataclass(frozen=True, slots=True)
class Status:
    """``@@devtools/status`` (control endpoint): the recorder's counters."""

    type: str = STATUS


Request = Subscribe | GetState | Dispatch | Inject | Mark | Status


@dataclass(frozen=True, slots=True)
class ProtocolError:
    """A request that cannot be served; answer it with :meth:`reply`."""

    error: str
    id: Any = None

    def reply(self) -> dict[str, Any]:
        """The ``@@devtools/error`` message for this error."""
        return error(self.error, id=self.id)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _valid_id(value: Any) -> bool:
    return value is None or isinstance(value, str) or _is_int(value)


def _action(obj: dict[str, Any], request_id: Any) -> dict[str, Any] | ProtocolError:
    action = obj.get("action")
    if not isinstance(action, dict):
        return ProtocolError("'action' must be a JSON object", request_id)
    if not isinstance(action.get("type"), str):
        return ProtocolError("'action' needs a string 'type'", request_id)
    return action


def parse_request(obj: Any, *, allowed: frozenset[str] | None = None) -> Request | ProtocolError:
    """Turn a decoded client frame into a request, or an error value. Never raises.

    Args:
        obj: the decoded JSON value of the frame.
        allowed: the request types this endpoint serves (e.g. :data:`DEVTOOLS_REQUESTS`);
            others get an error. ``None`` accepts every request type of §1 and §2.
    """
    if not isinstance(obj, dict):
        return ProtocolError("a request must be a JSON object")
    kind = obj.get("type")
    raw_id = obj.get("id")
    request_id = raw_id if _valid_id(raw_id) else None
    if not isinstance(kind, str):
        return ProtocolError("a request needs a string 'type'", request_id)
    if not _valid_id(raw_id):
        return ProtocolError("'id' must be a string or an integer")
    if allowed is not None and kind not in allowed:
        if kind in DEVTOOLS_REQUESTS | CONTROL_REQUESTS:
            return ProtocolError(f"{kind} is not served on this endpoint", request_id)
        return ProtocolError(f"unknown request type {kind!r}", request_id)
    if kind == SUBSCRIBE:
        return _parse_subscribe(obj, request_id)
    if kind == GET_STATE:
        return GetState(id=request_id)
    if kind == DISPATCH:
        action = _action(obj, request_id)
        if isinstance(action, ProtocolError):
            return action
        return Dispatch(id=request_id, action=action)
    if kind == INJECT:
        action = _action(obj, request_id)
        if isinstance(action, ProtocolError):
            return action
        via = obj.get("via", "devtools")
        if via not in ("devtools", "client", "logux"):
            return ProtocolError("'via' must be 'devtools', 'client' or 'logux'", request_id)
        return Inject(id=request_id, action=action, via=via)
    if kind == MARK:
        label = obj.get("label")
        if not isinstance(label, str):
            return ProtocolError("'label' must be a string", request_id)
        return Mark(label=label)
    if kind == STATUS:
        return Status()
    return ProtocolError(f"unknown request type {kind!r}", request_id)


def _parse_subscribe(obj: dict[str, Any], request_id: Any) -> Subscribe | ProtocolError:
    snap = obj.get("snapshot", True)
    if not isinstance(snap, bool):
        return ProtocolError("'snapshot' must be true or false", request_id)
    batch = obj.get("batch", False)
    if not isinstance(batch, bool):
        return ProtocolError("'batch' must be true or false", request_id)
    hashes_only = obj.get("hashes_only", False)
    if not isinstance(hashes_only, bool):
        return ProtocolError("'hashes_only' must be true or false", request_id)
    from_seq = obj.get("from_seq")
    if from_seq is not None and (not _is_int(from_seq) or from_seq < 0):
        return ProtocolError("'from_seq' must be a non-negative integer", request_id)
    kinds = obj.get("kinds")
    if kinds is not None:
        if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
            return ProtocolError("'kinds' must be a list of strings", request_id)
        unknown = sorted(set(kinds) - set(RECORD_KINDS))
        if unknown:
            return ProtocolError(
                f"unknown record kind {unknown[0]!r} (known: {', '.join(RECORD_KINDS)})",
                request_id,
            )
        kinds = tuple(kinds)
    return Subscribe(
        snapshot=snap, from_seq=from_seq, kinds=kinds, batch=batch, hashes_only=hashes_only
    )


def parse_cause_header(value: str | None) -> str | None:
    """The connection id in an ``X-Rdt-Connection`` header value, or ``None``.

    Empty, over-long (> :data:`MAX_CONNECTION_ID`) or control-character values are ignored.
    """
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > MAX_CONNECTION_ID:
        return None
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return None
    return value


# --------------------------------------------------------------------------- server → client


def cause(connection: str, n: int) -> dict[str, Any]:
    """The ``cause`` of an event: message ``n`` (1-based) on proxy connection ``connection``."""
    return {"connection": connection, "n": n}


def hello(
    *, name: str, version: str, v: int, hash: str | None, worker: str | None = None
) -> dict[str, Any]:
    """``@@devtools/hello``, sent on connect (``worker``: the worker id on a bus, PROTOCOL §9)."""
    server = {"name": name, "version": version}
    if worker is not None:
        server["worker"] = worker
    return {
        "type": HELLO,
        "protocol": PROTOCOL_VERSION,
        "server": server,
        "v": v,
        "hash": hash,
    }


def snapshot(v: int, state: Any, hash: str | None, *, id: Any = None) -> dict[str, Any]:
    """``@@devtools/snapshot``: the state after event ``v`` (``id`` answers a get-state)."""
    message: dict[str, Any] = {"type": SNAPSHOT, "v": v, "state": state, "hash": hash}
    if id is not None:
        message["id"] = id
    return message


def event(
    v: int, event: dict[str, Any], cause: dict[str, Any] | None, hash: str | None = None
) -> dict[str, Any]:
    """``@@devtools/event``: event ``v`` exactly as the reducer got it; ``hash`` when sent."""
    message: dict[str, Any] = {"type": EVENT, "v": v, "event": event, "cause": cause}
    if hash is not None:
        message["hash"] = hash
    return message


def events_bytes(events: list[bytes]) -> bytes:
    """``@@devtools/events``: several ``@@devtools/event`` messages, already encoded, in order
    (what a subscriber that asked for ``batch`` may get instead of one message an event)."""
    return b'{"type":"' + EVENTS.encode() + b'","events":[' + b",".join(events) + b"]}"


def hashes(pairs: list[tuple[int, str | None]]) -> dict[str, Any]:
    """``@@devtools/hashes``: ``[v, hash]`` after each of several events, in order (``hash``
    null: sent without one), for a subscriber that asked for ``hashes_only``."""
    return {"type": HASHES, "hashes": [[v, digest] for v, digest in pairs]}


def dispatched(
    id: Any,
    ok: bool,
    events: list[int],
    error: str | None = None,
    replies: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """``@@devtools/dispatched``: the answer to a dispatch (``replies``: what the sender got)."""
    return {
        "type": DISPATCHED,
        "id": id,
        "ok": ok,
        "events": list(events),
        "error": error,
        "replies": list(replies or []),
    }


def error(error: str, *, id: Any = None) -> dict[str, Any]:
    """``@@devtools/error``: a request that could not be served."""
    return {"type": ERROR, "id": id, "error": error}


def injected(
    id: Any,
    ok: bool,
    *,
    seq: int | None = None,
    events: list[int] | None = None,
    replies: list[dict[str, Any]] | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """``@@devtools/injected``: the control endpoint's answer to an inject."""
    return {
        "type": INJECTED,
        "id": id,
        "ok": ok,
        "seq": seq,
        "events": list(events or []),
        "replies": list(replies or []),
        "error": error,
    }


def marked(seq: int | None) -> dict[str, Any]:
    """``@@devtools/marked``: the mark was put after message ``seq``."""
    return {"type": MARKED, "seq": seq}


def status(
    *,
    recording: Any,
    connections: int,
    messages: int,
    events: int,
    store_lag_ms: float,
    gaps: int,
) -> dict[str, Any]:
    """``@@devtools/status``: the recorder's counters."""
    return {
        "type": STATUS,
        "recording": recording,
        "connections": connections,
        "messages": messages,
        "events": events,
        "store_lag_ms": store_lag_ms,
        "gaps": gaps,
    }


# --------------------------------------------------------------------------- client → server


def subscribe_request(
    *,
    snapshot: bool = True,
    from_seq: int | None = None,
    kinds: list[str] | None = None,
    batch: bool = False,
    hashes_only: bool = False,
) -> dict[str, Any]:
    """The ``@@devtools/subscribe`` request a client sends."""
    message: dict[str, Any] = {"type": SUBSCRIBE, "snapshot": snapshot}
    if batch:
        message["batch"] = True
    if hashes_only:
        message["hashes_only"] = True
    if from_seq is not None:
        message["from_seq"] = from_seq
    if kinds is not None:
        message["kinds"] = list(kinds)
    return message


def get_state_request(id: Any = None) -> dict[str, Any]:
    """The ``@@devtools/get-state`` request a client sends."""
    return {"type": GET_STATE, "id": id}


def dispatch_request(id: Any, action: dict[str, Any]) -> dict[str, Any]:
    """The ``@@devtools/dispatch`` request a client sends."""
    return {"type": DISPATCH, "id": id, "action": action}


def inject_request(id: Any, action: dict[str, Any], *, via: Via = "devtools") -> dict[str, Any]:
    """The ``@@devtools/inject`` request a control client sends."""
    return {"type": INJECT, "id": id, "action": action, "via": via}


def mark_request(label: str) -> dict[str, Any]:
    """The ``@@devtools/mark`` request a control client sends."""
    return {"type": MARK, "label": label}


def status_request() -> dict[str, Any]:
    """The ``@@devtools/status`` request a control client sends."""
    return {"type": STATUS}
