"""Workers that disagree, as the screen shows them (no widgets, no I/O).

A recording of several workers tells the screen where a worker disagrees with the others: live,
the recorder's ``divergence`` records (PROTOCOL.md §3); from a log, the same rule applied to its
worker hashes (:func:`devtools.workers.disagreements`). Each becomes a :class:`WorkerAlert`; the
header and a notification say ``worker 3 disagrees at v=6``, and for that event the State tab
shows both workers' states and the Cause tab the diff between them (:func:`worker_states`),
from the states the recorder asked both for when it saw the disagreement.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from devtools.model import Worker, WorkerSnapshot
from devtools.workers import Disagreement

__all__ = ["WorkerAlert", "WorkerStates", "worker_states"]


@dataclass(frozen=True, slots=True)
class WorkerAlert:
    """Worker ``worker`` disagrees with ``reference`` from ``v`` on."""

    v: int
    worker: int
    worker_label: str
    reference: int | None = None
    reference_label: str | None = None
    differs: str = "hash"
    """``hash`` (its state) or ``event`` (its event object for ``v``)."""
    hashes: dict[int, str | None] = field(default_factory=dict)

    @property
    def headline(self) -> str:
        """``worker 3 disagrees at v=6``."""
        return f"worker {self.worker} disagrees at v={self.v}"

    def describe(self) -> str:
        what = "event object" if self.differs == "event" else "state"
        other = f" with {self.reference_label}" if self.reference_label else ""
        return f"{self.worker_label} disagrees{other} at v={self.v} ({what})"

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> WorkerAlert | None:
        """A live ``divergence`` record (``None`` when malformed)."""
        worker, reference = record.get("worker"), record.get("reference")
        v = record.get("v")
        if not isinstance(v, int) or not isinstance(worker, dict):
            return None
        index = worker.get("index")
        if not isinstance(index, int):
            return None
        ref = reference if isinstance(reference, dict) else None
        hashes = record.get("hashes") if isinstance(record.get("hashes"), dict) else {}
        return cls(
            v=v,
            worker=index,
            worker_label=_label(worker),
            reference=ref.get("index") if ref is not None else None,
            reference_label=_label(ref) if ref is not None else None,
            differs=str(record.get("differs") or "hash"),
            hashes={int(k): h for k, h in hashes.items() if str(k).isdigit()},
        )

    @classmethod
    def from_disagreement(cls, found: Disagreement, workers: dict[int, Worker]) -> WorkerAlert:
        worker = workers.get(found.worker) or Worker(found.worker)
        reference = None if found.reference is None else workers.get(found.reference)
        return cls(
            v=found.v,
            worker=found.worker,
            worker_label=worker.describe(),
            reference=found.reference,
            reference_label=None if reference is None else reference.describe(),
            differs=found.kind,
            hashes=dict(found.hashes),
        )


def _label(worker: dict[str, Any]) -> str:
    def text(name: str) -> str | None:
        value = worker.get(name)
        return None if value is None else str(value)

    index = worker.get("index")
    return Worker(
        index if isinstance(index, int) else 0, None, text("id"), text("name"), text("version")
    ).describe()


def alerts_of(found: Iterable[Disagreement], workers: Sequence[Worker]) -> list[WorkerAlert]:
    """A log's disagreements as alerts."""
    by_index = {w.index: w for w in workers}
    return [WorkerAlert.from_disagreement(d, by_index) for d in found]


@dataclass(frozen=True, slots=True)
class WorkerStates:
    """What the State and Cause tabs show for an event where workers disagree."""

    alerts: tuple[WorkerAlert, ...]
    states: dict[str, Any]
    """Each side's state, under ``"worker 1 (…) after v=6"``."""
    title: str
    patch: list[dict[str, Any]] | None
    """Reference → disagreeing worker (``None``: the two states are not at one ``v``)."""
    note: str


def worker_states(
    alerts: Sequence[WorkerAlert], snapshots: Sequence[WorkerSnapshot]
) -> WorkerStates | None:
    """Both sides' states at the first alert of an event, and their diff."""
    if not alerts:
        return None
    from replayer.diff import diff

    alert = alerts[0]

    def first(worker: int | None) -> WorkerSnapshot | None:
        return next((s for s in snapshots if s.worker == worker and s.v >= alert.v), None)

    states: dict[str, Any] = {}
    sides = ((alert.reference, alert.reference_label), (alert.worker, alert.worker_label))
    found = [(label or f"worker {index}", first(index)) for index, label in sides]
    for label, snap in found:
        if snap is not None:
            states[f"{label} after v={snap.v}"] = snap.state
    (_, ref_snap), (_, own) = found
    patch = None
    if ref_snap is not None and own is not None and ref_snap.v == own.v:
        patch = diff(ref_snap.state, own.state, with_old=True)
        note = f"both states after v={own.v}, asked for when the disagreement was seen"
    elif ref_snap is None or own is None:
        note = "the workers' states have not arrived (or were not recorded)"
    else:
        note = f"the states are after v={ref_snap.v} and v={own.v}: not the same point, so no diff"
    title = "; ".join(a.describe() for a in alerts)
    return WorkerStates(tuple(alerts), states, title, patch, note)
