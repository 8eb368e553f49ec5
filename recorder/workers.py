"""Recording several workers: one copy of the events, every worker's hashes, disagreements live.

Every worker of a deployment folds the same events and serves its own devtools channel; the
recorder follows each channel with a :class:`~recorder.devtools_link.DevtoolsLink` whose
:class:`WorkerReports` hand what it says to the one :class:`WorkerMerge`, and may read the
events straight from the bus (:mod:`recorder.bus`). The merge

- stores **one copy** of each event: the first report of ``v`` wins — or, with a bus, the
  bus's (the bus is the event log; the workers' reports of a ``v`` the bus has not delivered
  yet wait for it). Every later report of ``v`` is compared with that copy; a different event
  object is itself a disagreement, and is stored beside the worker's hash;
- stores every worker's state hash after every event (``worker_hashes``), and gives the
  stored event worker 1's hash (filled in when worker 1's report comes after the copy was
  stored) and the first cause that maps to a recorded message;
- decides live which worker disagrees, by the rule of :mod:`devtools.workers`, tells the live
  subscribers (a :class:`Divergence` record on the control feed) and, the first time a worker
  disagrees, asks it and its reference for their state now (``@@devtools/get-state``), kept as
  worker snapshots for ``rdt verify``'s diff and the TUI.

Runs on the event loop, like the session; the only I/O it starts is those state requests.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from devtools import protocol
from devtools.masking import mask
from devtools.model import Worker, WorkerHash
from devtools.tasks import TaskGroup
from devtools.workers import Disagreement, Tally
from recorder.session import Session

__all__ = ["Divergence", "WorkerMerge", "WorkerReports"]

HELD = 10_000
"""Stored events whose copy is kept for comparing the other workers' reports (the newest)."""
ASK_WAIT = 2.0
"""Seconds a stopping recorder waits for the workers' states it asked for."""
EARLY = 50_000
"""With a bus: worker reports held for events the bus has not delivered yet (beyond this they
are recorded without the comparison of their event object)."""


@dataclass(frozen=True, slots=True)
class Divergence:
    """A live record: ``worker`` disagrees with ``reference`` from ``v`` on."""

    disagreement: Disagreement
    worker: Worker
    reference: Worker | None

    @property
    def v(self) -> int:
        return self.disagreement.v

    @property
    def key(self) -> tuple[int, int]:
        """``(worker, v)``: what tells two divergence records apart."""
        return (self.disagreement.worker, self.disagreement.v)

    def describe(self) -> str:
        """``worker 3 (…) disagrees with worker 1 (…) at v=17 (state hash)``."""
        d = self.disagreement
        what = "event object" if d.kind == "event" else "state hash"
        other = f" with {self.reference.describe()}" if self.reference is not None else ""
        return f"{self.worker.describe()} disagrees{other} at v={d.v} ({what})"

    def to_json(self) -> dict[str, Any]:
        """The control feed's ``divergence`` record (PROTOCOL.md §3)."""
        d = self.disagreement
        return {
            "kind": "divergence",
            "v": d.v,
            "worker": _worker_json(self.worker),
            "reference": None if self.reference is None else _worker_json(self.reference),
            "differs": d.kind,
            "hashes": {str(w): h for w, h in sorted(d.hashes.items())},
            "event": d.event,
            "detail": self.describe(),
        }


def _worker_json(worker: Worker) -> dict[str, Any]:
    return {
        "index": worker.index,
        "id": worker.id,
        "name": worker.name,
        "version": worker.version,
        "url": worker.url,
    }


class _Held:
    """A stored event, kept while other workers may still report it."""

    __slots__ = ("cause_known", "event", "hash_known", "reports")

    def __init__(self, event: dict[str, Any], hash_known: bool, cause_known: bool) -> None:
        self.event = event
        self.hash_known = hash_known
        self.cause_known = cause_known
        self.reports = 0


