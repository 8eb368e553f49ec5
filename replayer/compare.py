"""`rdt compare`: the first event at which two reducer versions disagree, with the diff.

Both reducers (Python or JavaScript, through the :mod:`replayer.fold` seam) fold the same events,
each from its own decoded copy, from the start the replay engine uses (a snapshot at the log's
start, else each reducer's own ``@@INIT``). The states are compared after every event
type-strictly (:func:`replayer.diff.equal`: ``1``, ``1.0`` and ``True`` differ), so the first
``v`` where they disagree is exact. A reducer that raises ends the comparison with an
``exception`` finding.

JavaScript holds no integer beyond ±2^53 exactly (nanosecond timestamps among them): where one
side is JavaScript, such integers are compared on both sides as the doubles ``JSON.parse`` makes
of them (:func:`as_doubles`), and the result says so in ``info["big_ints_as_doubles"]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from devtools.jsonutil import loads
from replayer import fold
from replayer.diff import diff, equal
from replayer.errors import ReplayError
from replayer.findings import Finding, LogResult
from replayer.fold import ReducerRuntime
from replayer.runtimes import load_runtime
from replayer.source import open_source

__all__ = ["as_doubles", "compare_reducers"]

SAFE = 2**53
"""Integers beyond ±this are not exact in JavaScript."""


def as_doubles(value: Any) -> tuple[Any, bool]:
    """``value`` with every integer beyond ±2^53 turned into the double JavaScript holds for it
    (pure); the flag says whether any was."""
    changed = False

    def walk(item: Any) -> Any:
        nonlocal changed
        kind = type(item)
        if kind is int:
            if -SAFE <= item <= SAFE:
                return item
            changed = True
            return float(item)
        if kind is dict:
            return {key: walk(inner) for key, inner in item.items()}
        if kind is list:
            return [walk(inner) for inner in item]
        return item

    return walk(value), changed


def compare_reducers(
    log: str, reducer: str, against: str, *, recording: int | str | None = None
) -> LogResult:
    """Replay ``log`` with both reducers; a finding at the first ``v`` where they disagree.

    Raises:
        LogError: the log cannot be read or has no such recording.
        ReducerLoadError: either reducer cannot be loaded.
    """
    from devtools.store import Log

    a = load_runtime(reducer)
    try:
        b = load_runtime(against)
    except BaseException:
        a.close()
        raise
    try:
        with Log.open(log) as opened:
            reader = opened.reader(recording)
            return _compare(log, reader, a, b, {"a": reducer, "b": against})
    finally:
        a.close()
        b.close()


def _compare(
    log: str, reader: Any, a: ReducerRuntime, b: ReducerRuntime, which: dict[str, str]
) -> LogResult:
    source = open_source(reader, "auto")
    snapshot = fold.start_snapshot(reader, source)
    start_v = snapshot.v if snapshot is not None else 0
    last_v = max(source.last_v or 0, start_v)
    info: dict[str, Any] = {
        "events": last_v - start_v,
        "reducer": which["a"],
        "against": which["b"],
    }
    js = "javascript" in (a.language, b.language)
    doubles = False

    def same(sa: Any, sb: Any) -> tuple[bool, Any, Any]:
        nonlocal doubles
        if js:
            sa, da = as_doubles(sa)
            sb, db = as_doubles(sb)
            doubles = doubles or da or db
        return equal(sa, sb), sa, sb

    def events() -> Iterator[tuple[int, Any]]:
        if last_v > start_v:
            for v, payload in source.payloads(start_v + 1, last_v):
                yield v, loads(payload)

    def result(findings: tuple[Finding, ...]) -> LogResult:
        if doubles:
            info["big_ints_as_doubles"] = True
        return LogResult(log, findings, info)

    try:
        sa = _side("a", lambda: fold.start(a, snapshot).state)
        sb = _side("b", lambda: fold.start(b, snapshot).state)
        ok, na, nb = same(sa, sb)
        if not ok:
            event = fold.init_event() if start_v == 0 else None
            return result((_finding(start_v, event, na, nb, which, doubles),))
        steps_a = _guarded("a", a.steps(sa, events()))
        steps_b = _guarded("b", b.steps(sb, events()))
        for (v, event, sa), (_, _, sb) in zip(steps_a, steps_b, strict=True):
            ok, na, nb = same(sa, sb)
            if not ok:
                return result((_finding(v, event, na, nb, which, doubles),))
    except _Raised as raised:
        error = raised.error
        finding = Finding(
            kind="exception",
            v=error.v,
            event=error.event,
            detail=f"{which[raised.side]} raised:\n{error.traceback.rstrip()}",
            extra={"reducer": which[raised.side]},
        )
        return result((finding,))
    return result(())


class _Raised(Exception):
    def __init__(self, side: str, error: ReplayError) -> None:
        super().__init__(str(error))
        self.side = side
        self.error = error


def _side(side: str, call: Any) -> Any:
    try:
        return call()
    except ReplayError as error:
        raise _Raised(side, error) from None


def _guarded(side: str, steps: Iterator[Any]) -> Iterator[Any]:
    try:
        yield from steps
    except ReplayError as error:
        raise _Raised(side, error) from None


def _finding(v: int, event: Any, sa: Any, sb: Any, which: dict[str, str], doubles: bool) -> Finding:
    note = f"--reducer {which['a']} → --against {which['b']}"
    if doubles:
        note += "; integers beyond ±2^53 were compared as the doubles JavaScript holds for them"
    return Finding(
        kind="reducer-divergence",
        v=v,
        event=event,
        diff=diff(sa, sb, with_old=True),
        detail=f"after v={v} the two reducers hold different states (they agreed on every "
        "event before)",
        note=note,
        help="if the change is intended (a migration), regenerate the recorded hashes or "
        "tests that cover this event; otherwise the refactor changed behaviour here",
        extra={"diff_label": "diff (--reducer → --against)"},
    )
