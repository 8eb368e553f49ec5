"""The replay source: pages split at checkpoint boundaries, huge integers kept exact."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from replayer.engine import Replay
from replayer.source import segments
from tests import factories
from tests.factories import counter_reducer, event


@given(
    vs=st.lists(st.integers(1, 400), min_size=1, max_size=120, unique=True).map(sorted),
    every=st.integers(1, 50),
)
def test_segments_cover_the_page_and_end_at_every_multiple_of_k(vs, every):
    page = [(v, b"{}") for v in vs]
    parts = list(segments(page, every))
    assert [row for part in parts for row in part] == page
    assert all(part for part in parts)
    ends = {part[-1][0] for part in parts}
    # Every multiple of K in the page closes a segment, so the engine sees each boundary …
    assert {v for v in vs if v % every == 0} <= ends
    # … and no segment runs past one: its rows all lie between two consecutive multiples.
    for part in parts:
        assert -(-part[0][0] // every) == -(-part[-1][0] // every)


def test_segments_of_a_contiguous_page():
    page = [(v, b"{}") for v in range(995, 2_012)]
    assert [(part[0][0], part[-1][0]) for part in segments(page, 1000)] == [
        (995, 1000),
        (1001, 2000),
        (2001, 2011),
    ]


def _log_with_huge_integers(target, count: int, huge_at: set[int]) -> None:
    evs = [event(v, by=2**70 if v in huge_at else v) for v in range(1, count + 1)]
    factories.write_log(target, messages=0, events=0, snapshots=(), extra_events=evs)


def test_a_replay_across_pages_keeps_huge_integers_exact(log_target):
    """Only the store page holding them takes the exact loader; the result is exact."""
    huge = {7, 1_500, 3_299}
    _log_with_huge_integers(log_target, 3_300, huge)
    expected = sum(2**70 if v in huge else v for v in range(1, 3_301))
    with Replay.open(log_target, reducer=counter_reducer, checkpoint_every=25) as r:
        assert r.state_at() == {"count": expected}
        assert r.state_at(1_501)["count"] == sum(2**70 if v in huge else v for v in range(1, 1_502))
