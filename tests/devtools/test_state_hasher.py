"""The incremental state hasher gives state_hash's answer for every state of a sequence that
shares structure, the same error for what JSON cannot carry, and notices a state changed in
place."""

from __future__ import annotations

import enum
import logging
import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools import state_hasher
from devtools.canonical import CanonicalError, state_hash
from devtools.state_hasher import StateHasher

FASTS = [
    pytest.param(False, id="python"),
    pytest.param(
        True,
        id="c",
        marks=pytest.mark.skipif(
            not state_hasher.FAST,
            reason="devtools/_statehash.c was not built (no C compiler at install)",
        ),
    ),
]
"""Both writing walks: the Python reference and the C one."""

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)
    | st.sampled_from(["\ue000", "\U0001f600", "é", "a\n\u2028"])
)
keys = st.text(max_size=4) | st.sampled_from(["\ue000", "\U0001f600", "a", "b"])
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=20,
)


@st.composite
def edits(draw: st.DrawFn) -> list[tuple[list[int], Any]]:
    """Where to put a new value (a path of child indexes, taken modulo) and the value."""
    out = []
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        path = draw(st.lists(st.integers(min_value=0, max_value=7), max_size=3))
        out.append((path, draw(json_values)))
    return out


def replaced(state: Any, path: list[int], new: Any) -> Any:
    """``state`` with the subtree at ``path`` replaced, copying only the containers on the way
    (as a pure reducer does); the rest stays the same objects."""
    if not path or not isinstance(state, dict | list) or not state:
        return new
    head, rest = path[0], path[1:]
    if isinstance(state, list):
        index = head % len(state)
        copy = list(state)
        copy[index] = replaced(state[index], rest, new)
        return copy
    key = list(state)[head % len(state)]
    return {**state, key: replaced(state[key], rest, new)}


@pytest.mark.parametrize("fast", FASTS)
@settings(max_examples=300, deadline=None)
@given(json_values, edits())
def test_every_state_of_a_sequence_hashes_as_state_hash_does(
    fast: bool, start: Any, changes
) -> None:
    hasher = StateHasher(fast=fast, check_every=0)
    state = start
    assert hasher.hash(state) == state_hash(state)
    for path, value in changes:
        state = replaced(state, path, value)
        assert hasher.hash(state) == state_hash(state)
    assert hasher.hash(start) == state_hash(start)  # an older state, from the cache


large = st.dictionaries(keys, json_values, min_size=14, max_size=24) | st.lists(
    json_values, min_size=14, max_size=24
)
"""Containers around the size from which the hasher writes them from their predecessor's pieces."""


@st.composite
def large_edits(draw: st.DrawFn) -> list[tuple[str, int, Any]]:
    """Replace, add or remove a child of one of the state's large containers."""
    out = []
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        out.append(
            (
                draw(st.sampled_from(["replace", "add", "remove", "same"])),
                draw(st.integers(min_value=0, max_value=40)),
                draw(json_values),
            )
        )
    return out


def edited(container: Any, how: str, at: int, new: Any) -> Any:
    if how == "same":  # a new object with the same children (a reducer's no-op copy)
        return list(container) if isinstance(container, list) else dict(container)
    if isinstance(container, list):
        copy = list(container)
        if how == "add":
            copy.insert(at % (len(copy) + 1), new)
        elif copy and how == "remove":
            del copy[at % len(copy)]
        elif copy:
            copy[at % len(copy)] = new
        return copy
    names = list(container)
    if how == "add" or not names:
        return {**container, f"k{at}": new}
    name = names[at % len(names)]
    if how == "remove":
        return {key: value for key, value in container.items() if key != name}
    return {**container, name: new}


@pytest.mark.parametrize("fast", FASTS)
@settings(max_examples=100, deadline=None)
@given(large, large, large_edits())
def test_large_containers_replaced_added_or_removed_hash_as_state_hash_does(
    fast: bool, top: Any, inner: Any, changes
) -> None:
    hasher = StateHasher(fast=fast, check_every=0)
    state = {"top": top, "nested": {"inner": inner, "n": 0}}
    assert hasher.hash(state) == state_hash(state)
    for step, (how, at, value) in enumerate(changes):
        if step % 2:
            state = {**state, "top": edited(state["top"], how, at, value)}
        else:
            nested = state["nested"]
            state = {
                **state,
                "nested": {**nested, "inner": edited(nested["inner"], how, at, value)},
            }
        assert hasher.hash(state) == state_hash(state)


