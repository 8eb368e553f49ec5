"""Several workers, one event stream: which of them disagree, and from which ``v`` (pure).

The recorder decides it live, as the workers' reports arrive (:class:`Tally`), and ``rdt
verify`` decides it again from the log's worker hashes (:func:`disagreements`); both follow
the one rule here, so the log and the live feed name the same workers at the same ``v``:

- At each ``v`` the workers that sent a state hash after that event are grouped by hash. The
  largest group agrees; on a tie, the group holding the lowest-numbered worker (worker 1 is the
  first channel the recorder was given). Every worker outside that group **disagrees** at
  ``v``, with the group's lowest-numbered worker as its *reference*.
- The event objects the workers reported for ``v`` are grouped the same way (the stored copy —
  the first report of ``v``, or the bus's — against the others): a worker outside the largest
  group disagrees at ``v`` too (``kind = "event"``), whatever its hash.
- A worker is named once, at the first ``v`` it disagrees; after that its state differs
  anyway.

Live, a ``v`` is decided once every worker expected to report it has (a worker that joined
after ``v`` is not expected; one that left is no longer), in ``v`` order, so a worker is never
named at a later ``v`` than its first disagreement. A late report of an already decided ``v``
is compared with the hash that agreed there.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from devtools.canonical import CanonicalError, canonical_bytes
from devtools.model import WorkerHash

__all__ = ["Disagreement", "Tally", "decide", "disagreements"]

MAX_PENDING = 50_000
"""Undecided ``v`` held live; beyond this the oldest is decided with the reports it has."""
KEEP_DECIDED = 10_000
"""Decided ``v`` remembered live, to judge late reports (a worker joining behind the others)."""


@dataclass(frozen=True, slots=True)
class Disagreement:
    """Worker ``worker`` first disagrees with the others at ``v``."""

    v: int
    worker: int
    reference: int | None
    """The worker it disagrees with (the agreeing group's lowest-numbered; ``None`` when none
    is known)."""
    kind: Literal["hash", "event"] = "hash"
    """``hash``: its state hash after ``v`` differs; ``event``: its event object for ``v``."""
    hashes: Mapping[int, str | None] = field(default_factory=dict)
    """Every worker's hash after ``v``, as known when it was decided."""
    event: dict[str, Any] | None = None
    """``kind == "event"``: the worker's own event object."""


def decide(hashes: Mapping[int, str | None]) -> tuple[list[int], list[int]]:
    """``(the agreeing workers, the disagreeing workers)`` at one ``v``, both sorted.

    Workers without a hash take no side (they are in neither list).
    """
    present = {h for h in hashes.values() if h is not None}
    if len(present) <= 1:  # the common case: all agree (or none sent a hash)
        return (sorted(w for w, h in hashes.items() if h is not None), [])
    groups: dict[str, list[int]] = {}
    for worker in sorted(hashes):
        h = hashes[worker]
        if h is not None:
            groups.setdefault(h, []).append(worker)
    if not groups:
        return [], []
    winner = max(groups.values(), key=lambda group: (len(group), -group[0]))
    losers = sorted(w for group in groups.values() if group is not winner for w in group)
    return winner, losers


@dataclass(slots=True)
class _Pending:
    hashes: dict[int, str | None] = field(default_factory=dict)
    events: dict[int, dict[str, Any]] = field(default_factory=dict)
    """Workers whose event object differed from the stored one, with theirs."""


class _Judge:
    """The rule over one ``v``'s reports, with the workers already named (shared by both)."""

    def __init__(self) -> None:
        self.flagged: set[int] = set()
        """Workers named so far."""

    def judge(self, v: int, pending: _Pending) -> tuple[list[int], list[Disagreement]]:
        found: list[Disagreement] = []
        hashes = dict(pending.hashes)
        if pending.events:  # the event objects, grouped like the hashes
            keys = {w: _event_key(pending.events.get(w)) for w in hashes}
            agreed, odd = decide(keys)
            for worker in odd:
                if worker in self.flagged:
                    continue
                self.flagged.add(worker)
                event = pending.events.get(worker)
                found.append(Disagreement(v, worker, agreed[0], "event", hashes, event))
        winner, losers = decide(hashes)
        for worker in losers:
            if worker in self.flagged:
                continue
            self.flagged.add(worker)
            found.append(Disagreement(v, worker, winner[0], "hash", hashes))
        return winner, found


