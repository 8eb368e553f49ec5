"""Workers on a bus (PROTOCOL.md §9) as plain data: subjects, envelopes, acks, the join plan.

Several worker processes share one NATS JetStream stream ``S``. Each accepted event is one
message on subject ``S.events`` whose body is ``{"event": EVENT, "cause": CAUSE}`` and whose
stream sequence is the event's ``v``; a late worker asks core subject ``_rdt.S.snapshot`` for
the running workers' states and consumes the stream after the best one. Broadcasts reach the
other workers' clients through core subject ``_rdt.S.broadcast``.

Everything here is pure and never raises on bad input: decoders return a value or a flagged
result (:class:`BadMessage`, ``None``), checks return the one-line error or ``None``. The NATS
I/O that uses these lives in :mod:`devtools.bus`; the server side (retry on a conflict, fold,
deliver) in :mod:`devtools.server`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from devtools import jsonutil
from devtools.canonical import CanonicalError, state_hash
from devtools.server_context import Emitted

SCHEMES = ("nats", "tls", "ws", "wss")
"""URL schemes ``--bus`` takes (those nats-py connects with)."""

MAX_WORKER_ID = 200
"""The longest worker id accepted (as long as an ``X-Rdt-Connection`` value)."""

HEADER_MSG_ID = "Nats-Msg-Id"
HEADER_EXPECTED_STREAM = "Nats-Expected-Stream"
HEADER_EXPECTED_LAST_SEQUENCE = "Nats-Expected-Last-Sequence"
HEADER_EXPECTED_LAST_MSG_ID = "Nats-Expected-Last-Msg-Id"
HEADER_ANSWER = "Rdt-Answer"
"""On a snapshot answer sent in parts: which answer the part belongs to (a random id)."""
HEADER_PART = "Rdt-Part"
"""On a snapshot answer sent in parts: ``I/N``, this part's place (from 1) and their number."""
PART_MARGIN = 4096
"""Bytes left under NATS's ``max_payload`` for the subject, reply and headers of a part."""

ERR_WRONG_LAST_SEQUENCE = 10071
"""JetStream's error code for a failed ``Nats-Expected-Last-Sequence`` check."""
ERR_WRONG_LAST_MSG_ID = 10070
"""JetStream's error code for a failed ``Nats-Expected-Last-Msg-Id`` check."""

_STREAM_NAME = re.compile(r"[A-Za-z0-9_-]{1,200}")
_LAST_SEQUENCE = re.compile(r"wrong last sequence: (\d+)")


# --------------------------------------------------------------------------- names


def events_subject(stream: str) -> str:
    """The one subject stream ``stream`` holds: every event, one message each."""
    return f"{stream}.events"


def snapshot_subject(stream: str) -> str:
    """The core-NATS request subject every running worker answers with its state."""
    return f"_rdt.{stream}.snapshot"


def broadcast_subject(stream: str) -> str:
    """The core-NATS subject a worker forwards its broadcasts on, for the others' clients."""
    return f"_rdt.{stream}.broadcast"


def contend_subject(stream: str) -> str:
    """The core-NATS subject a worker that keeps losing the race asks the others to give way on."""
    return f"_rdt.{stream}.contend"


def check_stream_name(stream: str) -> str | None:
    """Why ``stream`` cannot name a bus stream, or ``None`` (letters, digits, ``_``, ``-``)."""
    if _STREAM_NAME.fullmatch(stream):
        return None
    return f"--stream {stream!r}: use 1-200 letters, digits, '_' or '-' (it names NATS subjects)"


def check_worker_id(worker: str) -> str | None:
    """Why ``worker`` cannot be a worker id, or ``None``."""
    if not worker.strip() or len(worker) > MAX_WORKER_ID:
        return f"--worker-id must be 1-{MAX_WORKER_ID} characters"
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in worker):
        return "--worker-id must not hold control characters"
    return None


def default_worker_id(hostname: str, pid: int) -> str:
    """``HOSTNAME-PID``: unique among the workers of one deployment."""
    return f"{hostname or 'localhost'}-{pid}"[:MAX_WORKER_ID]


