"""The pure checkpoint search: O(log n) evaluations, the right window."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from replayer.bisect import checkpoint_window


@given(st.integers(min_value=1, max_value=10_000), st.integers(min_value=1, max_value=500))
def test_window_holds_the_first_true_v(first_bad, every):
    last = 10_000
    checkpoints = list(range(every, last + 1, every))
    calls = []

    def holds(v):
        calls.append(v)
        return v >= first_bad

    left, right, evaluations = checkpoint_window(0, last, checkpoints, holds)
    assert left < first_bad <= right
    assert not [c for c in checkpoints if left < c < right]
    assert evaluations == len(calls) <= len(checkpoints).bit_length()


def test_only_checkpoints_inside_the_range_are_used():
    seen = []
    left, right, _ = checkpoint_window(250, 600, [100, 200, 300, 400, 500, 700], seen.append)
    assert all(250 < v < 600 for v in seen)
    assert (left, right) == (500, 600)
