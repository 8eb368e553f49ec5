"""The verify planner without processes: hand-built worker results in, requests and findings out.

Playbook style (mitmproxy's layer tests): each test plays the rounds a real verify would, with
the results a worker would send, and asserts on the requests the planner asks for next and on
the findings it concludes.
"""

from __future__ import annotations

import pytest

from devtools.errors import ReducerLoadError
from replayer.verify_messages import (
    Call,
    Crash,
    HashPoint,
    Mutation,
    MutationExact,
    RecordedMismatch,
    ReducerException,
    RunConfig,
    RunRequest,
    RunResult,
    SnapshotMismatch,
    StateProblem,
    Unserializable,
    WorkerError,
)
from replayer.verify_plan import VerifyPlanner

K = 10
FRESH = RunConfig(1, 0, "SEED=1")
WARM = RunConfig(2, K, "SEED=2")
EVENTS = {v: {"type": f"t{v}", "v": v} for v in range(1, 61)}


def planner(*runs: RunConfig) -> VerifyPlanner:
    return VerifyPlanner(
        runs or (FRESH, WARM), checkpoint_every=K, log="x.rdtlog", event_at=EVENTS.get
    )


def hashes(vs, *, differ_from: int | None = None, tag: str = "x") -> tuple[HashPoint, ...]:
    """``h<v>`` at each v; from ``differ_from`` on ``<tag><v>`` instead."""
    return tuple(
        HashPoint(v, f"{tag}{v}" if differ_from is not None and v >= differ_from else f"h{v}")
        for v in vs
    )


def full(**parts) -> RunResult:
    """A whole-log result: 60 events, checkpoints every K."""
    parts.setdefault("checkpoints", hashes(range(0, 61, K)))
    return RunResult(start_v=0, last_v=60, **parts)


def window(lo: int, hi: int, *, differ_from: int | None = None, states=None, **parts) -> RunResult:
    """A localising result: checkpoints up to ``hi``, per-event hashes in ``lo < v <= hi``."""
    return RunResult(
        start_v=0,
        last_v=60,
        checkpoints=hashes([*range(0, hi, K), hi], differ_from=differ_from),
        event_hashes=hashes(range(lo + 1, hi + 1), differ_from=differ_from),
        states=states or {},
        **parts,
    )


def kinds(result) -> dict[str, list]:
    out: dict[str, list] = {}
    for f in result.findings:
        out.setdefault(f.kind, []).append(f)
    return out


def test_a_clean_run_is_one_round_and_no_findings():
    plan = planner()
    first = plan.start()
    assert first == [
        RunRequest(run=FRESH, checkpoint_every=K, compare_recorded=True),
        RunRequest(run=WARM, checkpoint_every=K, compare_recorded=False),
    ]
    assert plan.feed([full(), full()]) == []
    result = plan.result()
    assert result.ok and result.first_divergent_v is None and result.headline is None
    assert result.info == {
        "events": 60,
        "runs": 2,
        "seeds": ["1", "2"],
        "labels": ["SEED=1", "SEED=2"],
        "checkpoint_every": K,
    }


def test_a_cross_run_divergence_is_localised_and_its_cause_told_apart():
    """Round 1: the warmed-up run differs from checkpoint 20; round 2 reruns (10, 20] for the
    reference, the warmed-up run and a fresh run with its seed: only the warmed-up run differs,
    from v=14, so the cause is hidden state."""
    plan = planner()
    plan.start()
    second = plan.feed([full(), full(checkpoints=hashes(range(0, 61, K), differ_from=20))])
    assert [r.run for r in second] == [FRESH, WARM, WARM.fresh()]
    assert all(r.hash_ranges == ((10, 20),) and r.stop_at == 20 for r in second)
    assert all(r.window_states and not r.compare_recorded for r in second)

    states = {14: {"n": 14}}
    third = plan.feed(
        [
            window(10, 20, states=states),
            window(10, 20, differ_from=14, states={14: {"n": 14, "stale": True}}),
            window(10, 20, states=states),
        ]
    )
    assert third == []  # the window was short: its states came along
    result = plan.result()
    (found,) = result.findings
    assert (found.kind, found.v, found.extra["cause"]) == ("hash-divergence", 14, "hidden-state")
    assert found.event == EVENTS[14]
    assert found.diff == [{"op": "add", "path": "/stale", "value": True}]
    assert "the run warmed up on 10 events with SEED=2" in found.detail
    assert result.first_divergent_v == 14 and result.decided_by == "hash-divergence: hidden-state"


