"""States for the TUI's live mode: the reducer folded over the events received so far.

A live recorder hands the screen events as they happen; there is no log to keep checkpoints in.
:class:`LiveReplay` starts from the latest snapshot at or before ``v`` (the join snapshot) and
caches the last state it computed, so stepping forward costs one reduction. Bisect and what-if
fold the received events in memory through :mod:`replayer.fold`, so a reducer that raises is a
:class:`~replayer.errors.ReplayError` (the screen shows it), never a crash.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

from replayer import fold
from replayer.bisect import BisectResult
from replayer.diff import diff
from replayer.fold import ReducerRuntime
from replayer.runtimes import load_runtime
from replayer.whatif import WhatIfResult


class Timeline(Protocol):
    """What live mode reads: the received events (rows keyed by ``v``) and snapshots."""

    events: Any

    def snapshot_at_or_before(self, v: int) -> Any: ...


class LiveReplay:
    """State at ``v``, bisect and what-if over a live timeline's received events."""

    def __init__(self, reducer: ReducerRuntime | Callable[[Any, Any], Any], timeline: Any) -> None:
        self.reducer: ReducerRuntime = load_runtime(reducer)
        self.timeline: Timeline = timeline
        self.initial_state = fold.start(self.reducer).state
        self._cache: tuple[int, Any] | None = None

    def close(self) -> None:
        """Stop the reducer's worker, if it has one."""
        self.reducer.close()

    def state_at(self, v: int) -> Any:
        """The state after received event ``v``.

        Raises:
            ReplayError: the reducer raised.
        """
        start_v, state = self._start(v)
        if self._cache is not None and start_v <= self._cache[0] <= v:
            start_v, state = self._cache
        _, state = fold.fold(self.reducer, state, self._events_after(start_v, until=v))
        self._cache = (v, state)
        return state

    def bisect(self, predicate: Callable[[Any, Any, int], bool]) -> BisectResult:
        """The first received event after which ``predicate(state, event, v)`` holds."""
        v0, state = self._start(self._first_v() - 1)
        hit = fold.first_where(self.reducer, state, self._events_after(v0), predicate)
        if hit is None:
            return BisectResult(None, reductions=self._count_after(v0))
        return BisectResult(hit.v, hit.event, diff(hit.before, hit.after), 0, hit.reductions)

    def what_if(self, skip: list[int]) -> WhatIfResult:
        """The received timeline without the ``skip`` events, against the one received."""
        v0, state = self._start(self._first_v() - 1)
        timelines = fold.what_if(self.reducer, state, self._events_after(v0), skip)
        return WhatIfResult(
            sorted(set(skip)),
            timelines.first_divergent_v,
            diff(timelines.original, timelines.alternative),
            timelines.alternative,
        )

    def _start(self, v: int) -> tuple[int, Any]:
        snap = self.timeline.snapshot_at_or_before(v)
        return (snap.v, snap.state) if snap is not None else (0, self.initial_state)

    def _first_v(self) -> int:
        rows = self.timeline.events.rows
        return rows[0].key if rows else 1

    def _count_after(self, v: int) -> int:
        return sum(1 for _ in self._events_after(v))

    def _events_after(self, v: int, until: int | None = None) -> Iterator[tuple[int, Any]]:
        index = self.timeline.events.index_of(v + 1)
        rows = self.timeline.events.rows
        while index is not None and index < len(rows):
            row = rows[index]
            if until is not None and row.key > until:
                return
            yield row.key, row.record.event
            index += 1