def parse_servers(url: str) -> tuple[str, ...] | str:
    """The server URLs of ``--bus`` (comma-separated for a cluster), or why it is not one."""
    servers = tuple(part.strip() for part in url.split(",") if part.strip())
    if not servers:
        return "--bus needs a URL such as nats://127.0.0.1:4222"
    for server in servers:
        try:
            parts = urlsplit(server)
            port = parts.port
        except ValueError as error:
            return f"--bus {server!r} is not a valid URL: {error}"
        if parts.scheme not in SCHEMES:
            return f"--bus {server!r}: expected a {'/'.join(SCHEMES)}:// URL"
        if not parts.hostname:
            return f"--bus {server!r} has no host"
        if port == 0:
            return f"--bus {server!r} has port 0"
    return servers


# --------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class BusEvent:
    """One message of ``S.events`` decoded: the event the reducers receive and its cause."""

    seq: int
    """The stream sequence, equal to ``event["v"]``."""
    event: dict[str, Any]
    cause: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class BadMessage:
    """A message of ``S.events`` that is not an event of this protocol (every worker skips it)."""

    seq: int
    reason: str


def encode_event(event: dict[str, Any], cause: dict[str, Any] | None) -> bytes:
    """The body of one event's message: ``{"event": EVENT, "cause": CAUSE_OR_NULL}``."""
    return jsonutil.dumps({"event": event, "cause": cause})


def decode_event(data: bytes, seq: int) -> BusEvent | BadMessage:
    """Decode the message at stream sequence ``seq``; never raises."""
    try:
        body = jsonutil.loads(data)
    except ValueError as error:
        return BadMessage(seq, f"not JSON: {error}")
    if not isinstance(body, dict):
        return BadMessage(seq, "not a JSON object")
    event, cause = body.get("event"), body.get("cause")
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        return BadMessage(seq, "'event' is not an object with a string 'type'")
    if event.get("v") != seq or isinstance(event.get("v"), bool):
        return BadMessage(seq, f"its event's v is {event.get('v')!r}, not the stream sequence")
    if cause is not None and not isinstance(cause, dict):
        return BadMessage(seq, "'cause' is neither null nor an object")
    return BusEvent(seq, event, cause)


def publish_headers(
    stream: str, msg_id: str, expected_last: int, previous_msg_id: str | None = None
) -> dict[str, str]:
    """The headers of one event's publish.

    ``Nats-Expected-Last-Sequence`` makes the stream refuse it unless its last sequence is the
    ``v`` the worker last folded; ``Nats-Msg-Id`` makes a re-send after a lost ack harmless;
    a message's second and later events also expect the previous one's id as the stream's last
    (``Nats-Expected-Last-Msg-Id``), so none of them is stored when an earlier one was refused.
    """
    headers = {
        HEADER_MSG_ID: msg_id,
        HEADER_EXPECTED_STREAM: stream,
        HEADER_EXPECTED_LAST_SEQUENCE: str(expected_last),
    }
    if previous_msg_id is not None:
        headers[HEADER_EXPECTED_LAST_MSG_ID] = previous_msg_id
    return headers


# --------------------------------------------------------------------------- acks


@dataclass(frozen=True, slots=True)
class Stored:
    """The stream stored the message at ``seq`` (``duplicate``: it had it already)."""

    seq: int
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class WrongLast:
    """The expected-last check failed: another worker published first."""

    last_seq: int | None
    """The stream's last sequence, when the error says it."""


@dataclass(frozen=True, slots=True)
class AckError:
    """Any other refusal (no stream, stream full, …), as one line."""

    error: str


Ack = Stored | WrongLast | AckError


