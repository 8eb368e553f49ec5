"""`rdt compare`: the first event at which two reducer versions disagree, with the diff.

Both reducers run in this process over the same events (each gets its own decoded copy of
every event), from the same start the replay engine uses (a snapshot at the log's start, else
each reducer's own ``@@INIT``). The states are compared after every event type-strictly
(:func:`replayer.diff.equal`: ``1``, ``1.0`` and ``True`` differ), so the first ``v`` where they
disagree is exact. A reducer that raises ends the comparison with an ``exception`` finding.
"""

from __future__ import annotations

from typing import Any

from devtools.jsonutil import dumps, loads
from replayer.diff import diff, equal
from replayer.errors import ReplayError
from replayer.findings import Finding, LogResult
from replayer.loader import load_reducer
from replayer.source import open_source

__all__ = ["compare_reducers"]

INIT = {"type": "@@INIT"}


def compare_reducers(
    log: str, reducer: str, against: str, *, recording: int | str | None = None
) -> LogResult:
    """Replay ``log`` with both reducers; a finding at the first ``v`` where they disagree.

    Raises:
        LogError: the log cannot be read or has no such recording.
        ReducerLoadError: either reducer cannot be imported.
    """
    from devtools.store import Log

    a = load_reducer(reducer)
    b = load_reducer(against)
    with Log.open(log) as opened:
        reader = opened.reader(recording)
        source = open_source(reader, "auto")
        start_v = 0
        start: Any = None
        if source.kind == "events" and source.first_v is not None:
            snap = reader.snapshot_at_or_before(source.first_v)
            if snap is not None:
                start_v, start = snap.v, snap.state
        last_v = max(source.last_v or 0, start_v)
        info = {"events": last_v - start_v, "reducer": reducer, "against": against}
        which = {"a": reducer, "b": against}

        def call(side: str, func: Any, state: Any, v: int, event: Any) -> Any:
            try:
                return func(state, event)
            except Exception as error:  # noqa: BLE001 - the user's reducer
                raise _Raised(side, ReplayError.from_exception(v, event, error)) from None

        try:
            if start_v:
                sa, sb = loads(dumps(start)), loads(dumps(start))
            else:
                sa = call("a", a, None, 0, dict(INIT))
                sb = call("b", b, None, 0, dict(INIT))
            if not equal(sa, sb):
                event = dict(INIT) if start_v == 0 else None
                return LogResult(log, (_finding(start_v, event, sa, sb, which),), info)
            if last_v > start_v:
                for v, payload in source.payloads(start_v + 1, last_v):
                    sa = call("a", a, sa, v, loads(payload))
                    sb = call("b", b, sb, v, loads(payload))
                    if not equal(sa, sb):
                        return LogResult(log, (_finding(v, loads(payload), sa, sb, which),), info)
        except _Raised as raised:
            error = raised.error
            finding = Finding(
                kind="exception",
                v=error.v,
                event=error.event,
                detail=f"{which[raised.side]} raised:\n{error.traceback.rstrip()}",
                extra={"reducer": which[raised.side]},
            )
            return LogResult(log, (finding,), info)
    return LogResult(log, (), info)


class _Raised(Exception):
    def __init__(self, side: str, error: ReplayError) -> None:
        super().__init__(str(error))
        self.side = side
        self.error = error


def _finding(v: int, event: Any, sa: Any, sb: Any, which: dict[str, str]) -> Finding:
    return Finding(
        kind="reducer-divergence",
        v=v,
        event=event,
        diff=diff(sa, sb),
        detail=f"after v={v} the two reducers hold different states (they agreed on every "
        "event before)",
        note=f"--reducer {which['a']} → --against {which['b']}",
        help="if the change is intended (a migration), regenerate the recorded hashes or "
        "tests that cover this event; otherwise the refactor changed behaviour here",
        extra={"diff_label": "diff (--reducer → --against)"},
    )
