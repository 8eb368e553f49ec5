"""Bisecting a monotone predicate over the timeline (pure).

A predicate is monotone when, once it holds after some event, it holds after every later one
(``a total is negative`` once the bug happened). :func:`checkpoint_window` narrows the search to
the window between two adjacent checkpoints by binary search, evaluating the predicate at
O(log n) checkpoints; the engine then replays that window (K events, or a few K where it
paced its checkpoints for a large state) to find the first ``v``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from replayer.diff import without_old


@dataclass(frozen=True, slots=True)
class BisectResult:
    """The first event after which the predicate holds."""

    v: int | None
    """Its number, or ``None`` when the predicate never holds."""
    event: Any = None
    """The event (as the reducer received it)."""
    diff: list[dict[str, Any]] | None = None
    """The RFC 6902 patch that event caused (state before → state after)."""
    checkpoints_touched: int = 0
    """How many checkpoint states the binary search evaluated the predicate on."""
    reductions: int = 0
    """How many events were replayed in the final window."""

    def to_json(self) -> dict[str, Any]:
        """``{"v", "event", "diff"}``; the diff a plain RFC 6902 patch."""
        diff = None if self.diff is None else without_old(self.diff)
        return {"v": self.v, "event": self.event, "diff": diff}


def checkpoint_window(
    good: int, bad: int, checkpoints: Sequence[int], holds: Callable[[int], bool]
) -> tuple[int, int, int]:
    """The window ``(left, right]`` that holds the first ``v`` where the predicate holds.

    Args:
        good: a ``v`` where the predicate does not hold.
        bad: a later ``v`` where it holds.
        checkpoints: sorted checkpoint ``v`` (only those strictly between are used).
        holds: evaluates the predicate at a checkpoint ``v``.

    Returns:
        ``(left, right, evaluations)``: the predicate does not hold at ``left``, holds at
        ``right``, no checkpoint lies strictly between them; ``evaluations`` counts calls.
    """
    import bisect as _bisect

    lo_i = _bisect.bisect_right(checkpoints, good)
    hi_i = _bisect.bisect_left(checkpoints, bad)
    left, right, evaluations = good, bad, 0
    # Invariant: not holds(left), holds(right); candidates are checkpoints[lo_i:hi_i].
    while lo_i < hi_i:
        mid = (lo_i + hi_i) // 2
        v = checkpoints[mid]
        evaluations += 1
        if holds(v):
            right, hi_i = v, mid
        else:
            left, lo_i = v, mid + 1
    return left, right, evaluations
