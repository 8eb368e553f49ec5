"""The plan of a traffic replay: which connections to open, which frames to send, in what order,
and how many frames the target should have sent back at each point. Pure: built from a
recording's connections and messages, tested without sockets; :mod:`recorder.traffic_replay`
runs it.

Order. Frames keep their recorded ``seq`` order (per connection and across connections). A
connection is opened at its recorded opening time — before the first frame forwarded after it,
and before its own first frame — and closed right after its last recorded frame (either
direction; by its closing time when it has none), before any later client frame. A connection
the recording never saw closed is closed at the end.

Expected replies. Each send step carries ``expect``: the number of frames the recording shows
the target sending on that connection before the next client frame of the replay (any
connection), counted from the connection's start; a close step carries the connection's total.
``--pace replies`` waits for ``expect`` after each frame. Frames that are not resent (skipped
as flagged, or recorded without their bytes) take the frames the target sent in answer to them
out of the expectation, so a replay without them does not wait for replies that cannot come.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from devtools.model import Connection, Message
from recorder.resend import Handshake, resend_handshake

StepKind = Literal["open", "send", "close"]
PACES = ("replies", "original", "fast")
CLIENT_CLOSE_CODES = frozenset({1000, 1001})
"""Recorded close codes a client may send itself (besides 3000–4999); others become 1000."""


@dataclass(frozen=True, slots=True)
class PlannedConnection:
    """A recorded client connection to open again."""

    id: int
    """Its id in the recording."""
    path: str
    """The recorded request path (appended to the target's base path)."""
    close_code: int | None
    close_reason: str | None
    replies: int
    """Frames the target sent on it in the recording (before it closed)."""
    handshake: Handshake
    """The target, subprotocols and headers it is opened with (see :mod:`recorder.resend`)."""

    @property
    def client_close_code(self) -> int:
        """The close code the replay sends when it closes this connection."""
        code = self.close_code
        if code is not None and (code in CLIENT_CLOSE_CODES or 3000 <= code <= 4999):
            return code
        return 1000


@dataclass(frozen=True, slots=True)
class Step:
    """One thing the replay does, at offset ``at_ns`` from the recording's first step."""

    kind: StepKind
    connection: int
    """The recorded connection id."""
    at_ns: int
    seq: int = 0
    """The recorded ``seq`` of the frame (send steps)."""
    payload: bytes = b""
    binary: bool = False
    flag: str | None = None
    expect: int = 0
    """Frames the target should have sent on this connection once this step is answered."""


@dataclass(frozen=True, slots=True)
class Skipped:
    """A recorded client frame the replay does not send, and why."""

    connection: int
    seq: int
    reason: str


@dataclass(frozen=True, slots=True)
class Plan:
    connections: tuple[PlannedConnection, ...]
    steps: tuple[Step, ...]
    skipped: tuple[Skipped, ...]

    @property
    def frames(self) -> int:
        """How many frames the replay sends."""
        return sum(1 for step in self.steps if step.kind == "send")


def select_connections(connections: Sequence[Connection], spec: str | None) -> set[int]:
    """The recorded client connections ``--connections`` names (``None``/``all``: every one).

    Raises:
        ValueError: ``spec`` is not ``all`` or a comma-separated list of known ids.
    """
    clients = {c.id for c in connections if c.origin == "client"}
    if spec is None or spec.strip() == "all":
        return clients
    chosen: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        if not part.isdigit():
            raise ValueError(f"--connections must be 'all' or ids like 1,2,5; got {spec!r}")
        if int(part) not in clients:
            raise ValueError(f"the recording has no client connection {part}")
        chosen.add(int(part))
    return chosen


def build_plan(
    connections: Sequence[Connection],
    messages: Iterable[Message],
    *,
    only: set[int] | None = None,
    skip_flagged: bool = False,
    extra_headers: Sequence[tuple[str, str]] = (),
) -> Plan:
    """The replay plan of a recording.

    Args:
        connections: the recording's connections (only ``client`` ones are replayed).
        messages: its messages in ``seq`` order (both directions).
        only: the connection ids to replay (default: every client connection).
        skip_flagged: leave out frames that are not valid JSON messages (binary included).
        extra_headers: ``--header`` values sent on every connection's handshake.
    """
    chosen = {c.id: c for c in connections if c.origin == "client"}
    if only is not None:
        chosen = {cid: c for cid, c in chosen.items() if cid in only}
    out_count = dict.fromkeys(chosen, 0)
    skipping: dict[int, bool] = dict.fromkeys(chosen, False)
    sends: list[list] = []  # [connection, t_ns, seq, payload, binary, flag, expect]
    skipped: list[Skipped] = []
    last_send: list | None = None
    last_any: dict[int, int] = {}
    for m in messages:
        cid = m.connection
        if cid not in chosen:
            continue
        last_any[cid] = m.seq
        if m.direction == "out":
            if not skipping[cid]:  # frames answering a frame not resent are not expected
                out_count[cid] += 1
            continue
        # a client frame: the previous send's expectation ends here
        if last_send is not None:
            last_send[6] = out_count[last_send[0]]
            last_send = None
        for key in skipping:
            skipping[key] = False
        reason = None
        if m.size >= 0 and m.size != len(m.payload):
            reason = f"recorded without its bytes ({m.flag or 'redacted'})"
        elif skip_flagged and m.flag is not None:
            reason = f"flagged {m.flag}"
        if reason is not None:
            skipped.append(Skipped(cid, m.seq, reason))
            skipping[cid] = True
            continue
        last_send = [cid, m.t_ns, m.seq, m.payload, m.binary, m.flag, 0]
        sends.append(last_send)
    if last_send is not None:
        last_send[6] = out_count[last_send[0]]

    # where each connection opens and closes, relative to the sends (by time, clamped to its frames)
    running_max: list[int] = []
    high = None
    for send in sends:
        high = send[1] if high is None else max(high, send[1])
        running_max.append(high)
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for index, send in enumerate(sends):
        first.setdefault(send[0], index)
        last[send[0]] = index
    end_ns = max([running_max[-1]] if running_max else [0])
    send_seqs = [send[2] for send in sends]
    around: list[tuple[int, int, int, int, Step]] = []  # (position, time, rank, id, step)
    planned = []
    for cid, conn in sorted(chosen.items(), key=lambda kv: (kv[1].opened_ns, kv[0])):
        open_at = bisect.bisect_right(running_max, conn.opened_ns)
        if cid in first:
            open_at = min(open_at, first[cid])
        if conn.closed_ns is None:
            close_at, close_ns = len(sends), max(end_ns, conn.opened_ns)
        elif cid in last_any:  # right after its last recorded frame, either direction
            close_at = bisect.bisect_right(send_seqs, last_any[cid])
            close_ns = conn.closed_ns
        else:
            close_at = bisect.bisect_right(running_max, conn.closed_ns)
            close_ns = conn.closed_ns
        if cid in last:
            close_at = max(close_at, last[cid] + 1)
        replies = out_count[cid]
        around.append((open_at, conn.opened_ns, 0, cid, Step("open", cid, conn.opened_ns)))
        around.append(
            (close_at, close_ns, 1, cid, Step("close", cid, close_ns, expect=out_count[cid]))
        )
        handshake = resend_handshake(conn.path, conn.handshake, extra_headers)
        planned.append(
            PlannedConnection(
                cid, conn.path, conn.close_code, conn.close_reason, replies, handshake
            )
        )
    around.sort(key=lambda item: (item[0], item[1], item[2], item[3]))

    steps: list[Step] = []
    pending = iter(around)
    nxt = next(pending, None)
    for index, (cid, t_ns, seq, payload, binary, flag, expect) in enumerate(sends):
        while nxt is not None and nxt[0] <= index:
            steps.append(nxt[4])
            nxt = next(pending, None)
        steps.append(Step("send", cid, t_ns, seq, payload, binary, flag, expect))
    while nxt is not None:
        steps.append(nxt[4])
        nxt = next(pending, None)
    start = min((s.at_ns for s in steps), default=0)
    steps = [_shift(step, start) for step in steps]
    return Plan(tuple(planned), tuple(steps), tuple(skipped))


def _shift(step: Step, start: int) -> Step:
    return Step(
        step.kind,
        step.connection,
        max(step.at_ns - start, 0),
        step.seq,
        step.payload,
        step.binary,
        step.flag,
        step.expect,
    )
