"""The diff law: ``jsonpatch.apply_patch(a, diff(a, b)) == b``, type-strictly."""

from __future__ import annotations

import copy
import json

import jsonpatch
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replayer.diff import OLD, diff, equal, escape, pointer, split_pointer, without_old

KEYS = st.one_of(
    st.sampled_from(["a", "b", "a/b", "~", "~1", "/", "", "ü", "日本", "a~0b", "x y"]),
    st.text(max_size=6),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**63, max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, 1, 0.0, 1.0, True, False]),
    st.text(max_size=8),
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=6),
        st.dictionaries(KEYS, children, max_size=6),
    ),
    max_leaves=30,
)


def strict(value):
    """A type-strict, order-free rendering: 1, 1.0 and true all differ.

    ``-0.0`` renders as ``0.0``: the diff, like the state hash (RFC 8785 writes both as ``0``,
    and so does JavaScript's ``JSON.stringify``), takes them for the same value.
    """
    return json.dumps(_zero_unsigned(value), sort_keys=True)


def _zero_unsigned(value):
    if type(value) is float and value == 0:
        return 0.0
    if type(value) is list:
        return [_zero_unsigned(item) for item in value]
    if type(value) is dict:
        return {key: _zero_unsigned(item) for key, item in value.items()}
    return value


def check(a, b):
    patch = diff(a, b)
    original = strict(a)
    result = jsonpatch.apply_patch(a, patch)
    assert strict(result) == strict(b)
    assert strict(a) == original, "diff must not change its input"
    return patch


@settings(max_examples=150, deadline=None)
@given(JSON, JSON)
def test_patch_turns_a_into_b(a, b):
    check(a, b)


@st.composite
def edited(draw):
    """A value and an edited copy that shares the unchanged subtrees, as reducers produce."""
    a = draw(st.dictionaries(KEYS, JSON, min_size=1, max_size=6))
    b = dict(a)
    for key in draw(st.lists(st.sampled_from(sorted(a)), max_size=3)):
        action = draw(st.sampled_from(["replace", "remove", "wrap"]))
        if action == "remove":
            b.pop(key, None)
        elif action == "replace":
            b[key] = draw(JSON)
        else:
            b[key] = [b.get(key), draw(SCALARS)]
    if draw(st.booleans()):
        b[draw(KEYS)] = draw(JSON)
    return a, b


@settings(max_examples=150, deadline=None)
@given(edited())
def test_patch_of_shared_structure(pair):
    check(*pair)


@settings(max_examples=100, deadline=None)
@given(JSON)
def test_equal_values_give_empty_patch(a):
    assert diff(a, copy.deepcopy(a)) == []
    assert diff(a, a) == []


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (1, True, [{"op": "replace", "path": "", "value": True}]),
        ({"x": 1}, {"x": True}, [{"op": "replace", "path": "/x", "value": True}]),
        ({"x": 0}, {"x": False}, [{"op": "replace", "path": "/x", "value": False}]),
        ({"x": 1.0}, {"x": 1}, [{"op": "replace", "path": "/x", "value": 1}]),
        ({"x": [1]}, {"x": [True]}, [{"op": "replace", "path": "/x/0", "value": True}]),
        ({"a/b": 1}, {"a/b": 2}, [{"op": "replace", "path": "/a~1b", "value": 2}]),
        ({"m~n": 1}, {}, [{"op": "remove", "path": "/m~0n"}]),
        ({}, {"~/": 1}, [{"op": "add", "path": "/~0~1", "value": 1}]),
        (2**64, 2**64 + 1, [{"op": "replace", "path": "", "value": 2**64 + 1}]),
        ({"n": 2**70}, {"n": 2**70}, []),
        ({"s": "é"}, {"s": "e\u0301"}, [{"op": "replace", "path": "/s", "value": "e\u0301"}]),
        ({"a": {"b": 1}}, {"a": [1]}, [{"op": "replace", "path": "/a", "value": [1]}]),
    ],
)
def test_known_patches(a, b, expected):
    assert check(a, b) == expected


def test_lists_trim_common_prefix_and_suffix():
    a = [1, 2, 3, 4, 5]
    b = [1, 2, 9, 4, 5]
    assert check(a, b) == [{"op": "replace", "path": "/2", "value": 9}]
    assert check([1, 2, 3], [1, 2, 3, 4]) == [{"op": "add", "path": "/3", "value": 4}]
    assert check([0, 1, 2, 3], [0, 3]) == [
        {"op": "remove", "path": "/1"},
        {"op": "remove", "path": "/1"},
    ]


def test_nested_lists_and_type_changes():
    check([[1, [2, 3]], {"a": [True]}], [[1, [2, 3.0]], {"a": [1]}, None])
    check({"a": [[[]]]}, {"a": [[[0, False]]]})


def test_only_changed_subtrees_are_reported():
    shared = {"big": list(range(1000))}
    a = {"keep": shared, "orders": {"o1": {"total": 10}}}
    b = {"keep": shared, "orders": {"o1": {"total": -5}}}
    assert diff(a, b) == [{"op": "replace", "path": "/orders/o1/total", "value": -5}]


def test_equal_is_type_strict():
    assert equal({"a": [1, {"b": 2}]}, {"a": [1, {"b": 2}]})
    assert not equal({"a": 1}, {"a": True})
    assert not equal([1.0], [1])
    assert not equal({"a": 2**70}, {"a": 2**70 + 1})
    assert equal({"a": 2**70}, {"a": 2**70})


def test_pointer_escaping_round_trips():
    parts = ["a/b", "~", "~1", "", "x"]
    assert pointer(parts) == "/a~1b/~0/~01//x"
    assert split_pointer(pointer(parts)) == parts
    assert escape(3) == "3"
    assert split_pointer("") == []


def _resolve(doc, path):
    for token in split_pointer(path):
        doc = doc[int(token)] if isinstance(doc, list) else doc[token]
    return doc


@settings(max_examples=150, deadline=None)
@given(JSON, JSON)
def test_with_old_carries_the_value_each_op_replaces_or_removes(a, b):
    """``with_old=True`` is the same patch plus, on each replace/remove, the value it takes away
    at the moment it applies; jsonpatch applies it as it is."""
    patch = diff(a, b, with_old=True)
    assert without_old(patch) == diff(a, b)
    assert strict(jsonpatch.apply_patch(a, patch)) == strict(b)
    doc = copy.deepcopy(a)
    for op in patch:
        if op["op"] in ("replace", "remove"):
            assert strict(_resolve(doc, op["path"])) == strict(op[OLD])
        else:
            assert OLD not in op
        doc = jsonpatch.apply_patch(doc, [without_old([op])[0]])


def test_with_old_known_patches():
    assert diff({"total": 1567}, {"total": 719}, with_old=True) == [
        {"op": "replace", "path": "/total", "value": 719, OLD: 1567}
    ]
    assert diff([0, 1, 2, 3], [0, 3], with_old=True) == [
        {"op": "remove", "path": "/1", OLD: 1},
        {"op": "remove", "path": "/1", OLD: 2},
    ]
    assert diff({"gone": {"x": 1}}, {}, with_old=True) == [
        {"op": "remove", "path": "/gone", OLD: {"x": 1}}
    ]
