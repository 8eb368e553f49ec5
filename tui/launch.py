"""Build the app for ``rdt tui``: open the log (replay mode) or the live feed (live mode)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from devtools.errors import BadInput
from tui.app import RdtApp


def replay_app(
    target: str, *, reducer: str | None = None, recording: str | None = None
) -> tuple[RdtApp, Any]:
    """The app over the log at ``target``, and the opened ``Log`` (close it after the app).

    Raises:
        LogError: when the log cannot be opened or the recording does not exist.
        ReducerLoadError: when ``reducer`` cannot be imported (checked before the screen opens).
    """
    from devtools.store import Log
    from tui.rowsource import LogTimeline

    if reducer is not None:
        from replayer.loader import load_reducer

        load_reducer(reducer)  # fail fast with one clear line, before the screen opens
    log = Log.open(target)
    try:
        ref: int | str | None = recording
        if recording is not None and recording.isdigit():
            ref = int(recording)
        reader = log.reader(ref)
        timeline = LogTimeline(reader)
        name = reader.recording.name
    except BaseException:
        log.close()
        raise
    return RdtApp(timeline, name=name, reducer=reducer, log=log), log


def live_app(url: str, *, token: str | None = None, reducer: str | None = None) -> RdtApp:
    """The app following the recorder whose control endpoint is ``url``."""
    from tui.live import LiveFeed

    if not url.startswith(("ws://", "wss://")):
        raise BadInput(f"--live needs a ws:// or wss:// URL, not {url!r}")
    feed = LiveFeed(url, token)
    replay = None
    if reducer is not None:
        from replayer.loader import load_reducer

        replay = LiveReplay(load_reducer(reducer), feed.timeline)
    return RdtApp(feed.timeline, name=url, feed=feed, replay=replay)


class LiveReplay:
    """States for live mode: the reducer folded over the events received so far.

    Starts from the latest snapshot at or before ``v`` (the join snapshot) and caches the last
    state it computed, so stepping forward costs one reducer call. Bisect and what-if fold
    the received events in memory (live mode has no log to keep checkpoints in).
    """

    def __init__(self, reducer: Any, timeline: Any) -> None:
        self.reducer = reducer
        self.timeline = timeline
        self.initial_state = reducer(None, {"type": "@@INIT"})
        self._cache: tuple[int, Any] | None = None

    def close(self) -> None:
        """Nothing to release (a :class:`~replayer.engine.Replay` closes its checkpoint writer)."""

    def state_at(self, v: int) -> Any:
        start_v, state = self._start(v)
        if self._cache is not None and start_v <= self._cache[0] <= v:
            start_v, state = self._cache
        for _, event in self._events_after(start_v, until=v):
            state = self.reducer(state, event)
        self._cache = (v, state)
        return state

    def bisect(self, predicate: Any) -> Any:
        """The first received event after which ``predicate(state, event, v)`` holds."""
        from replayer.bisect import BisectResult
        from replayer.diff import diff

        v0, state = self._start(self._first_v() - 1)
        reductions = 0
        for v, event in self._events_after(v0):
            before, state = state, self.reducer(state, event)
            reductions += 1
            if predicate(state, event, v):
                return BisectResult(v, event, diff(before, state), 0, reductions)
        return BisectResult(None, reductions=reductions)

    def what_if(self, skip: list[int]) -> Any:
        """The received timeline without the ``skip`` events, against the one received."""
        from replayer.diff import diff, equal
        from replayer.whatif import WhatIfResult

        skipped = set(skip)
        v0, recorded = self._start(self._first_v() - 1)
        changed, first_divergent = recorded, None
        for v, event in self._events_after(v0):
            recorded = self.reducer(recorded, event)
            if v not in skipped:
                changed = self.reducer(changed, event)
            if first_divergent is None and not equal(recorded, changed):
                first_divergent = v
        return WhatIfResult(sorted(skipped), first_divergent, diff(recorded, changed), changed)

    def _start(self, v: int) -> tuple[int, Any]:
        snap = self.timeline.snapshot_at_or_before(v)
        return (snap.v, snap.state) if snap is not None else (0, self.initial_state)

    def _first_v(self) -> int:
        rows = self.timeline.events.rows
        return rows[0].key if rows else 1

    def _events_after(self, v: int, until: int | None = None) -> Iterator[tuple[int, Any]]:
        index = self.timeline.events.index_of(v + 1)
        rows = self.timeline.events.rows
        while index is not None and index < len(rows):
            row = rows[index]
            if until is not None and row.key > until:
                return
            yield row.key, row.record.event
            index += 1