class WorkerReports:
    """One worker's channel (a :class:`~recorder.devtools_link.Reports`) into the merge."""

    def __init__(self, merge: WorkerMerge, index: int) -> None:
        self.merge = merge
        self.index = index

    def hello(self, server: dict[str, Any]) -> None:
        self.merge.hello(self.index, server)

    def event(self, v: int, event: dict[str, Any], cause: Any, hash: str | None) -> None:
        self.merge.report(self.index, v, event, cause, hash)

    def hash(self, v: int, hash: str | None) -> None:
        self.merge.report(self.index, v, None, None, hash)

    def snapshot(self, v: int, state: Any, hash: str | None, *, join: bool) -> None:
        self.merge.snapshot(self.index, v, state, hash, join=join)

    def missed(self, start: int, end: int) -> None:
        self.merge.missed(start, end)

    def left(self) -> None:
        self.merge.left(self.index)


class WorkerMerge:
    """Several workers' reports (and a bus's events) into one recording (see the module doc).

    Args:
        session: the recording.
        bus: the events come from a bus (:meth:`bus_event`); the workers give hashes.
        warn: where one-line notices go (a worker disagreeing is said on stderr too).
    """

    def __init__(
        self,
        session: Session,
        *,
        bus: bool = False,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.session = session
        self.bus = bus
        self._warn = warn or (lambda line: None)
        self.workers: dict[int, Worker] = {}
        self.ask_state: dict[int, Callable[[], Awaitable[dict[str, Any]]]] = {}
        """Worker index → how to ask it for a snapshot now (its link's ``get_state``)."""
        self.tally = Tally()
        self.divergences: list[Divergence] = []
        """Every disagreement announced so far."""
        self._high = 0
        self._above: set[int] = set()
        self._started = False
        self._held: OrderedDict[int, _Held] = OrderedDict()
        self._early: dict[int, list[tuple[int, dict[str, Any] | None, Any, str | None]]] = {}
        self._asked: set[int] = set()
        self._reported: dict[int, int] = {}
        self._asking: set[asyncio.Task[Any]] = set()
        self._snapshots = False
        self._tasks = TaskGroup()

    # ---- workers

    def add(self, url: str | None) -> WorkerReports:
        """A new worker (numbered 1, 2, 3 … in the order added) and its reports."""
        index = len(self.workers) + 1
        worker = Worker(index, None if url is None else mask(url))
        self.workers[index] = self.session.worker(worker)
        return WorkerReports(self, index)

    def hello(self, index: int, server: dict[str, Any]) -> None:
        """A worker's hello: its id, name and version (worker 1's is the recording's server)."""
        worker_id = server.get("worker")
        old = self.workers[index]
        worker = Worker(
            index,
            old.url,
            None if worker_id is None else str(worker_id),
            _text(server.get("name")),
            _text(server.get("version")),
            server,
        )
        self.workers[index] = self.session.worker(worker)
        if index == 1:
            self.session.server(server)

    def snapshot(self, index: int, v: int, state: Any, hash: str | None, *, join: bool) -> None:
        """A snapshot a worker sent unasked: at a join it is the worker's start, kept as its
        snapshot, its hash compared; worker 1's (and the first join's) are the recording's."""
        if join:
            if not self._started and not self.bus:  # the events up to here are not ours
                self._started = True
                self._high = max(self._high, v)
            self.session.worker_snapshot(index, v, state, hash)
            self._announce(self.tally.join(index, v))
            self._hash(index, v, hash, None)
        if index == 1 or (join and not self._snapshots):
            self._snapshots = True
            self.session.snapshot(v, state, hash)

    def missed(self, start: int, end: int) -> None:
        """A worker's channel was down for events ``start..end``: a gap for those no one
        else reported (none with a bus: it delivers them)."""
        if self.bus:
            return
        lo = max(start, self._high + 1)
        missing = [v for v in range(lo, end + 1) if v not in self._above]
        if missing:
            self.session.gap("events", missing[0], missing[-1], "devtools channel dropped")

    def left(self, index: int) -> None:
        self._announce(self.tally.leave(index))

    # ---- events

    def report(
        self, index: int, v: int, event: dict[str, Any] | None, cause: Any, hash: str | None
    ) -> None:
        """Worker ``index`` reported event ``v`` with its hash after it (``event`` ``None``:
        the hash alone, from a link that asked for ``hashes_only``: with a bus, whose copy of
        the event is the recording's)."""
        if not self._stored(v):
            if self.bus:
                early = self._early.get(v)
                if early is not None or len(self._early) < EARLY:
                    self._early.setdefault(v, []).append((index, event, cause, hash))
                    return
            elif event is not None:
                self._store(v, event, cause, hash if index == 1 else None)
        self._compare(index, v, event, cause, hash)

    def bus_event(self, v: int, event: dict[str, Any], cause: Any) -> None:
        """The bus delivered event ``v`` (its stream sequence)."""
        if not self._started:
            self._started = True
            self._high = max(self._high, v - 1)
        if self._stored(v):
            return
        early = self._early.pop(v, [])
        first = next((h for i, _e, _c, h in early if i == 1), None)
        self._store(v, event, cause, first)
        for index, reported, their_cause, hash in early:
            self._compare(index, v, reported, their_cause, hash)

    def _stored(self, v: int) -> bool:
        return v <= self._high or v in self._above

    def _store(self, v: int, event: dict[str, Any], cause: Any, hash: str | None) -> None:
        if v == self._high + 1:
            self._high = v
            while self._high + 1 in self._above:
                self._above.discard(self._high + 1)
                self._high += 1
        else:
            self._above.add(v)
        record = self.session.event(v, event, cause, hash)
        self._held[v] = _Held(event, hash is not None, record.cause_seq is not None)
        while len(self._held) > HELD:
            self._held.popitem(last=False)

    def _compare(
        self, index: int, v: int, event: dict[str, Any] | None, cause: Any, hash: str | None
    ) -> None:
        held = self._held.get(v)
        differing = None
        if held is not None:
            if event is not None and event != held.event:
                differing = event
            fill_hash = hash if index == 1 and hash is not None and not held.hash_known else None
            fill_cause = None if held.cause_known else self.session.cause_seq(cause)
            if fill_hash is not None or fill_cause is not None:
                held.hash_known = held.hash_known or fill_hash is not None
                held.cause_known = held.cause_known or fill_cause is not None
                self.session.fill_event(v, fill_hash, fill_cause)
            held.reports += 1
            if held.reports >= len(self.workers):
                del self._held[v]
        self._hash(index, v, hash, differing)

    def reported_to(self, v: int) -> int:
        """How many workers' reports of ``v`` (or later) have been recorded."""
        return sum(last >= v for last in self._reported.values())

    def _hash(self, index: int, v: int, hash: str | None, differing: dict[str, Any] | None) -> None:
        self._reported[index] = max(v, self._reported.get(index, v))
        self.session.worker_hash(WorkerHash(index, v, hash, differing))
        self._announce(self.tally.report(index, v, hash, event=differing))

    # ---- disagreements

    def _announce(self, found: list[Disagreement]) -> None:
        for disagreement in found:
            reference = (
                None if disagreement.reference is None else self.workers[disagreement.reference]
            )
            record = Divergence(disagreement, self.workers[disagreement.worker], reference)
            self.divergences.append(record)
            self._warn(f"workers disagree: {record.describe()}")
            self.session.announce(record)
            for index in (disagreement.worker, disagreement.reference):
                if index is not None and index not in self._asked and index in self.ask_state:
                    self._asked.add(index)
                    task = self._tasks.spawn(self._ask(index), f"rdt-worker-{index}-state")
                    self._asking.add(task)
                    task.add_done_callback(self._asking.discard)

    async def _ask(self, index: int) -> None:
        answer = await self.ask_state[index]()
        if answer.get("type") == protocol.SNAPSHOT and isinstance(answer.get("v"), int):
            v, state, digest = answer["v"], answer.get("state"), answer.get("hash")
            self.session.worker_snapshot(index, v, state, digest)
        else:
            self._warn(f"worker {index} did not send its state: {answer.get('error')}")

    async def close(self) -> None:
        """Decide what is still undecided (announced), let the state requests under way
        finish (at most :data:`ASK_WAIT` seconds; the links are still open), then stop."""
        self._announce(self.tally.finish())
        if self._asking:
            await asyncio.wait(set(self._asking), timeout=ASK_WAIT)
        await self._tasks.cancel_all()


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None if value is None else str(value)
