"""The `--grep` rule: the state's lines, and the count of matching lines kept incrementally.

The law: after any sequence of states (edited copies sharing structure, as reducers make them,
or fresh equal copies, as the Node worker sends them), :class:`LineMatches` holds the count a
full rendering gives.
"""

from __future__ import annotations

import copy
import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from replayer.grep import LineMatches, count_matches, lines
from replayer.search import GrepProbe, changes
from tests.replayer.test_diff import JSON, KEYS, SCALARS, _zero_unsigned

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
            what = draw(st.sampled_from(["add", "remove", "change", "empty"]))
            if what == "empty":
                out = {}
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


@settings(max_examples=400, deadline=None)
@given(histories(), st.sampled_from(PATTERNS))
def test_incremental_count_equals_a_full_rendering(states, regex):
    pattern = re.compile(regex)
    matches = LineMatches(pattern)
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


def test_a_type_change_hidden_by_equality_is_seen():
    """``1 == True`` and ``1 == 1.0``: equal to Python, three different lines."""
    state = {f"k{i}": {"n": 1} for i in range(100)}
    matches = LineMatches(re.compile(r"true$"))
    assert matches.update(state) == 0
    assert matches.update({**state, "k50": {"n": True}}) == 1
    assert matches.update(copy.deepcopy({**state, "k7": {"n": True}})) == 1
    assert matches.update({"k": [1, 1.0, True]}) == 1
    items = [0, 1, 2]
    assert matches.update({"k": items}) == 0
    assert matches.update({"k": [0, True, 2]}) == 1
    assert matches.update({"k": [0, 1, 2]}) == 0


def test_a_defaultdict_in_the_state_is_only_read():
    from collections import defaultdict

    old = defaultdict(int, {"a": 1})
    new = defaultdict(int, {"b": 1})
    matches = LineMatches(re.compile(r'^"a"'))
    assert matches.update({"d": old}) == 1
    assert matches.update({"d": new}) == 0
    assert dict(old) == {"a": 1} and dict(new) == {"b": 1}
