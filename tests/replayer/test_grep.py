"""The `--grep` rule: the state's lines, and the count of matching lines kept incrementally.

The law: after any sequence of states (edited copies sharing structure, as reducers make them,
or fresh equal copies, as the Node worker sends them), :class:`LineMatches` holds the count a
full rendering gives — and so does the same walk in C (``replayer/_linematch.c``), when built.
"""

from __future__ import annotations

import copy
import json
import os
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replayer import grep
from replayer.grep import LineMatches, count_matches, line_matches, lines
from replayer.search import GrepProbe, changes
from tests.replayer.test_diff import JSON, KEYS, SCALARS, _zero_unsigned

EXAMPLES = int(os.environ.get("RDT_GREP_EXAMPLES", 400))
"""Histories the law below tries (more for a deeper run: RDT_GREP_EXAMPLES=10000 -o timeout=0)."""

WALKS = [
    pytest.param(LineMatches, id="python"),
    pytest.param(
        line_matches,  # the C walk when built (with a literal pattern's substring test)
        id="c",
        marks=pytest.mark.skipif(
            not grep.FAST, reason="replayer/_linematch.c was not built (no C compiler at install)"
        ),
    ),
]

PATTERNS = [
    r"^\{$",
    r"^\}$",
    r"\]",
    r"\{\}|\[\]",
    r'^"a"',
    r": \{$",
    r"true",
    r"^1$|: 1$",
    r"0\.0",
    r'"[^"]*~',
    r"null",
    r"^$",
    r".",
    r"\d{3}",
    r"ü|日本",
    '"a": ',  # literals: the C walk tests them as substrings
    '"customer": "ACME"',
    "~",
    "}",
]


def json_lines(state):
    """What the rule says: json.dumps(indent=2), each line without indentation or comma."""
    text = json.dumps(_zero_unsigned(state), indent=2, ensure_ascii=False)
    out = []
    for line in text.split("\n"):
        line = line.lstrip(" ")
        out.append(line[:-1] if line.endswith(",") else line)
    return out


@settings(max_examples=200, deadline=None)
@given(JSON)
def test_lines_are_the_indented_json_lines(state):
    assert list(lines(state)) == json_lines(state)


def test_the_rule_on_an_example():
    state = {"orders": {"o1": {"customer": "ACME", "lines": {}, "tags": ["x", 1.5]}}, "n": -0.0}
    assert list(lines(state)) == [
        "{",
        '"orders": {',
        '"o1": {',
        '"customer": "ACME"',
        '"lines": {}',
        '"tags": [',
        '"x"',
        "1.5",
        "]",
        "}",
        "}",
        '"n": 0.0',
        "}",
    ]
    assert count_matches(re.compile(r'^"customer": "ACME"$'), state) == 1
    assert count_matches(re.compile(r'"ACME".*"lines"'), state) == 0  # never across lines
    assert list(lines({1: [True, None, float("nan")], "s": "a\nb\u202e"})) == [
        "{",
        '"1": [',
        "true",
        "null",
        "NaN",
        "]",
        '"s": "a\\nb\u202e"',
        "}",
    ]


@st.composite
def edit(draw, value, depth=0):
    """``value`` with a few changes, sharing every untouched subtree (copy-on-write)."""
    kind = type(value)
    action = draw(st.sampled_from(["replace", "retype", "keep", "into", "into", "into"]))
    if action == "replace" or kind not in (dict, list) or depth > 4:
        if action == "retype" and type(value) in (int, bool, float):
            return draw(st.sampled_from([0, 1, 0.0, 1.0, -0.0, True, False]))
        if action == "keep":
            return value
        return draw(JSON)
    if kind is dict:
        out = dict(value)
        for _ in range(draw(st.integers(1, 3))):
            what = draw(st.sampled_from(["add", "remove", "change", "empty", "move"]))
            if what == "empty":
                out = {}
            elif what == "move" and out:  # the same items, one key moved to the end
                key = draw(st.sampled_from(sorted(out)))
                out[key] = out.pop(key)
            elif what == "add" or not out:
                out[draw(KEYS)] = draw(JSON)
            elif what == "remove":
                out.pop(draw(st.sampled_from(sorted(out))))
            else:
                key = draw(st.sampled_from(sorted(out)))
                out[key] = draw(edit(out[key], depth + 1))
        return out
    out = list(value)
    for _ in range(draw(st.integers(1, 3))):
        what = draw(st.sampled_from(["insert", "delete", "change", "empty"]))
        at = draw(st.integers(0, len(out)))
        if what == "empty":
            out = []
        elif what == "insert" or not out:
            out.insert(at, draw(JSON))
        elif what == "delete":
            del out[min(at, len(out) - 1)]
        else:
            i = min(at, len(out) - 1)
            out[i] = draw(edit(out[i], depth + 1))
    return out


@st.composite
def histories(draw):
    """A start state and 1–12 states after it, each an edit of the one before; some of them
    fresh deep copies (no shared objects, as states parsed from the Node worker)."""
    big = st.dictionaries(st.text(max_size=3), SCALARS | JSON, min_size=0, max_size=40)
    state = draw(st.one_of(JSON, st.dictionaries(KEYS, JSON, max_size=6), big))
    states = [state]
    for _ in range(draw(st.integers(1, 12))):
        state = draw(edit(state))
        if draw(st.booleans()) and draw(st.booleans()):
            state = copy.deepcopy(state)
        states.append(state)
    return states