def test_different_seeds_are_a_hash_seed_cause_and_missing_states_take_a_third_round():
    plan = planner()
    plan.start()
    plan.feed([full(), full(checkpoints=hashes(range(0, 61, K), differ_from=20))])
    # both runs with seed 2 differ from the reference at 17, and agree with each other
    third = plan.feed(
        [
            window(10, 20),
            window(10, 20, differ_from=17),
            window(10, 20, differ_from=17),
        ]
    )
    assert [(r.run, r.keep_states, r.stop_at) for r in third] == [
        (FRESH, (17,), 17),
        (WARM.fresh(), (17,), 17),
    ]
    assert (
        plan.feed(
            [
                RunResult(states={17: {"tags": ["a", "b"]}}),
                RunResult(states={17: {"tags": ["b", "a"]}}),
            ]
        )
        == []
    )
    (found,) = plan.result().findings
    assert (found.v, found.extra["cause"], found.extra["seeds"]) == (17, "hash-seed", [1, 2])
    assert found.extra["diff_label"] == "diff (SEED=1 → SEED=2)"
    assert found.diff


def test_an_unreproduced_divergence_reports_the_checkpoint_window():
    plan = planner()
    plan.start()
    plan.feed([full(), full(checkpoints=hashes(range(0, 61, K), differ_from=30))])
    assert plan.feed([window(20, 30), window(20, 30), window(20, 30)]) == []
    (found,) = plan.result().findings
    assert found.v == 30 and "cause" not in found.extra
    assert "v=21..30" in found.detail


def test_a_recorded_hash_window_is_pinned_from_the_recorded_hashes_the_worker_sends():
    plan = planner()
    plan.start()
    second = plan.feed([full(recorded_hash=RecordedMismatch(20, 30)), full()])
    assert second == [
        RunRequest(
            run=FRESH,
            checkpoint_every=K,
            hash_ranges=((20, 30),),
            stop_at=30,
            window_states=True,
            recorded_between=(20, 30),
        )
    ]
    # the server hashed every event; the replay first differs at 27
    recorded = tuple(HashPoint(v, f"h{v}" if v < 27 else f"r{v}") for v in range(21, 31))
    third = plan.feed([window(20, 30, recorded=recorded)])
    assert [(r.run, r.keep_states) for r in third] == [(FRESH, (26, 27))]
    plan.feed([RunResult(states={26: {"count": 3}, 27: {"count": 4}})])
    (found,) = plan.result().findings
    assert (found.kind, found.v, found.extra["window"], found.extra["exact"]) == (
        "recorded-hash",
        27,
        [26, 27],
        True,
    )
    # the old value rides beside the op, so the report can show 3 → 4
    assert found.diff == [{"op": "replace", "path": "/count", "value": 4, "from_value": 3}]


def test_sparse_recorded_hashes_give_a_window():
    plan = planner()
    plan.start()
    plan.feed([full(recorded_hash=RecordedMismatch(20, 30)), full()])
    recorded = (HashPoint(25, "h25"), HashPoint(30, "r30"))
    plan.feed([window(20, 30, recorded=recorded)])
    plan.feed([RunResult()])
    (found,) = plan.result().findings
    assert found.v == 30 and found.extra["window"] == [25, 30] and not found.extra["exact"]


def test_the_headline_is_the_recorded_truth_not_an_earlier_between_run_divergence():
    plan = planner()
    plan.start()
    second = plan.feed(
        [
            full(recorded_hash=RecordedMismatch(40, 50)),
            full(checkpoints=hashes(range(0, 61, K), differ_from=40)),
        ]
    )
    assert [r.run for r in second] == [FRESH, WARM, WARM.fresh()]
    recorded = tuple(HashPoint(v, f"h{v}" if v < 50 else "r50") for v in range(41, 51))
    ref = RunResult(
        checkpoints=hashes([0, 10, 20, 30, 40, 50]),
        event_hashes=hashes([*range(31, 41), *range(41, 51)]),
        recorded=recorded,
    )
    requests = plan.feed([ref, window(30, 40, differ_from=39), window(30, 40)])
    while requests:  # the states round: nothing to add
        requests = plan.feed([RunResult() for _ in requests])
    result = plan.result()
    assert [(f.kind, f.v) for f in result.findings] == [
        ("hash-divergence", 39),
        ("recorded-hash", 50),
    ]
    assert result.first_divergent_v == 50 and result.decided_by == "recorded-hash"


