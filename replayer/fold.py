"""One fold for every replay: where a replay starts, the ``@@INIT`` event, and folding events.

Every replay in rdt — the engine's state at ``v``, bisect's last window, what-if, ``rdt
compare``, verify's warm-up, the TUI's live mode — folds events through a reducer from a start
state. This module owns that rule once:

- **Where a replay starts** (:func:`start_snapshot`, :func:`start`): a log of server events
  whose first event follows a recorded snapshot (the recorder joined a running server) starts
  from that snapshot; everything else starts from ``reducer(None, {"type": "@@INIT"})``, which
  is the reducer's initial state (``v = 0``).
- **The reducer behind one seam** (:class:`ReducerRuntime`): a Python callable
  (:class:`PyReducer`) or a JavaScript reducer run in a Node worker
  (:class:`replayer.jsreducer.JsReducer`) — same methods, same errors. The engine's hot loop
  hands a runtime whole store pages of undecoded event bytes (:meth:`ReducerRuntime.fold_pages`);
  everything else walks decoded ``(v, event)`` pairs (:meth:`ReducerRuntime.steps`).
- **The folds** over plain ``(v, event)`` iterables: :func:`fold`, :func:`first_where`,
  :func:`what_if`. A reducer that raises becomes :class:`~replayer.errors.ReplayError` with the
  ``v``, the event and the reducer's own traceback (or JavaScript stack), never a bare exception.

Nothing here does I/O of its own; a runtime may (the Node worker's pipes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from time import thread_time
from typing import Any, Protocol

from devtools.jsonutil import dumps, loads
from replayer.checkpoints import Pacing
from replayer.diff import equal
from replayer.errors import ReplayError
from replayer.source import Loader, segments

INIT_TYPE = "@@INIT"
"""The type of the event that asks a reducer for its initial state."""

Page = Sequence[tuple[int, bytes]]
"""Store rows ``(v, the event's JSON bytes)`` in ``v`` order."""


def init_event() -> dict[str, str]:
    """A fresh ``{"type": "@@INIT"}`` (a reducer may keep or change the object it is given)."""
    return {"type": INIT_TYPE}


class CheckpointSink(Protocol):
    """Where a fold puts the states after multiples of K (a
    :class:`~replayer.checkpoints.CheckpointCache`)."""

    def add(self, v: int, state: Any) -> None: ...

    def add_encoded(self, v: int, data: bytes) -> None: ...

    def flush(self) -> None: ...


class Progress(Protocol):
    def advance(self, v: int) -> None: ...


class ReducerRuntime(Protocol):
    """A reducer as every replay drives it: Python in this process, or JavaScript in Node."""

    ref: str | None
    """The reference it was loaded from (``None`` for a callable handed over directly)."""
    language: str
    """``python`` or ``javascript``."""

    def initial(self) -> Any:
        """``reducer(None, @@INIT)``. Raises ReplayError (``v = 0``)."""
        ...

    def step(self, state: Any, v: int, event: Any) -> Any:
        """One reduction. Raises ReplayError."""
        ...

    def steps(
        self, state: Any, events: Iterable[tuple[int, Any]]
    ) -> Iterator[tuple[int, Any, Any]]:
        """``(v, event, state after it)`` for each event, folding from ``state``."""
        ...

    def fold_pages(
        self,
        state: Any,
        pages: Iterable[tuple[Page, Loader]],
        *,
        every: int = 0,
        sink: CheckpointSink | None = None,
        progress: Progress | None = None,
    ) -> tuple[int | None, Any]:
        """Fold whole store pages (the replay's hot loop); ``(last v applied, state)``.

        With ``sink``, states after multiples of ``every`` go to it, as often as their
        measured cost allows (:class:`~replayer.checkpoints.Pacing`).
        """
        ...

    def what_if(
        self,
        state: Any,
        events: Iterable[tuple[int, Any]],
        skip: Iterable[int],
        *,
        original_to_end: bool = True,
    ) -> Timelines:
        """See :func:`what_if`."""
        ...

    def identity(self) -> bytes:
        """Bytes that change whenever the reducer's code may have changed (checkpoint keys)."""
        ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------- the start state


@dataclass(frozen=True, slots=True)
class Start:
    """Where a replay starts: the state after ``v`` (``0``: the initial state)."""

    v: int
    state: Any
    snapshot: bool
    """Whether ``state`` is a recorded snapshot (else the reducer's ``@@INIT`` state)."""


def start_snapshot(reader: Any, source: Any) -> Any:
    """The recorded snapshot a replay of ``source`` starts from, or ``None``.

    Only a replay of the server's own events can start from one: the snapshot at or before the
    source's first event (the join snapshot of a recorder that attached to a running server).
    """
    if source.kind != "events" or source.first_v is None:
        return None
    return reader.snapshot_at_or_before(source.first_v)


def start(reducer: ReducerRuntime, snapshot: Any = None) -> Start:
    """The start state: a fresh copy of ``snapshot``'s state, else ``reducer.initial()``.

    Raises:
        ReplayError: the reducer raised on ``@@INIT``.
    """
    if snapshot is not None:
        return Start(snapshot.v, loads(dumps(snapshot.state)), True)
    return Start(0, reducer.initial(), False)


# --------------------------------------------------------------------------- the Python runtime


class PyReducer:
    """A Python ``reducer(state, event) -> state`` behind the :class:`ReducerRuntime` seam."""

    language = "python"

    def __init__(self, func: Callable[[Any, Any], Any], ref: str | None = None) -> None:
        self.func = func
        self.ref = ref

    def __repr__(self) -> str:
        return f"PyReducer({self.ref or getattr(self.func, '__qualname__', self.func)!r})"

    def initial(self) -> Any:
        event = init_event()
        try:
            return self.func(None, event)
        except Exception as error:
            raise ReplayError.from_exception(0, event, error) from None

    def step(self, state: Any, v: int, event: Any) -> Any:
        try:
            return self.func(state, event)
        except Exception as error:
            raise ReplayError.from_exception(v, event, error) from None

    def steps(
        self, state: Any, events: Iterable[tuple[int, Any]]
    ) -> Iterator[tuple[int, Any, Any]]:
        func = self.func
        for v, event in events:
            try:
                state = func(state, event)
            except Exception as error:
                raise ReplayError.from_exception(v, event, error) from None
            yield v, event, state

    def fold_pages(
        self,
        state: Any,
        pages: Iterable[tuple[Page, Loader]],
        *,
        every: int = 0,
        sink: CheckpointSink | None = None,
        progress: Progress | None = None,
    ) -> tuple[int | None, Any]:
        func = self.func
        checkpoint = sink is not None and every > 0
        pacing = Pacing(thread_time())
        v: int | None = None
        try:
            for page, loads_page in pages:
                for segment in segments(page, every) if checkpoint else (page,):
                    # The hot loop: the same shape as a hand-written one.
                    for v, payload in segment:
                        event = loads_page(payload)
                        try:
                            state = func(state, event)
                        except Exception as error:
                            raise ReplayError.from_exception(v, event, error) from None
                    if checkpoint and v is not None and v % every == 0:
                        began = thread_time()
                        if pacing.due(began):
                            sink.add(v, state)  # type: ignore[union-attr]
                            pacing.taken(began, thread_time())
                if progress is not None and v is not None:
                    progress.advance(v)
        finally:
            if sink is not None:
                sink.flush()
        return v, state

    def what_if(
        self,
        state: Any,
        events: Iterable[tuple[int, Any]],
        skip: Iterable[int],
        *,
        original_to_end: bool = True,
    ) -> Timelines:
        return what_if_by_steps(self, state, events, skip, original_to_end=original_to_end)

    def identity(self) -> bytes:
        from replayer.loader import reducer_identity

        return reducer_identity(self.func, self.ref)

    def close(self) -> None:
        """Nothing to release."""


# --------------------------------------------------------------------------- the folds


def fold(
    reducer: ReducerRuntime, state: Any, events: Iterable[tuple[int, Any]]
) -> tuple[int | None, Any]:
    """Apply ``events`` to ``state``; ``(the last v applied or None, the state)``.

    Raises:
        ReplayError: the reducer raised (with the ``v`` and the event).
    """
    last: int | None = None
    for v, _event, after in reducer.steps(state, events):
        last, state = v, after
    return last, state


@dataclass(frozen=True, slots=True)
class Hit:
    """The first event after which a predicate holds."""

    v: int
    event: Any
    before: Any
    """The state before that event."""
    after: Any
    """The state after it."""
    reductions: int
    """Events reduced to find it."""


def first_where(
    reducer: ReducerRuntime,
    state: Any,
    events: Iterable[tuple[int, Any]],
    predicate: Callable[[Any, Any, int], bool],
) -> Hit | None:
    """The first event after which ``predicate(state, event, v)`` holds, folding from ``state``.

    Returns ``None`` when it never holds (every event was reduced).

    Raises:
        ReplayError: the reducer raised.
    """
    before = state
    for count, (v, event, after) in enumerate(reducer.steps(state, events), 1):
        if predicate(after, event, v):
            return Hit(v, event, before, after, count)
        before = after
    return None


@dataclass(frozen=True, slots=True)
class Timelines:
    """The recorded timeline and the what-if one, folded side by side."""

    first_divergent_v: int | None
    """The first ``v`` after which the two states differ, or ``None``."""
    original: Any
    """The recorded timeline's final state."""
    alternative: Any
    """The what-if timeline's final state."""


def what_if(
    reducer: ReducerRuntime,
    state: Any,
    events: Iterable[tuple[int, Any]],
    skip: Iterable[int],
    *,
    original_to_end: bool = True,
) -> Timelines:
    """Fold ``events`` twice from ``state``: as recorded, and without the events in ``skip``.

    Args:
        original_to_end: also fold the recorded timeline after the two have diverged; without
            it ``original`` is ``None`` once they differ (a caller that has the recorded final
            state at hand saves half the reductions).

    Raises:
        ReplayError: the reducer raised on either timeline.
    """
    return reducer.what_if(state, events, skip, original_to_end=original_to_end)


def what_if_by_steps(
    reducer: ReducerRuntime,
    state: Any,
    events: Iterable[tuple[int, Any]],
    skip: Iterable[int],
    *,
    original_to_end: bool = True,
) -> Timelines:
    """:func:`what_if` one reduction at a time, comparing the states after every event."""
    skipped = set(skip)
    original = alternative = state
    divergent: int | None = None
    for v, event in events:
        if divergent is None or original_to_end:
            original = reducer.step(original, v, event)
        if v not in skipped:
            alternative = reducer.step(alternative, v, event)
        if divergent is None and original is not alternative and not equal(original, alternative):
            divergent = v
    if divergent is not None and not original_to_end:
        original = None
    return Timelines(divergent, original, alternative)
