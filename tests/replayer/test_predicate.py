"""The --bad expression: compiled once, errors are one line that names v."""

from __future__ import annotations

import pytest

from replayer.errors import BadExpression, PredicateError
from replayer.predicate import Predicate


def test_evaluates_over_state_event_and_v():
    p = Predicate.compile("state['n'] > 2 and event['type'] == 'x' and v > 1")
    assert p({"n": 3}, {"type": "x"}, 2) is True
    assert p({"n": 1}, {"type": "x"}, 2) is False


@pytest.mark.parametrize("expr", ["", "   ", "state[", "x = 1", "import os"])
def test_bad_syntax_is_one_line(expr):
    with pytest.raises(BadExpression) as info:
        Predicate.compile(expr)
    assert "\n" not in str(info.value)


def test_raising_names_v():
    p = Predicate.compile("state['missing']")
    with pytest.raises(PredicateError, match=r"raised at v=7: KeyError") as info:
        p({}, {}, 7)
    assert info.value.v == 7