def test_a_recorded_snapshot_mismatch_decides_the_headline():
    plan = planner()
    plan.start()
    snap = SnapshotMismatch(
        v=40, diff=[{"op": "replace", "path": "/count", "value": 1}], last_match=30
    )
    assert plan.feed([full(recorded_snapshot=snap), full(calls=(_call(12),))]) == []
    result = plan.result()
    assert [f.kind for f in result.findings] == ["nondeterministic-call", "recorded-snapshot"]
    assert result.first_divergent_v == 40
    assert "v=31..40" in result.findings[1].detail


def test_a_mutation_is_pinned_by_a_per_event_scan():
    plan = planner()
    plan.start()
    second = plan.feed([full(), full(mutation=Mutation(20, "checkpoint", (10, 20)))])
    assert [(r.run, r.mutation_scan_to, r.stop_at) for r in second] == [(WARM, 20, 20)]
    patch = [{"op": "add", "path": "/items/a/tags/-", "value": "x"}]
    assert plan.feed([RunResult(mutation_exact=MutationExact(13, "/items/a/tags", patch))]) == []
    (found,) = plan.result().findings
    assert (found.kind, found.v, found.extra["path"], found.diff) == (
        "mutation",
        13,
        "/items/a/tags",
        patch,
    )


def test_an_unserializable_state_is_pinned_in_its_window():
    plan = planner()
    plan.start()
    bad = Unserializable(40, "/removed", "a set is not JSON", (30, 40))
    second = plan.feed([full(unserializable=bad), full()])
    assert [(r.run, r.hash_ranges) for r in second] == [(FRESH, ((30, 40),))]
    points = (HashPoint(35, "h35"), HashPoint(36, None, StateProblem("/removed", "a set")))
    plan.feed([RunResult(event_hashes=points)])
    (found,) = plan.result().findings
    assert (found.kind, found.v, found.extra["path"]) == ("unserializable", 36, "/removed")


def test_a_crash_is_a_finding_without_a_v():
    plan = planner()
    plan.start()
    assert plan.feed([full(), RunResult(crash=Crash(7, "Killed"))]) == []
    result = plan.result()
    (found,) = result.findings
    assert found.kind == "exception" and found.v is None
    assert "the run warmed up on 10 events with SEED=2 died (exit 7)" in found.detail
    assert not result.ok and result.first_divergent_v is None


def test_an_exception_is_a_finding_at_its_v_with_the_event():
    plan = planner()
    plan.start()
    exc = ReducerException(12, "Traceback (most recent call last):\nKeyError: 'sku'\n")
    assert plan.feed([full(exception=exc), full(exception=exc)]) == []
    (found,) = plan.result().findings
    assert (found.kind, found.v, found.event) == ("exception", 12, EVENTS[12])
    assert found.detail.endswith("KeyError: 'sku'")


def _call(v: int, line: int = 14) -> Call:
    return Call(name="time.time", file="/r/clock.py", line=line, function="reducer", v=v, count=2)


def test_a_nondeterministic_call_is_reported_once_per_site_at_its_first_v():
    plan = planner()
    plan.start()
    assert plan.feed([full(calls=(_call(25),)), full(calls=(_call(23), _call(40, line=20)))]) == []
    result = plan.result()
    assert [(f.kind, f.v, f.extra["call"]["line"]) for f in result.findings] == [
        ("nondeterministic-call", 23, 14),
        ("nondeterministic-call", 40, 20),
    ]
    assert "time.time() called at /r/clock.py:14 in reducer() (2 times" in result.findings[0].detail


def test_a_worker_that_cannot_import_the_reducer_is_bad_input():
    plan = planner()
    plan.start()
    with pytest.raises(ReducerLoadError, match="no module"):
        plan.feed([RunResult(error=WorkerError("reducer", "no module x")), full()])


def test_requests_and_results_survive_the_pipe():
    request = RunRequest(
        run=WARM,
        hash_ranges=((1, 5),),
        keep_states=(3,),
        mutation_scan_to=4,
        stop_at=5,
        window_states=True,
        recorded_between=(1, 5),
    )
    assert RunRequest.from_json(request.to_json()) == request
    result = full(
        event_hashes=(HashPoint(3, None, StateProblem("/a", "nan")),),
        states={3: {"a": 1}},
        recorded=(HashPoint(4, "h4"),),
        recorded_hash=RecordedMismatch(None, 4),
        recorded_snapshot=SnapshotMismatch(4, [], "sha256:x", None),
        unserializable=Unserializable(3, "/a", "nan", (0, 3)),
        mutation=Mutation(3, "shallow", (2, 3)),
        mutation_exact=MutationExact(3, "", None),
        calls=(_call(3),),
        exception=ReducerException(5, "tb"),
    )
    doc = result.to_json()
    assert list(doc["states"]) == ["3"]  # int keys become strings only in the JSON
    assert RunResult.from_json(doc) == result


