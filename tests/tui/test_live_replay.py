"""Live mode's replay: state, bisect and what-if over the events received so far.

Regression: pressing ``b`` or ``s`` in live mode with ``--reducer`` called ``bisect`` /
``what_if`` on the live replay, which had neither, and the worker crashed.
"""

from __future__ import annotations

from devtools.model import Snapshot
from tests.factories import counter_events, counter_reducer
from tui.launch import LiveReplay
from tui.rowsource import LiveTimeline


def _live(events: int, *, snapshot: Snapshot | None = None) -> LiveReplay:
    timeline = LiveTimeline()
    if snapshot is not None:
        timeline.add_snapshot(snapshot)
    start = 1 if snapshot is None else snapshot.v + 1
    for ev in counter_events(events, start=start):
        timeline.add_event(ev)
    return LiveReplay(counter_reducer, timeline)


def test_state_at_folds_from_the_join_snapshot() -> None:
    live = _live(5, snapshot=Snapshot(10, {"count": 100}))
    assert live.state_at(10) == {"count": 100}
    assert live.state_at(12) == {"count": 100 + 11 + 12}
    assert live.state_at(15) == {"count": 100 + sum(range(11, 16))}


def test_bisect_lands_on_the_first_event_after_which_it_holds() -> None:
    live = _live(10)
    result = live.bisect(lambda state, event, v: state["count"] >= 10)
    assert result.v == 4  # 1 + 2 + 3 + 4
    assert result.event["v"] == 4
    assert result.diff == [{"op": "replace", "path": "/count", "value": 10}]


def test_bisect_that_never_holds_has_no_v() -> None:
    assert _live(3).bisect(lambda state, event, v: False).v is None


def test_what_if_reports_the_first_divergent_v_and_the_final_diff() -> None:
    live = _live(5, snapshot=Snapshot(2, {"count": 3}))
    result = live.what_if([4])  # events v=3..7 add 3..7 on top of the snapshot's 3
    assert result.first_divergent_v == 4
    assert result.diff == [{"op": "replace", "path": "/count", "value": 3 + 3 + 5 + 6 + 7}]
