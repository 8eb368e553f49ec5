"""The rule of which worker disagrees, live (Tally) and from a log (disagreements), without I/O."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from devtools.model import WorkerHash
from devtools.workers import Tally, decide, disagreements


def test_the_largest_group_agrees_and_a_tie_goes_to_the_lowest_worker():
    assert decide({1: "a", 2: "a", 3: "b"}) == ([1, 2], [3])
    assert decide({1: "b", 2: "a", 3: "a"}) == ([2, 3], [1])
    assert decide({1: "a", 2: "b"}) == ([1], [2])
    assert decide({2: "b", 3: "a"}) == ([2], [3])
    assert decide({1: None, 2: "a"}) == ([2], [])
    assert decide({}) == ([], [])


def test_a_drifted_worker_is_named_once_at_its_first_differing_v():
    tally = Tally()
    for w in (1, 2, 3):
        assert tally.join(w, 0) == []
    found = []
    for v in range(1, 8):
        for w in (1, 2, 3):
            found += tally.report(w, v, "bad" + str(v) if w == 3 and v >= 5 else f"h{v}")
    assert [(d.v, d.worker, d.reference, d.kind) for d in found] == [(5, 3, 1, "hash")]
    assert found[0].hashes == {1: "h5", 2: "h5", 3: "bad5"}


def test_a_v_is_decided_only_once_every_expected_worker_reported_it():
    tally = Tally()
    tally.join(1, 0)
    tally.join(2, 0)
    assert tally.report(1, 1, "a") == []  # worker 2 has not reported v=1 yet
    assert tally.report(1, 2, "a2") == []
    (found,) = tally.report(2, 1, "b")
    assert (found.v, found.worker) == (1, 2)


def test_a_worker_that_left_is_not_waited_for_and_a_late_joiner_is_compared():
    tally = Tally()
    tally.join(1, 0)
    tally.join(2, 0)
    assert tally.report(1, 1, "a") == []
    assert tally.leave(2) == []  # v=1 decided with worker 1 alone
    tally.join(3, 1)  # joins after v=1: its join hash at v=1 is a late report
    (found,) = tally.report(3, 1, "z")
    assert (found.v, found.worker, found.reference) == (1, 3, 1)
    assert tally.report(3, 2, "z2") == []  # named once


def test_a_different_event_object_is_a_disagreement_whatever_the_hash():
    tally = Tally()
    tally.join(1, 0)
    tally.join(2, 0)
    tally.report(1, 1, "a")
    (found,) = tally.report(2, 1, "a", event={"type": "other"})
    assert (found.kind, found.worker, found.reference, found.event) == (
        "event",
        2,
        1,
        {"type": "other"},
    )


def test_events_sent_without_a_hash_take_no_side():
    tally = Tally()
    tally.join(1, 0)
    tally.join(2, 0)
    assert tally.report(1, 1, None) == [] and tally.report(2, 1, None) == []
    assert tally.finish() == []


def test_finish_decides_what_still_waits():
    tally = Tally()
    tally.join(1, 0)
    tally.join(2, 0)
    tally.join(3, 0)
    tally.report(1, 1, "a")
    tally.report(3, 1, "b")
    (found,) = tally.finish()  # worker 2 never reported: a tie, the lowest worker wins
    assert (found.v, found.worker) == (1, 3)


reports = st.lists(
    st.tuples(st.integers(1, 4), st.sampled_from(["a", "b", None])), min_size=1, max_size=12
)


def worker_rows(per_v: list[list[tuple[int, str | None]]]) -> list[WorkerHash]:
    """The log's rows of drawn reports: for each ``v``, each worker's first report."""
    rows = []
    for v, group in enumerate(per_v, start=1):
        seen: dict[int, str | None] = {}
        for worker, digest in group:
            seen.setdefault(worker, digest)
        rows += [WorkerHash(w, v, h) for w, h in sorted(seen.items())]
    return rows


@given(st.lists(reports, min_size=1, max_size=8))
def test_live_and_from_the_log_name_the_same_workers_at_the_same_v(per_v):
    """The tally (every worker joined at 0, reports in v order) and the log's rule agree."""
    rows = worker_rows(per_v)
    tally = Tally()
    workers = sorted({r.worker for r in rows})
    for w in workers:
        tally.join(w, 0)
    live = []
    for row in rows:
        live += tally.report(row.worker, row.v, row.hash)
    live += tally.finish()
    logged = disagreements(rows)
    assert [(d.v, d.worker, d.reference) for d in live] == [
        (d.v, d.worker, d.reference) for d in logged
    ]


@given(st.lists(reports, min_size=1, max_size=8), st.data())
def test_workers_reporting_at_their_own_pace_are_judged_as_in_the_log(per_v, data):
    """Each worker's reports come in its own ``v`` order, the workers' interleaved anyhow (one
    far behind the others): the tally still names what the log's rule names."""
    rows = worker_rows(per_v)
    queues = {w: [r for r in rows if r.worker == w] for w in sorted({r.worker for r in rows})}
    tally = Tally()
    for w in queues:
        tally.join(w, 0)
    live = []
    while any(queues.values()):
        worker = data.draw(st.sampled_from([w for w, q in queues.items() if q]))
        row = queues[worker].pop(0)
        live += tally.report(row.worker, row.v, row.hash)
    live += tally.finish()
    assert [(d.v, d.worker, d.reference) for d in live] == [
        (d.v, d.worker, d.reference) for d in disagreements(rows)
    ]


def test_a_worker_thousands_of_events_behind_is_named_at_its_first_differing_v():
    tally = Tally()
    for w in (1, 2, 3):
        tally.join(w, 0)
    for v in range(1, 20_001):  # workers 1 and 2 run ahead: every v waits for worker 3
        assert tally.report(1, v, f"h{v}") == [] and tally.report(2, v, f"h{v}") == []
    found = []
    for v in range(1, 20_001):
        found += tally.report(3, v, f"h{v}" if v < 12_345 else "drift")
    assert [(d.v, d.worker, d.reference) for d in found] == [(12_345, 3, 1)]
    assert tally.finish() == []
