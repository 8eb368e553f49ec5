"""The bisect progress count: a predicate that counts its evaluations, used by a real bisect."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.errors import RdtError
from tests import factories
from tui.progress import bisect_status, counting


def test_counting_predicate_evaluates_like_the_expression_and_counts() -> None:
    predicate = counting("v > 3")
    assert predicate(None, None, 5) is True
    assert predicate(None, None, 1) is False
    assert predicate.evaluated == 2
    assert bisect_status("v > 3", predicate) == "bisecting v > 3… (2 states checked)"


def test_counting_refuses_a_bad_expression_with_a_clear_error() -> None:
    with pytest.raises(RdtError, match="not valid Python"):
        counting("state[")


def test_a_real_bisect_with_the_counting_predicate_finds_the_same_event(small_log) -> None:
    from replayer.engine import Replay

    reducer = str(Path(factories.__file__)) + ":counter_reducer"
    predicate = counting("state['count'] > 100")
    with Replay.open(small_log, reducer=reducer) as replay:
        assert replay.bisect(predicate).v == replay.bisect("state['count'] > 100").v == 14
    assert predicate.evaluated >= 2  # the last event, then the events of one window
