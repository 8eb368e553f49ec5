"""Build the app for ``rdt tui``: open the log (replay mode) or the live feed (live mode)."""

from __future__ import annotations

from typing import Any

from devtools.errors import BadInput
from replayer.live import LiveReplay
from tui.app import RdtApp

__all__ = ["LiveReplay", "live_app", "replay_app"]


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
        from replayer.runtimes import load_runtime

        load_runtime(reducer).close()  # fail fast with one clear line, before the screen opens
    log = Log.open(target)
    try:
        reader = log.reader(recording)
        timeline = LogTimeline(reader)
        name = reader.recording.name
    except BaseException:
        log.close()
        raise
    return RdtApp(timeline, name=name, reducer=reducer, log=log), log


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