def parse_ack(data: bytes, status: str | None = None) -> Ack:
    """A JetStream publish acknowledgement; ``status`` is the reply's ``Status`` header."""
    if status == "503":
        return AckError("no stream listens on the events subject (was it deleted?)")
    try:
        body = jsonutil.loads(data)
    except ValueError:
        return AckError("NATS answered a publish with something that is not JSON")
    if not isinstance(body, dict):
        return AckError("NATS answered a publish with something that is not an object")
    error = body.get("error")
    if isinstance(error, dict):
        code = error.get("err_code")
        text = str(error.get("description") or error)
        if code == ERR_WRONG_LAST_SEQUENCE:
            found = _LAST_SEQUENCE.search(text)
            return WrongLast(int(found.group(1)) if found else None)
        if code == ERR_WRONG_LAST_MSG_ID:
            return WrongLast(None)
        return AckError(f"NATS refused the event: {' '.join(text.split())}")
    seq = body.get("seq")
    if isinstance(seq, int) and not isinstance(seq, bool) and seq > 0:
        return Stored(seq, body.get("duplicate") is True)
    return AckError("NATS acknowledged a publish without a sequence")


@dataclass(frozen=True, slots=True)
class Published:
    """Every event of the message is in the stream, at ``vs``."""

    vs: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Conflict:
    """Nothing was stored: the stream moved on; fold up to ``wait_for`` and run it again."""

    wait_for: int


@dataclass(frozen=True, slots=True)
class PublishFailed:
    """The message's events could not be published (``stored``: how many made it anyway)."""

    error: str
    stored: int = 0


PublishOutcome = Published | Conflict | PublishFailed


def publish_outcome(acks: Sequence[Ack], first_v: int) -> PublishOutcome:
    """What the acks of one message's events (published in order from ``first_v``) mean."""
    stored = 0
    for i, ack in enumerate(acks):
        if isinstance(ack, Stored) and ack.seq == first_v + i:
            stored += 1
            continue
        if stored:
            return PublishFailed(
                f"bus conflict: another worker's event came between this message's events; "
                f"{stored} of its {len(acks)} events are stored, the rest are not",
                stored,
            )
        if isinstance(ack, WrongLast):
            expected = first_v - 1
            if ack.last_seq is not None and ack.last_seq < expected:
                return PublishFailed(
                    f"the stream ends at seq {ack.last_seq}, behind this worker's v={expected}: "
                    "was it deleted and created again?"
                )
            return Conflict(max(ack.last_seq or 0, first_v))
        if isinstance(ack, Stored):
            return PublishFailed(f"NATS stored the event at seq {ack.seq}, not at v={first_v}")
        return PublishFailed(ack.error)
    return Published(tuple(range(first_v, first_v + len(acks))))


# --------------------------------------------------------------------------- snapshots


@dataclass(frozen=True, slots=True)
class SnapshotOffer:
    """One running worker's answer on ``_rdt.S.snapshot``: its state after event ``v``."""

    v: int
    state: Any
    hash: str | None
    worker: str
    name: str | None = None
    version: str | None = None


def snapshot_reply(
    *, v: int, state: Any, hash: str | None, worker: str, name: str, version: str
) -> dict[str, Any]:
    """A worker's answer to a snapshot request: ``{"v", "state", "hash", "worker", …}``."""
    return {
        "v": v,
        "state": state,
        "hash": hash,
        "worker": worker,
        "name": name,
        "version": version,
    }


def parse_snapshot_reply(data: bytes) -> SnapshotOffer | None:
    """An offer, or ``None`` for an answer that is malformed or whose hash does not match."""
    try:
        body = jsonutil.loads(data)
    except ValueError:
        return None
    if not isinstance(body, dict) or "state" not in body:
        return None
    v, worker, digest = body.get("v"), body.get("worker"), body.get("hash")
    if not isinstance(v, int) or isinstance(v, bool) or v < 0 or not isinstance(worker, str):
        return None
    if digest is not None:
        try:
            if state_hash(body["state"]) != digest:
                return None
        except CanonicalError:
            return None
    name, version = body.get("name"), body.get("version")
    return SnapshotOffer(
        v,
        body["state"],
        digest,
        worker,
        name if isinstance(name, str) else None,
        version if isinstance(version, str) else None,
    )


