"""Build the app for ``rdt tui``: open the log (replay mode) or the live feed (live mode)."""

from __future__ import annotations

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
    state it computed, so stepping forward costs one reducer call.
    """

    def __init__(self, reducer: Any, timeline: Any) -> None:
        self.reducer = reducer
        self.timeline = timeline
        self.initial_state = reducer(None, {"type": "@@INIT"})
        self._cache: tuple[int, Any] | None = None

    def state_at(self, v: int) -> Any:
        start_v, state = 0, self.initial_state
        snap = self.timeline.snapshot_at_or_before(v)
        if snap is not None:
            start_v, state = snap.v, snap.state
        if self._cache is not None and start_v <= self._cache[0] <= v:
            start_v, state = self._cache
        index = self.timeline.events.index_of(start_v + 1)
        rows = self.timeline.events.rows
        while index is not None and index < len(rows) and rows[index].key <= v:
            state = self.reducer(state, rows[index].record.event)
            index += 1
        self._cache = (v, state)
        return state
