"""Per-event patches from the Node worker: the patched Python states are the states the worker
has (key order included), share what an event left alone, and a reducer that changes its input
in place is caught and answered whole from then on."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replayer.errors import ReplayError, StateNotJSON
from replayer.jsreducer import JsReducer
from replayer.patch import PatchError, apply_patch

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs node on PATH")

FIXTURES = Path(__file__).resolve().parent / "js_fixtures"
EDITOR = f"{FIXTURES / 'editor.mjs'}:editor"


# ---------------------------------------------------------------- apply_patch (pure)


def test_a_patch_copies_only_the_way_to_what_changed() -> None:
    state = {"a": {"x": 1, "y": [1, 2]}, "b": {"z": 0}, "c": [0]}
    after = apply_patch(
        state,
        [[["a", "x"], 2], [["a", "y", 2], 3], [["a", "w"], None], [["c", 0], "s"], [["b", "z"]]],
    )
    assert after == {"a": {"x": 2, "y": [1, 2, 3], "w": None}, "b": {}, "c": ["s"]}
    assert state == {"a": {"x": 1, "y": [1, 2]}, "b": {"z": 0}, "c": [0]}  # untouched
    untouched = apply_patch(state, [[["a", "x"], 5]])
    assert untouched["b"] is state["b"] and untouched["c"] is state["c"]
    assert untouched["a"]["y"] is state["a"]["y"]


def test_a_patch_writes_each_container_once_and_can_replace_the_whole_state() -> None:
    state = {"a": {"x": 1}}
    after = apply_patch(state, [[["a", "x"], 2], [["a", "y"], 3]])
    assert list(after["a"].items()) == [("x", 2), ("y", 3)]
    assert apply_patch(state, []) is state
    assert apply_patch(state, [[[], [1, 2]]]) == [1, 2]


@pytest.mark.parametrize(
    "ops",
    [[[["a", "x", "deep"], 1]], [[["missing", "x"], 1]], [[["a", "gone"]]], [[[]]]],
)
def test_a_patch_that_does_not_fit_is_a_patch_error(ops: list[Any]) -> None:
    with pytest.raises(PatchError):
        apply_patch({"a": {"x": 1}}, ops)


# ---------------------------------------------------------------- against the real worker


@pytest.fixture(scope="module")
def reducers() -> Iterator[tuple[JsReducer, JsReducer]]:
    patched, whole = JsReducer.load(EDITOR), JsReducer.load(EDITOR)
    whole.patches = False
    try:
        yield patched, whole
    finally:
        patched.worker.close()
        whole.worker.close()


KEYS = st.sampled_from(["a", "b", "c", "toString", "1", "20", "é"])
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=6,
)
EDITS = st.one_of(
    st.builds(lambda k, v: {"type": "set", "path": ["items", k], "value": v}, KEYS, VALUES),
    st.builds(lambda k, v: {"type": "set", "path": ["items", k, "x"], "value": v}, KEYS, VALUES),
    st.builds(lambda k: {"type": "delete", "path": ["items", k]}, KEYS),
    st.builds(lambda k: {"type": "undefine", "path": ["items", k]}, KEYS),
    st.builds(
        lambda k, v: {"type": "front", "path": ["items"], "key": k, "value": v}, KEYS, VALUES
    ),
    st.builds(lambda v: {"type": "push", "path": ["list"], "value": v}, VALUES),
    st.just({"type": "pop", "path": ["list"]}),
    st.builds(lambda v: {"type": "set", "path": ["n"], "value": v}, VALUES),
    st.builds(
        lambda items: {"type": "replace", "value": {"items": items, "list": [], "n": 0}},
        st.dictionaries(KEYS, VALUES, max_size=3),
    ),
)


def _walk(reducer: JsReducer, events: list[dict[str, Any]]) -> list[Any]:
    start = {"items": {"a": {"x": 0}, "b": 1}, "list": [1, {"k": []}], "n": 0}
    rows = [(v, event) for v, event in enumerate(events, 1)]
    return [after for _v, _event, after in reducer.steps(start, rows)]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(EDITS, min_size=1, max_size=12))
def test_patched_states_are_the_workers_states_key_order_included(reducers, events) -> None:
    patched, whole = reducers
    got = _walk(patched, events)
    want = _walk(whole, events)
    assert [orjson.dumps(s) for s in got] == [orjson.dumps(s) for s in want]
    assert patched.patches  # no false alarm: the editor never changes its input in place


def test_consecutive_states_share_what_the_event_left_alone(reducers) -> None:
    patched, _whole = reducers
    first, second = _walk(patched, [{"type": "push", "path": ["list"], "value": 1}] * 2)
    assert second["items"] is first["items"] and second["list"] is not first["list"]
    assert second["list"][1] is first["list"][1]


def test_a_reducer_changing_its_input_in_place_is_answered_whole_from_then_on(caplog) -> None:
    patched, whole = JsReducer.load(EDITOR), JsReducer.load(EDITOR)
    whole.patches = False
    try:
        events = [
            {"type": "set", "path": ["n"], "value": 1},
            {"type": "mutate", "path": ["items", "b"], "value": 99},
            {"type": "set", "path": ["n"], "value": 2},
        ]
        got = _walk(patched, events)
        assert [orjson.dumps(s) for s in got] == [orjson.dumps(s) for s in _walk(whole, events)]
        assert got[-1]["items"]["b"] == 99
        assert not patched.patches
        assert "changed a state in place" in caplog.text
    finally:
        patched.worker.close()
        whole.worker.close()


def test_a_throw_names_its_event(reducers) -> None:
    patched, _whole = reducers
    events = [{"type": "set", "path": ["n"], "value": 1}, {"type": "push", "path": ["n"]}]
    with pytest.raises(ReplayError) as thrown:
        _walk(patched, events)
    assert thrown.value.v == 2


@pytest.mark.parametrize("kind", ["nan", "inf", "undef-array", "undefined", "map", "cycle", "lone"])
def test_a_changed_part_that_is_not_json_is_named_as_a_whole_state_would_be(kind: str) -> None:
    messages = []
    for patches in (True, False):
        reducer = JsReducer.load(f"{FIXTURES / 'notjson.mjs'}:reducer")
        reducer.patches = patches
        try:
            with pytest.raises(StateNotJSON) as raised:
                list(reducer.steps(reducer.initial(), [(1, {"type": "x"}), (2, {"type": kind})]))
        finally:
            reducer.worker.close()
        messages.append(str(raised.value))
    assert messages[0] == messages[1]
    assert "v=2" in messages[0] or "event 2" in messages[0], messages[0]


def test_a_walk_left_inside_a_batch_does_not_name_an_earlier_state_the_workers() -> None:
    patched = JsReducer.load(EDITOR)
    try:
        start = {"items": {}, "list": [], "n": 0}
        rows = [(v, {"type": "set", "path": ["n"], "value": v}) for v in range(1, 6)]
        walk = patched.steps(start, rows)
        next(walk)
        second = next(walk)[2]
        walk.close()  # left after event 2 of a batch of 5: the worker is at n=5
        push = {"type": "push", "path": ["list"], "value": 7}
        (after,) = [s for _v, _e, s in patched.steps(second, [(6, push)])]
        assert after["n"] == 2 and after["list"] == [7]
        assert patched.patches  # no false "changed in place": the worker was set to `second`
    finally:
        patched.worker.close()