class Tally:
    """The live decision: workers' reports in, disagreements out (see the module doc)."""

    def __init__(self, *, max_pending: int = MAX_PENDING, keep_decided: int = KEEP_DECIDED):
        self._judge = _Judge()
        self._max_pending = max_pending
        self._keep = keep_decided
        self._expected: dict[int, int] = {}
        """Worker → the ``v`` it joined at (it reports every later ``v``)."""
        self._pending: dict[int, _Pending] = {}
        self._waiting: list[int] = []
        """The pending ``v``, a heap: the lowest is the next to decide (a worker far behind
        the others leaves many pending, and each report looks only at the lowest)."""
        self._decided: OrderedDict[int, tuple[int | None, str | None]] = OrderedDict()
        """``v`` → (the agreeing reference worker, its hash)."""

    @property
    def flagged(self) -> set[int]:
        """The workers named so far."""
        return self._judge.flagged

    def join(self, worker: int, v: int) -> list[Disagreement]:
        """``worker`` joined at ``v``: it reports every event after ``v``."""
        self._expected[worker] = v
        return self._settle()

    def leave(self, worker: int) -> list[Disagreement]:
        """``worker`` left: ``v`` no longer wait for its reports."""
        self._expected.pop(worker, None)
        return self._settle()

    def report(
        self, worker: int, v: int, hash: str | None, *, event: dict[str, Any] | None = None
    ) -> list[Disagreement]:
        """``worker``'s hash after ``v`` (``None``: sent without one); ``event``: its event
        object, when it differs from the stored one."""
        decided = self._decided.get(v)
        if decided is not None:
            return self._late(worker, v, hash, event, decided)
        pending = self._pending.get(v)
        if pending is None:
            pending = self._pending[v] = _Pending()
            heapq.heappush(self._waiting, v)
        pending.hashes[worker] = hash
        if event is not None:
            pending.events[worker] = event
        return self._settle()

    def finish(self) -> list[Disagreement]:
        """Decide every ``v`` still waiting, with the reports it has (the recorder stops)."""
        found: list[Disagreement] = []
        while self._waiting:
            found.extend(self._decide(heapq.heappop(self._waiting)))
        return found

    def _late(
        self,
        worker: int,
        v: int,
        hash: str | None,
        event: dict[str, Any] | None,
        decided: tuple[int | None, str | None],
    ) -> list[Disagreement]:
        if worker in self.flagged:
            return []
        reference, agreed = decided
        if event is not None:
            self.flagged.add(worker)
            return [Disagreement(v, worker, reference, "event", {worker: hash}, event)]
        if hash is None or agreed is None or hash == agreed or reference is None:
            return []
        self.flagged.add(worker)
        return [Disagreement(v, worker, reference, "hash", {reference: agreed, worker: hash})]

    def _complete(self, v: int, pending: _Pending) -> bool:
        reported = pending.hashes.keys()
        if reported >= self._expected.keys():
            return True
        return all(w in reported for w, joined in self._expected.items() if joined < v)

    def _settle(self) -> list[Disagreement]:
        found: list[Disagreement] = []
        while self._waiting:
            v = self._waiting[0]
            if not self._complete(v, self._pending[v]) and len(self._pending) <= self._max_pending:
                break
            found.extend(self._decide(heapq.heappop(self._waiting)))
        return found

    def _decide(self, v: int) -> list[Disagreement]:
        pending = self._pending.pop(v)
        winner, found = self._judge.judge(v, pending)
        reference = winner[0] if winner else None
        self._decided[v] = (reference, pending.hashes.get(reference) if reference else None)
        while len(self._decided) > self._keep:
            self._decided.popitem(last=False)
        return found


def _event_key(event: dict[str, Any] | None) -> str:
    """What event objects are grouped by: ``"="`` for the stored copy, else their canonical
    JSON (two workers that agree on another event than the stored one are one group)."""
    if event is None:
        return "="
    try:
        return canonical_bytes(event).decode()
    except CanonicalError:
        return repr(event)


def disagreements(reports: Iterable[WorkerHash]) -> list[Disagreement]:
    """The rule over a log's worker hashes, given in ``(v, worker)`` order (streamed)."""
    judge = _Judge()
    found: list[Disagreement] = []
    current: int | None = None
    pending = _Pending()
    for report in reports:
        if report.v != current:
            if current is not None:
                found.extend(judge.judge(current, pending)[1])
            current, pending = report.v, _Pending()
        pending.hashes[report.worker] = report.hash
        if report.event is not None:
            pending.events[report.worker] = report.event
    if current is not None:
        found.extend(judge.judge(current, pending)[1])
    return found
