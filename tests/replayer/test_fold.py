"""The one fold: the start-state rule, @@INIT, fold, first-where and what-if (pure, no log)."""

from __future__ import annotations

import pytest

from devtools.model import Snapshot
from replayer import fold
from replayer.errors import ReplayError
from replayer.fold import PyReducer
from replayer.runtimes import load_runtime
from tests.factories import counter_events, counter_reducer


def _events(n: int, start: int = 1) -> list[tuple[int, dict]]:
    return [(e.v, e.event) for e in counter_events(n, start=start)]


def _raises_at(v_bad: int):
    def reducer(state, event):
        if event.get("v") == v_bad:
            raise ValueError(f"boom at {v_bad}")
        return counter_reducer(state, event)

    return reducer


class _Source:
    def __init__(self, kind: str, first_v: int | None) -> None:
        self.kind, self.first_v = kind, first_v


class _Reader:
    def __init__(self, snapshot: Snapshot | None) -> None:
        self.snapshot = snapshot

    def snapshot_at_or_before(self, v: int) -> Snapshot | None:
        return self.snapshot if self.snapshot is not None and self.snapshot.v <= v else None


def test_init_event_is_fresh_each_time() -> None:
    first = fold.init_event()
    first["extra"] = 1
    assert fold.init_event() == {"type": "@@INIT"}


def test_start_is_the_snapshot_at_the_first_event_for_server_events_only() -> None:
    snap = Snapshot(10, {"count": 100})
    reader = _Reader(snap)
    assert fold.start_snapshot(reader, _Source("events", 11)) is snap
    assert fold.start_snapshot(reader, _Source("messages", 1)) is None
    assert fold.start_snapshot(reader, _Source("events", None)) is None
    begin = fold.start(PyReducer(counter_reducer), snap)
    assert (begin.v, begin.state, begin.snapshot) == (10, {"count": 100}, True)
    assert begin.state is not snap.state  # a copy: a reducer may not change the recorded one


def test_start_without_a_snapshot_asks_the_reducer_for_its_initial_state() -> None:
    begin = fold.start(PyReducer(counter_reducer))
    assert (begin.v, begin.state, begin.snapshot) == (
        0,
        counter_reducer(None, {"type": "@@INIT"}),
        False,
    )


def test_a_reducer_that_raises_on_init_is_a_replay_error_at_v0() -> None:
    def broken(state, event):
        raise KeyError("no initial state")

    with pytest.raises(ReplayError) as raised:
        fold.start(PyReducer(broken))
    assert raised.value.v == 0 and raised.value.event == {"type": "@@INIT"}
    assert "broken" in raised.value.traceback


def test_fold_applies_every_event_and_names_the_last_v() -> None:
    last, state = fold.fold(PyReducer(counter_reducer), {"count": 0}, _events(4))
    assert last == 4 and state["count"] == 1 + 2 + 3 + 4
    assert fold.fold(PyReducer(counter_reducer), {"count": 5}, []) == (None, {"count": 5})


def test_fold_wraps_the_reducers_error_with_v_event_and_its_own_traceback() -> None:
    with pytest.raises(ReplayError) as raised:
        fold.fold(PyReducer(_raises_at(3)), {"count": 0}, _events(5))
    assert raised.value.v == 3 and raised.value.event["v"] == 3
    assert "boom at 3" in str(raised.value) and "replayer/fold.py" not in raised.value.traceback


def test_first_where_returns_the_states_around_the_first_hit() -> None:
    hit = fold.first_where(
        PyReducer(counter_reducer), {"count": 0}, _events(10), lambda s, e, v: s["count"] >= 10
    )
    assert hit is not None
    assert (hit.v, hit.before["count"], hit.after["count"], hit.reductions) == (4, 6, 10, 4)
    assert (
        fold.first_where(PyReducer(counter_reducer), {"count": 0}, _events(3), lambda *a: False)
        is None
    )


def test_what_if_names_the_first_divergent_v_and_both_final_states() -> None:
    t = fold.what_if(PyReducer(counter_reducer), {"count": 0}, _events(5), [2])
    assert t.first_divergent_v == 2
    assert t.original["count"] == 15 and t.alternative["count"] == 13
    short = fold.what_if(
        PyReducer(counter_reducer), {"count": 0}, _events(5), [2], original_to_end=False
    )
    assert short.original is None and short.alternative == t.alternative


def test_what_if_that_changes_nothing_has_no_divergence() -> None:
    def ignores_odd(state, event):
        return state if event.get("v", 0) % 2 else counter_reducer(state, event)

    t = fold.what_if(PyReducer(ignores_odd), {"count": 0}, _events(5), [3])
    assert t.first_divergent_v is None and t.original == t.alternative


def test_load_runtime_takes_a_reference_a_callable_or_a_runtime() -> None:
    runtime = load_runtime("tests.factories:counter_reducer")
    assert runtime.language == "python" and runtime.ref == "tests.factories:counter_reducer"
    assert load_runtime(counter_reducer).ref is None
    assert load_runtime(runtime) is runtime