# --------------------------------------------------------------------------- several workers


def worker_evidence(v=25, *, kind="hash", event=None):
    from devtools.model import Worker, WorkerSnapshot
    from devtools.workers import Disagreement
    from replayer.verify_plan import WorkerEvidence

    workers = (Worker(1, None, "w-a", "orders", "1.0"), Worker(2, None, "w-b", "orders", "2.0"))
    return WorkerEvidence(
        disagreement=Disagreement(v, 2, 1, kind, {1: f"h{v}", 2: "bad"}, event),
        workers=workers,
        snapshot=WorkerSnapshot(2, v + 2, {"total": -1}),
        reference_snapshot=WorkerSnapshot(1, v + 2, {"total": 0}),
        event={"type": "t", "v": v},
    )


def test_workers_ask_the_reference_for_its_hash_at_the_v_and_its_state_at_the_snapshot():
    plan = VerifyPlanner((FRESH, WARM), checkpoint_every=K, workers=[worker_evidence()])
    ref, other = plan.start()
    assert ref.hash_ranges == ((24, 25),) and ref.keep_states == (27,)
    assert other == RunRequest(run=WARM, checkpoint_every=K)


def test_a_worker_divergence_names_the_workers_the_replay_s_side_and_diffs_at_the_snapshot():
    plan = VerifyPlanner(
        (FRESH, WARM), checkpoint_every=K, event_at=EVENTS.get, workers=[worker_evidence()]
    )
    plan.start()
    ref = full(event_hashes=hashes([24, 25]), states={27: {"total": 0}})
    assert plan.feed([ref, full()]) == []
    result = plan.result()
    (finding,) = result.findings
    assert result.first_divergent_v == 25 and result.decided_by == "worker-divergence"
    assert finding.kind == "worker-divergence" and finding.event == EVENTS[25]
    assert finding.extra["replay_agrees_with"] == [1]
    assert (finding.extra["worker"]["version"], finding.extra["reference"]["id"]) == ("2.0", "w-a")
    assert finding.diff == [{"op": "replace", "path": "/total", "value": -1, "from_value": 0}]
    assert finding.extra["snapshot_v"] == 27 and "both after v=27" in finding.detail


def test_when_the_replay_sides_with_the_drifted_worker_the_diff_is_against_the_other():
    ev = worker_evidence()
    plan = VerifyPlanner((FRESH,), checkpoint_every=K, workers=[ev])
    plan.start()
    replayed = (HashPoint(24, "h24"), HashPoint(25, "bad"))
    plan.feed([full(event_hashes=replayed, states={27: {"total": -1}})])
    (finding,) = plan.result().findings
    assert finding.extra["replay_agrees_with"] == [2]
    assert finding.diff == [{"op": "replace", "path": "/total", "value": 0, "from_value": -1}]


def test_the_workers_disagreement_wins_the_headline_over_a_recorded_hash_at_the_same_v():
    plan = VerifyPlanner((FRESH,), checkpoint_every=K, workers=[worker_evidence(20)])
    plan.start()
    replayed = (HashPoint(19, "h19"), HashPoint(20, "x20"))  # neither worker's hash
    plan.feed([full(recorded_hash=RecordedMismatch(10, 20), event_hashes=replayed)])
    recorded = tuple(HashPoint(v, f"h{v}" if v < 20 else f"r{v}") for v in range(11, 21))
    plan.feed([window(10, 20, recorded=recorded)])
    plan.feed([RunResult(states={19: {"count": 3}, 20: {"count": 4}})])
    result = plan.result()
    assert {f.kind: f.v for f in result.findings} == {"recorded-hash": 20, "worker-divergence": 20}
    assert result.decided_by == "worker-divergence" and result.first_divergent_v == 20
    (workers,) = [f for f in result.findings if f.kind == "worker-divergence"]
    assert workers.extra["replay_agrees_with"] == [] and "agrees with none" in workers.detail


def test_another_event_object_is_diffed_against_the_stored_one():
    ev = worker_evidence(5, kind="event", event={"type": "t", "v": 5, "extra": 1})
    plan = VerifyPlanner((FRESH,), checkpoint_every=K, workers=[ev])
    plan.start()
    plan.feed([full()])
    (finding,) = plan.result().findings
    assert finding.extra["differs"] == "event"
    assert finding.diff == [{"op": "add", "path": "/extra", "value": 1}]