def snapshot_parts(
    data: bytes, max_payload: int, answer: str
) -> list[tuple[bytes, dict[str, str]]]:
    """A snapshot answer as the messages that carry it: one plain message when it fits in
    ``max_payload`` (NATS's limit on a message, 1 MiB by default), else parts of at most
    ``max_payload - PART_MARGIN`` bytes, each with headers naming the answer and its place."""
    if len(data) <= max_payload - PART_MARGIN:
        return [(data, {})]
    size = max(1, max_payload - PART_MARGIN)
    chunks = [data[at : at + size] for at in range(0, len(data), size)]
    return [
        (chunk, {HEADER_ANSWER: answer, HEADER_PART: f"{i}/{len(chunks)}"})
        for i, chunk in enumerate(chunks, 1)
    ]


class SnapshotParts:
    """Puts together the answers that come in parts (:func:`snapshot_parts`).

    Bounded: at most ``max_answers`` answers in progress and ``max_bytes`` held in all; a part
    past either, a malformed ``Rdt-Part`` or one that does not fit its answer is dropped (that
    answer then never completes, and the joiner takes another or none)."""

    def __init__(self, *, max_answers: int = 64, max_bytes: int = 1 << 30) -> None:
        self.max_answers = max_answers
        self.max_bytes = max_bytes
        self._open: dict[str, list[bytes | None]] = {}
        self._held = 0

    def add(self, data: bytes, headers: dict[str, str] | None) -> bytes | None:
        """The whole answer once ``data`` completes one (a plain message is whole at once);
        ``None`` while parts are missing or when the part is dropped."""
        if not headers or HEADER_PART not in headers:
            return data
        answer = headers.get(HEADER_ANSWER, "")
        place, _, count = headers[HEADER_PART].partition("/")
        if not (place.isdigit() and count.isdigit() and 1 <= int(place) <= int(count)):
            return None
        index, total = int(place) - 1, int(count)
        parts = self._open.get(answer)
        if parts is None:
            if len(self._open) >= self.max_answers:
                return None
            parts = self._open[answer] = [None] * total
        if len(parts) != total or parts[index] is not None:
            return None
        if self._held + len(data) > self.max_bytes:
            return None
        parts[index] = data
        self._held += len(data)
        if any(part is None for part in parts):
            return None
        del self._open[answer]
        whole = b"".join(parts)  # type: ignore[arg-type]
        self._held -= len(whole)
        return whole

    @property
    def incomplete(self) -> int:
        """Answers still missing parts."""
        return len(self._open)


def choose_snapshot(
    offers: Iterable[SnapshotOffer], *, name: str, version: str
) -> SnapshotOffer | None:
    """The offer to start from: the highest ``v`` among workers of the same name and version,
    else the highest ``v`` of any (so a worker never copies a drifted version's state while
    one of its own version runs); ties go to the smallest worker id."""
    offers = list(offers)
    same = [o for o in offers if o.name == name and o.version == version]
    pool = same or offers
    if not pool:
        return None
    return min(pool, key=lambda o: (-o.v, o.worker))


@dataclass(frozen=True, slots=True)
class StreamExtent:
    """What a stream holds: JetStream's ``state.first_seq``, ``last_seq`` and ``messages``."""

    first_seq: int
    last_seq: int
    messages: int

    @property
    def earliest(self) -> int:
        """The first sequence a consumer can still read (``last_seq + 1`` when empty)."""
        return self.first_seq if self.messages > 0 else self.last_seq + 1


@dataclass(frozen=True, slots=True)
class JoinPlan:
    """Where a new worker starts: state after ``v`` (from ``offer``, or the initial state),
    then every event from ``v + 1``; it serves once it has folded ``catch_up_to``."""

    v: int
    offer: SnapshotOffer | None
    catch_up_to: int


@dataclass(frozen=True, slots=True)
class JoinRefused:
    """The worker cannot rebuild the state from what the bus holds."""

    error: str