@pytest.mark.parametrize("walk", WALKS)
@settings(max_examples=EXAMPLES, deadline=None)
@given(histories(), st.sampled_from(PATTERNS))
def test_incremental_count_equals_a_full_rendering(walk, states, regex):
    pattern = re.compile(regex)
    matches = walk(pattern)
    for state in states:
        assert matches.update(state) == count_matches(pattern, state)


@settings(max_examples=100, deadline=None)
@given(histories(), st.sampled_from(PATTERNS))
def test_grep_changes_equal_the_naive_probe_at_every_state(states, regex):
    watch = GrepProbe.parse(regex)
    steps = [(v, None, state) for v, state in enumerate(states[1:], 1)]
    got = [(c.v, c.new) for c in changes(watch, (0, states[0]), steps)]
    naive = [watch(state, None, v) for v, state in enumerate(states)]
    expected = [(v, naive[v]) for v in range(1, len(naive)) if naive[v] != naive[v - 1]]
    assert got == expected


@pytest.mark.parametrize("walk", WALKS)
def test_a_type_change_hidden_by_equality_is_seen(walk):
    """``1 == True`` and ``1 == 1.0``: equal to Python, three different lines."""
    state = {f"k{i}": {"n": 1} for i in range(100)}
    matches = walk(re.compile(r"true$"))
    assert matches.update(state) == 0
    assert matches.update({**state, "k50": {"n": True}}) == 1
    assert matches.update(copy.deepcopy({**state, "k7": {"n": True}})) == 1
    assert matches.update({"k": [1, 1.0, True]}) == 1
    items = [0, 1, 2]
    assert matches.update({"k": items}) == 0
    assert matches.update({"k": [0, True, 2]}) == 1
    assert matches.update({"k": [0, 1, 2]}) == 0


@pytest.mark.parametrize("walk", WALKS)
def test_a_defaultdict_in_the_state_is_only_read(walk):
    from collections import defaultdict

    old = defaultdict(int, {"a": 1})
    new = defaultdict(int, {"b": 1})
    matches = walk(re.compile(r'^"a"'))
    assert matches.update({"d": old}) == 1
    assert matches.update({"d": new}) == 0
    assert dict(old) == {"a": 1} and dict(new) == {"b": 1}


@pytest.mark.parametrize("walk", WALKS)
def test_a_large_dict_as_a_reducer_changes_it(walk):
    """One order changed, one added, one removed, keys moved, a tuple: each against the count
    of a full rendering."""
    pattern = re.compile(r'"customer": "c1\d*"$|^"(ACME|-)"$')
    orders = {f"o{i}": {"customer": f"c{i % 30}", "lines": {}, "total": 0} for i in range(400)}
    state = {"orders": orders, "n": 0}
    matches = walk(pattern)
    history = [state]
    changed = {**orders, "o7": {**orders["o7"], "customer": "c1", "total": 5}}
    history.append({**state, "orders": changed})
    history.append({**state, "orders": {**changed, "o400": {"customer": "c12"}}})
    fewer = dict(history[-1]["orders"])
    del fewer["o10"], fewer["o399"]
    history.append({**state, "orders": fewer})
    moved = dict(fewer)
    moved["o3"] = moved.pop("o3")
    moved["o5"] = ("ACME", "-", ["ACME"])
    history.append({**state, "orders": moved})
    history.append({**state, "orders": dict(reversed(moved.items()))})
    history.append({"orders": {}, "n": ("ACME",)})
    history.append(copy.deepcopy(history[4]))
    for state in history:
        assert matches.update(state) == count_matches(pattern, state)
        assert matches.count == count_matches(pattern, state)


@pytest.mark.parametrize("walk", WALKS)
def test_texts_the_c_side_leaves_to_python(walk):
    """Non-ASCII and escaped strings, keys that are not str, values that are not JSON."""
    pattern = re.compile(r'"\\"|ü|^"1": |^"true": |object|Infinity|^-?\d')
    history = [
        {"a": "x"},
        {"a": 'say "hi"\\', "ü": "ü", 1: [True, -0.0, float("inf")]},
        {"a": 'say "hi"', True: "nan", "o": object.__new__(object)},
        [float("nan"), float("-inf"), 10**30, 1.5e300],
    ]
    matches = walk(pattern)
    for state in history:
        assert matches.update(state) == count_matches(pattern, state)


def test_line_matches_is_the_c_walk_when_built():
    made = line_matches(re.compile("x"))
    assert type(made) is (grep._linematch.LineMatches if grep.FAST else LineMatches)


def test_a_literal_pattern_is_known_by_its_text():
    assert grep.literal_text(re.compile('"customer": "ACME"')) == '"customer": "ACME"'
    assert grep.literal_text(re.compile("a b#c-d")) == "a b#c-d"
    for regex, flags in [("a.c", 0), ("(?i)acme", 0), ("acme", re.I), ("a b", re.X), ("", 0)]:
        assert grep.literal_text(re.compile(regex, flags)) is None, regex


@pytest.mark.parametrize("walk", WALKS)
def test_observe_says_whether_a_line_matches(walk):
    matches = walk(re.compile("ACME"))
    assert matches.observe({"c": "x"}, None, 1) is False
    assert matches.observe({"c": "ACME", "d": ["ACME"]}, None, 2) is True
    assert matches.count == 2


@pytest.mark.skipif(
    not os.environ.get("RDT_REQUIRE_C_WALK"),
    reason="only where the C walk must have been built (.ci/run sets RDT_REQUIRE_C_WALK)",
)
def test_the_c_walk_was_built():
    """The extension is optional at install (no compiler, no failure): CI checks it was built."""
    assert grep.FAST