@pytest.mark.parametrize("fast", FASTS)
def test_an_order_of_fifty_replaced_gives_the_whole_hash(fast: bool) -> None:
    state = {"count": 50, "orders": {f"o{i}": {"id": f"o{i}", "lines": {}} for i in range(50)}}
    hasher = StateHasher(fast=fast, check_every=0)
    for n in range(200):
        order = state["orders"][f"o{n % 50}"]
        line = {"sku": f"S{n}", "qty": n, "price": 1.5 * n}
        order = {**order, "lines": {**order["lines"], f"S{n}": line}}
        state = {**state, "orders": {**state["orders"], order["id"]: order}}
        assert hasher.hash(state) == state_hash(state)


class Color(enum.IntEnum):
    RED = 1


@pytest.mark.parametrize(
    "bad",
    [
        {"a": [1, {"b": float("nan")}]},
        {"a": {1: "x"}},
        {"a": {"b": (1, 2)}},
        {"a": ["\ud800"]},
        {"a": {"\ud800": 1}},
        {"a": {"b", "c"}},
    ],
)
@pytest.mark.parametrize("fast", FASTS)
def test_what_json_cannot_carry_is_the_same_error_as_state_hash_names(fast: bool, bad: Any) -> None:
    with pytest.raises(CanonicalError) as whole:
        state_hash(bad)
    with pytest.raises(CanonicalError) as incremental:
        StateHasher(fast=fast).hash(bad)
    assert str(incremental.value) == str(whole.value)


@pytest.mark.parametrize("fast", FASTS)
def test_subclasses_and_deep_nesting_hash_as_state_hash_does(fast: bool) -> None:
    deep: Any = "leaf"
    for _ in range(300):
        deep = {"d": deep}
    for state in ({"c": Color.RED, "s": [Color.RED]}, deep, {"big": 2**80, "f": 1e21}):
        assert StateHasher(fast=fast).hash(state) == state_hash(state)


@pytest.mark.parametrize("fast", FASTS)
def test_a_circular_state_is_the_same_error(fast: bool) -> None:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    with pytest.raises(CanonicalError, match="circular"):
        StateHasher(fast=fast).hash(loop)


@pytest.mark.parametrize("fast", FASTS)
def test_a_state_changed_in_place_is_noticed_and_hashed_whole_from_then_on(
    fast: bool, caplog
) -> None:
    hasher = StateHasher(fast=fast, check_every=4)
    state = {"orders": {"o1": {"total": 0}}, "n": 0}
    with caplog.at_level(logging.WARNING, logger="devtools.state_hasher"):
        for n in range(1, 4):
            state = {**state, "n": n}
            hasher.hash(state)
        state["orders"]["o1"]["total"] = 99  # in place: the cached bytes of o1 are stale now
        state = {**state, "n": 4}
        assert hasher.hash(state) == state_hash(state)  # the 4th: checked, and caught
    assert not hasher.incremental
    assert "changed in place" in caplog.text
    state["orders"]["o1"]["total"] = 100
    assert hasher.hash(state) == state_hash(state)


@pytest.mark.parametrize("fast", FASTS)
def test_the_cache_keeps_only_what_recent_states_can_reach(fast: bool) -> None:
    hasher = StateHasher(fast=fast, check_every=0)
    state: dict[str, Any] = {"items": {}}
    for n in range(20_000):
        state = {"items": {**state["items"], f"k{n % 100}": {"n": n}}}
        hasher.hash(state)
    # 100 items + their dict + the root are live; the sweep bound is max(4096, 2 × live)
    assert len(hasher._cache) <= 2 * 4096


@pytest.mark.parametrize("fast", FASTS)
def test_the_state_before_and_its_replaced_large_containers_are_let_go(fast: bool) -> None:
    """The cache would keep them (and their bytes) alive until a sweep, megabytes for a large
    state; the containers both states share stay (a state itself is never cached: it is new at
    every event)."""
    hasher = StateHasher(fast=fast, check_every=0)
    orders = {f"o{i}": {"id": f"o{i}", "total": i} for i in range(50)}
    before = {"orders": orders, "n": 0}
    hasher.hash(before)
    after = {"orders": {**orders, "o7": {"id": "o7", "total": -1}}, "n": 1}
    assert hasher.hash(after) == state_hash(after)
    cached = {id(entry[0]) for entry in hasher._cache.values()}
    assert id(before) not in cached and id(orders) not in cached
    assert id(after) not in cached and id(after["orders"]) in cached and id(orders["o1"]) in cached
    assert hasher.hash(before) == state_hash(before)  # it comes back: written again


@pytest.mark.skipif(
    not os.environ.get("RDT_REQUIRE_C_WALK"),
    reason="only where the C walk must have been built (.ci/run sets RDT_REQUIRE_C_WALK)",
)
def test_the_c_walk_was_built() -> None:
    """The extension is optional at install (no compiler, no failure): CI checks it was built."""
    assert state_hasher.FAST