def plan_join(
    stream: str, offer: SnapshotOffer | None, extent: StreamExtent
) -> JoinPlan | JoinRefused:
    """Start from ``offer`` (or the initial state at ``v = 0``) when the stream still holds
    every event after it; refuse otherwise."""
    v = offer.v if offer is not None else 0
    if v > extent.last_seq:
        return JoinRefused(
            f"worker {offer.worker if offer else '?'} offers a snapshot at v={v} but stream "
            f"{stream} ends at seq {extent.last_seq}: was the stream deleted and created again "
            "under running workers? Stop them, or use a new stream"
        )
    if v + 1 < extent.earliest:
        where = f"the snapshot at v={v}" if offer is not None else "no worker answered a snapshot"
        return JoinRefused(
            f"stream {stream} starts at seq {extent.earliest} (earlier events were removed by "
            f"its retention) and {where}: the state cannot be rebuilt; start this worker while "
            "another one runs, or keep every event in the stream"
        )
    return JoinPlan(v, offer, extent.last_seq)


# --------------------------------------------------------------------------- broadcasts


@dataclass(frozen=True, slots=True)
class Broadcast:
    """A broadcast of worker ``worker``, to deliver once event ``after`` is folded."""

    worker: str
    after: int
    message: dict[str, Any]


def encode_broadcast(worker: str, after: int, message: dict[str, Any]) -> bytes:
    """The body on ``_rdt.S.broadcast``: ``{"worker", "after", "message"}``."""
    return jsonutil.dumps({"worker": worker, "after": after, "message": message})


def decode_broadcast(data: bytes) -> Broadcast | None:
    """A forwarded broadcast, or ``None`` for a malformed one."""
    try:
        body = jsonutil.loads(data)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    worker, after, message = body.get("worker"), body.get("after"), body.get("message")
    if not isinstance(worker, str) or not isinstance(message, dict):
        return None
    if not isinstance(after, int) or isinstance(after, bool) or after < 0:
        return None
    return Broadcast(worker, after, message)


# --------------------------------------------------------------------------- fairness

CONTEND_AFTER = 1
"""Conflicts in a row after which a message's worker asks the others to give way."""


@dataclass(frozen=True, slots=True)
class Contend:
    """Worker ``worker`` keeps losing the race: it is publishing event ``v`` with message id
    ``id``, and the others hold back their next publish until they fold that message, a moment
    at most (advisory; correctness never depends on it)."""

    worker: str
    v: int
    id: str


def encode_contend(worker: str, v: int, msg_id: str) -> bytes:
    """The body on ``_rdt.S.contend``: ``{"worker", "v", "id"}``."""
    return jsonutil.dumps({"worker": worker, "v": v, "id": msg_id})


def decode_contend(data: bytes) -> Contend | None:
    """A give-way request, or ``None`` for a malformed one."""
    try:
        body = jsonutil.loads(data)
    except ValueError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("worker"), str):
        return None
    v, msg_id = body.get("v"), body.get("id")
    if not isinstance(v, int) or isinstance(v, bool) or v < 1 or not isinstance(msg_id, str):
        return None
    return Contend(body["worker"], v, msg_id)


# --------------------------------------------------------------------------- the seam


class EventBus(Protocol):
    """What :class:`devtools.server.ReducerServer` needs from a bus (``devtools.bus.NatsBus``).

    The server runs a message's middleware against its state; ``append`` publishes the events
    with the expected-last check; the bus's consumer folds every event of the stream into the
    server (``server.fold``), and ``wait_folded`` returns once event ``v`` is folded here.
    """

    worker_id: str
    failure: str | None
    """Why this worker cannot go on (a gap in the stream), or ``None``."""

    async def start(self, server: Any) -> None:
        """Join: adopt a snapshot, fold the stream up to its end, answer snapshot requests."""

    async def append(self, emitted: Sequence[Emitted], *, conflicts: int = 0) -> PublishOutcome:
        """Publish one message's events, in order (``conflicts``: how often this message lost
        to another worker's event already)."""

    async def wait_folded(self, v: int) -> bool:
        """Wait until event ``v`` is folded here; ``False`` on a timeout or a failure."""

    def broadcast(self, after: int, message: dict[str, Any]) -> None:
        """Forward a broadcast to the other workers' clients."""

    async def close(self) -> None:
        """Leave the bus."""
