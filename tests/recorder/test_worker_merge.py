"""The merge of several workers' reports, without sockets: what it stores, fills and says."""

from __future__ import annotations

from devtools.model import Event, WorkerHash
from recorder.session import Session
from recorder.workers import WorkerMerge
from recorder.writer import EventFill
from tests.recorder.conftest import settings_for


def merged(*, bus: bool = False, workers: int = 2) -> tuple[WorkerMerge, list, list]:
    """A merge of ``workers`` channels, the records it made, and each channel's reports."""
    records: list = []
    session = Session(settings_for(1, "unused"), records.append)
    merge = WorkerMerge(session, bus=bus)
    reports = [merge.add(f"ws://10.0.0.{i + 1}:9000/devtools") for i in range(workers)]
    return merge, records, reports


def event(v: int, **extra) -> dict:
    return {"type": "counter/added", "by": v, "v": v, **extra}


def of(records: list, kind: type) -> list:
    return [r for r in records if type(r) is kind]


def test_the_first_report_is_stored_and_worker_1_s_hash_filled_in_after():
    merge, records, (one, two) = merged()
    two.event(1, event(1), None, "h1")  # worker 2 is first: its copy is stored …
    one.event(1, event(1), None, "h1")  # … worker 1's hash completes it
    (stored,) = of(records, Event)
    assert (stored.v, stored.hash) == (1, None)
    (fill,) = of(records, EventFill)
    assert (fill.v, fill.hash) == (1, "h1")
    assert [(h.worker, h.v) for h in of(records, WorkerHash)] == [(2, 1), (1, 1)]
    assert merge.divergences == []


def test_with_a_bus_the_stream_is_the_log_even_when_the_links_joined_later():
    """Regression: a link joined at v=2 made the merge take v 1..2 as already stored, and the
    bus's first events were dropped."""
    merge, records, (one, two) = merged(bus=True)
    one.snapshot(2, {"count": 3}, "h2", join=True)
    two.snapshot(2, {"count": 3}, "h2", join=True)
    one.event(3, event(3), None, "h3")  # the links are ahead of the bus: their reports wait
    two.event(3, event(3), None, "x3")
    assert of(records, Event) == []
    for v in (1, 2, 3):
        merge.bus_event(v, event(v), None)
    assert [e.v for e in of(records, Event)] == [1, 2, 3]
    assert of(records, Event)[2].hash == "h3"  # worker 1's, known when the bus delivered v=3
    (divergence,) = merge.divergences
    assert (divergence.v, divergence.worker.index, divergence.reference.index) == (3, 2, 1)


def test_a_different_event_object_is_kept_beside_the_worker_s_hash():
    merge, records, reports = merged(workers=3)
    for r in reports:
        r.snapshot(0, {}, "h0", join=True)
    reports[0].event(1, event(1), None, "h1")
    reports[1].event(1, event(1, extra=True), None, "h1")
    reports[2].event(1, event(1), None, "h1")
    differing = [h for h in of(records, WorkerHash) if h.event is not None]
    assert [(h.worker, h.event["extra"]) for h in differing] == [(2, True)]
    (divergence,) = merge.divergences
    assert divergence.disagreement.kind == "event" and divergence.worker.index == 2
