"""Build the app for ``rdt tui``: open the log (replay mode) or the live feed (live mode)."""

from __future__ import annotations

from typing import Any

from devtools.errors import BadInput
from replayer.live import LiveReplay
from tui.app import RdtApp

__all__ = ["LiveReplay", "live_app", "replay_app"]


def replay_app(
    target: str,
    *,
    reducer: str | None = None,
    recording: str | None = None,
    order: str = "v",
) -> tuple[RdtApp, Any]:
    """The app over the log at ``target``, and the opened ``Log`` (close it after the app).

    ``order`` ``logux``: the states are the replay's in Logux's order
    (:mod:`replayer.order`).

    Raises:
        LogError: when the log cannot be opened or the recording does not exist.
        ReducerLoadError: when ``reducer`` cannot be imported (checked before the screen opens).
        BadInput: ``--order logux`` without a reducer, or over a log that is not Logux.
    """
    from devtools.store import Log
    from replayer.order import check_order
    from tui.rowsource import LogTimeline

    if check_order(order) != "v" and reducer is None:
        raise BadInput("--order logux orders the replay of states: it needs --reducer")
    if reducer is not None:
        from replayer.runtimes import load_runtime

        load_runtime(reducer).close()  # fail fast with one clear line, before the screen opens
    log = Log.open(target)
    try:
        reader = log.reader(recording)
        if order == "logux":
            _check_logux(reader)
        timeline = LogTimeline(reader)
        name = reader.recording.name
    except BaseException:
        log.close()
        raise
    return RdtApp(timeline, name=name, reducer=reducer, log=log, order=order), log


def _check_logux(reader: Any) -> None:
    """Refuse ``--order logux`` before the screen opens when the first event has no Logux
    meta (the replay checks every event when it opens)."""
    from replayer.order import logux_ordering

    first = reader.first_v()
    found = reader.event(first) if first is not None else None
    if found is not None:
        event = found.event
        logux_ordering([(found.v, event.get("meta") if isinstance(event, dict) else None)])


def live_app(
    url: str, *, token: str | None = None, reducer: str | None = None, name: str | None = None
) -> RdtApp:
    """The app following the recorder whose control endpoint is ``url`` (the header shows
    ``name``, by default the URL)."""
    from tui.live import LiveFeed

    if not url.startswith(("ws://", "wss://")):
        raise BadInput(f"--live needs a ws:// or wss:// URL, not {url!r}")
    feed = LiveFeed(url, token)
    replay = None
    if reducer is not None:
        replay = LiveReplay(reducer, feed.timeline)
    return RdtApp(feed.timeline, name=name or url, feed=feed, replay=replay)
