"""The replay engine: state at any ``v`` with checkpoints, diff, bisect and what-if.

``Replay.open(log, reducer=...)`` binds a log (a path/URL, a ``Log`` or a ``LogReader``), a
reducer and a source. The hot loop walks the store's pages of event bytes (``orjson.loads`` +
the reducer, split only where a checkpoint may fall); states after multiples of K are
serialised once as checkpoints (written to the log by a background thread), as often as their
measured cost allows (:class:`~replayer.checkpoints.Pacing`: at most a small share of the
replay, and never more than ~60 ms of reductions apart), so after the first pass the state at
any ``v`` costs one checkpoint load plus the reductions since it: K when states are cheap to
serialise, a multiple of K when they are large. The engine never imports asyncio or SQLAlchemy: it
only calls ``LogReader`` methods.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from replayer import fold
from replayer.bisect import BisectResult, checkpoint_window
from replayer.checkpoints import CheckpointCache, checkpoint_key, encode_state, load_state
from replayer.diff import diff as diff_states
from replayer.diff import equal
from replayer.errors import PredicateError, ReplayError, VersionOutOfRange
from replayer.fold import ReducerRuntime
from replayer.order import Ordering
from replayer.predicate import Predicate
from replayer.runtimes import load_runtime
from replayer.source import MessageSource, chunks, open_source
from replayer.whatif import WhatIfResult

PERSIST_AFTER = 20_000
"""Logs with at least this many events persist their checkpoints in the log."""


class Replay:
    """A reducer bound to one recording's replay source."""

    def __init__(
        self,
        reader: Any,
        reducer: ReducerRuntime | Callable[[Any, Any], Any],
        *,
        source: str = "auto",
        checkpoint_every: int = 1000,
        progress: bool = False,
        persist_after: int = PERSIST_AFTER,
        owned_log: Any = None,
        allow_empty: bool = False,
        order: str = "v",
    ) -> None:
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be at least 1")
        self.reader = reader
        self.reducer: ReducerRuntime = load_runtime(reducer)
        """The reducer behind the fold seam (Python or JavaScript)."""
        self.every = checkpoint_every
        self.progress = progress
        self._owned_log = owned_log
        self._owns_reducer = False
        try:
            self.source = open_source(reader, source, allow_empty=allow_empty, order=order)
        except ValueError as error:
            raise VersionOutOfRange(str(error)) from None
        self.order = order
        """``v`` or ``logux`` (:mod:`replayer.order`)."""
        self.ordering: Ordering | None = getattr(self.source, "ordering", None)
        """The fold's steps ↔ recorded ``v`` (``None`` in ``v`` order: a step is its ``v``)."""
        self.skipped_messages = self.source.skipped
        """Flagged inbound messages the ``messages`` source left out."""
        self.base_v, self.initial_state = self._start()
        self._first = self.base_v + 1
        self._last = max(self.source.last_v or 0, self.base_v)
        # What ``v`` numbers a caller may name (recorded ones, whatever the order):
        if self.ordering is None:
            self.first_v, self.last_v = self._first, self._last
        else:
            recorded = self.ordering.vs
            self.first_v = min(recorded) if recorded else self._first
            self.last_v = max(recorded) if recorded else self._last
        start_bytes = encode_state(self.initial_state, self.base_v)
        self._initial_bytes = start_bytes
        self.key = checkpoint_key(
            self.reducer.identity(), self.every, self.source.kind, start_bytes
        )
        persist = self._last - self.base_v >= persist_after
        self.checkpoints = CheckpointCache(reader, self.key, persist=persist)
        self._built_to = self.checkpoints.last or self.base_v

    # ---- opening

    @classmethod
    def open(
        cls,
        log: str | Path | Any,
        *,
        reducer: str | Callable[[Any, dict], Any],
        recording: int | str | None = None,
        source: str = "auto",
        checkpoint_every: int = 1000,
        progress: bool = False,
        persist_after: int = PERSIST_AFTER,
        allow_empty: bool = False,
        order: str = "v",
    ) -> Replay:
        """Open a replay over ``log``'s recording (the latest by default).

        Args:
            log: a log path or URL, an open ``devtools.store.Log``, or a ``LogReader``.
            reducer: a reference (``pkg.mod:attr``, ``path/file.py:attr``) or the callable.
            recording: a recording id or name; ``None`` takes the latest.
            source: ``auto`` (events when the log has them, else messages), ``events`` or
                ``messages``.
            checkpoint_every: K: checkpoints fall on multiples of K (every one when states
                are cheap to serialise; paced further apart when they are not).
            progress: show a Rich progress bar on stderr during long replays.
            persist_after: persist checkpoints in the log when it has this many events.
            allow_empty: replay a recording without events (from the initial state) instead
                of raising :class:`~devtools.errors.EmptyRecording`.
            order: ``v`` (as recorded) or ``logux`` (Logux's order, :mod:`replayer.order`):
                every ``v`` given or returned is still a recorded one; the state "at ``v``"
                is the state after the events up to and including ``v`` in that order.

        Raises:
            ReducerLoadError: the reducer cannot be loaded.
            LogError: the log cannot be opened, or the recording does not exist.
            ReplayError: the reducer raised on the initial ``@@INIT`` event.
        """
        runtime = load_runtime(reducer)
        owned = None
        if isinstance(log, str | Path):
            from devtools.store import Log

            owned = log = Log.open(log)
        try:
            reader = log.reader(recording) if hasattr(log, "reader") else log
            if recording is not None and not hasattr(log, "reader"):
                reader = reader.log.reader(recording)
            replay = cls(
                reader,
                runtime,
                source=source,
                checkpoint_every=checkpoint_every,
                progress=progress,
                persist_after=persist_after,
                owned_log=owned,
                allow_empty=allow_empty,
                order=order,
            )
        except BaseException:
            if owned is not None:
                owned.close()
            if isinstance(reducer, str):
                runtime.close()
            raise
        replay._owns_reducer = isinstance(reducer, str)
        return replay

    def close(self) -> None:
        """Persist pending checkpoints and close the log if this replay opened it."""
        self.checkpoints.close()
        if self._owns_reducer:
            self.reducer.close()
            self._owns_reducer = False
        if self._owned_log is not None:
            self._owned_log.close()
            self._owned_log = None

    def __enter__(self) -> Replay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> tuple[int, Any]:
        begin = fold.start(self.reducer, fold.start_snapshot(self.reader, self.source))
        return begin.v, begin.state

    # ---- events, and the fold's steps (a step is its v, except in another order)

    def step_of(self, v: int) -> int:
        """The fold step of recorded ``v`` (``base_v``: the start state's step).

        Raises:
            VersionOutOfRange: in another order than ``v``, a ``v`` that is no event.
        """
        if self.ordering is None or v == self.base_v:
            return v
        step = self.ordering.step(v)
        if step is None:
            raise VersionOutOfRange(f"v={v} is not an event of this recording")
        return step

    def v_at(self, step: int) -> int:
        """The recorded ``v`` of fold step ``step`` (the inverse of :meth:`step_of`)."""
        if self.ordering is None or step == self.base_v:
            return step
        return self.ordering.v(step)

    @property
    def final_v(self) -> int:
        """The recorded ``v`` of the event folded last (``last_v`` in ``v`` order)."""
        return self.v_at(self._last)

    def previous_v(self, v: int) -> int:
        """The recorded ``v`` of the event folded just before ``v`` (``base_v`` for the first):
        what ``v`` changed is the diff from the state at this one."""
        step = self.step_of(v)
        return self.v_at(step - 1) if step > self.base_v else self.base_v

    def check_v(self, v: int, what: str = "v") -> int:
        """``v`` itself when the replay has a state after it.

        Raises:
            VersionOutOfRange: it is outside ``base_v .. last_v`` (in another order than
                ``v``: it is neither ``base_v`` nor an event).
        """
        if not self.base_v <= v <= self.last_v:
            if self.last_v == self.base_v:
                span = f"it has no events after v={self.base_v}"
            else:
                span = f"events run from v={self.first_v} to v={self.last_v}"
            raise VersionOutOfRange(f"{what}={v} is out of range: {span}")
        if self.ordering is not None and v != self.base_v and self.ordering.step(v) is None:
            raise VersionOutOfRange(f"{what}={v} is not an event of this recording")
        return v

    def events(
        self, from_v: int | None = None, to_v: int | None = None
    ) -> Iterator[tuple[int, Any]]:
        """``(v, event)`` of the replay source, decoded, in the replay's order: from event
        ``from_v`` to event ``to_v`` (recorded numbers; in another order than ``v``, the
        events folded between those two)."""
        lo = self._first if from_v is None else max(self.step_of(from_v), self._first)
        hi = self._last if to_v is None else min(self.step_of(to_v), self._last)
        for step, event in self.steps(lo, hi):
            yield self.v_at(step), event

    def steps(self, from_step: int, to_step: int) -> Iterator[tuple[int, Any]]:
        """``(step, event)`` of fold steps ``from_step..to_step`` (see :meth:`step_of`)."""
        lo, hi = max(from_step, self._first), min(to_step, self._last)
        if lo > hi:
            return
        for chunk in chunks(self.source.payloads(lo, hi)):
            yield from chunk

    def event(self, v: int) -> Any:
        """The event numbered ``v`` (``None`` for the start state's ``v``)."""
        if v <= self.base_v:
            return None
        return self.source.event(self.step_of(self.check_v(v)))

    def _event_at(self, step: int) -> Any:
        return None if step <= self.base_v else self.source.event(step)

    @contextmanager
    def recorded_numbers(self) -> Iterator[None]:
        """A :class:`ReplayError` raised inside names the recorded ``v``, not the fold step."""
        try:
            yield
        except ReplayError as error:
            if self.ordering is None or error.v <= self.base_v:
                raise
            raise ReplayError(
                self.v_at(error.v), error.event, error.error, error.traceback
            ) from None

    # ---- folding (in steps)

    def _fold(self, state: Any, from_v: int, to_v: int, *, checkpoint: bool = False) -> Any:
        """Apply steps ``from_v..to_v`` to ``state`` and return the new state.

        With ``checkpoint`` the states after multiples of K are recorded, as often as
        :class:`~replayer.checkpoints.Pacing` allows.
        """
        bar = self._progress(from_v, to_v) if checkpoint else None
        try:
            with self.recorded_numbers():
                _, state = self.reducer.fold_pages(
                    state,
                    self.source.loaded_pages(from_v, to_v),
                    every=self.every if checkpoint else 0,
                    sink=self.checkpoints if checkpoint else None,
                    progress=bar,
                )
        finally:
            if bar is not None:
                bar.close()
        return state

    def _progress(self, from_v: int, to_v: int) -> _Bar | None:
        if not self.progress or to_v - from_v < 5 * self.every or not sys.stderr.isatty():
            return None
        return _Bar(from_v, to_v)

    def _build(self, v: int) -> Any:
        """Replay from the last checkpoint up to step ``v``, recording checkpoints on the way."""
        start = self.checkpoints.last
        state = self.checkpoints.state(start) if start is not None else self._initial()
        state = self._fold(state, (start or self.base_v) + 1, v, checkpoint=True)
        self._built_to = max(self._built_to, v)
        return state

    def _initial(self) -> Any:
        return load_state(self._initial_bytes)

    def _seek(self, v: int) -> Any:
        """The state after step ``v``."""
        if v > self._built_to:
            return self._build(v)
        start = self.checkpoints.at_or_before(v)
        if start is None or start < self.base_v:
            state, start = self._initial(), self.base_v
        else:
            state = self.checkpoints.state(start)
        if start < v:
            state = self._fold(state, start + 1, v)
        return state

    # ---- the API (recorded v numbers in and out)

    def state_at(self, v: int | None = None) -> Any:
        """The state after event ``v`` (``None``: after the last); a fresh object each call.
        In another order than ``v``: after the events up to and including ``v`` in it.

        Raises:
            VersionOutOfRange: ``v`` is not in ``base_v .. last_v``.
            ReplayError: the reducer raised.
        """
        return self._seek(self._last if v is None else self.step_of(self.check_v(v)))

    def build(self) -> None:
        """Replay the whole log once so that every later seek starts from a near checkpoint."""
        if self._built_to < self._last:
            self._build(self._last)

    def diff(self, a: int, b: int) -> list[dict[str, Any]]:
        """The RFC 6902 patch turning the state after ``a`` into the state after ``b``."""
        self.check_v(a, "A")
        self.check_v(b, "B")
        return diff_states(self.state_at(a), self.state_at(b))

    def bisect(
        self, expr: str | Predicate, *, good: int | None = None, bad_at: int | None = None
    ) -> BisectResult:
        """The first ``v`` after which ``expr`` (over ``state``, ``event``, ``v``) holds.

        The predicate is taken as monotone: false up to some event, true from it on (in the
        replay's order). It is evaluated at ``bad_at`` (default: the last event), at O(log n)
        checkpoints, then after each event of one checkpoint window (K events, or a multiple
        when paced).

        Raises:
            BadExpression: ``expr`` does not compile.
            PredicateError: it raised (the message names the ``v``), or it already holds at
                ``good``.
            VersionOutOfRange: ``good`` or ``bad_at`` is out of range.
        """
        predicate = expr if isinstance(expr, Predicate) else Predicate.compile(expr)
        lo = self.base_v if good is None else self.step_of(self.check_v(good, "--good"))
        hi = self._last if bad_at is None else self.step_of(self.check_v(bad_at, "--bad-at"))
        if hi <= lo:
            raise VersionOutOfRange(
                f"--bad-at={self.v_at(hi)} must come after --good={self.v_at(lo)}"
            )
        self.build()

        def at(state: Any, event: Any, step: int) -> bool:
            return predicate(state, event, self.v_at(step))

        if not at(self._seek(hi), self._event_at(hi), hi):
            return BisectResult(v=None, checkpoints_touched=1)
        if good is not None and at(self._seek(lo), self._event_at(lo), lo):
            raise PredicateError(f"the --bad expression already holds at --good={good}", good)

        def holds(step: int) -> bool:
            return at(self.checkpoints.state(step), self._event_at(step), step)

        left, right, touched = checkpoint_window(lo, hi, self.checkpoints.vs, holds)
        with self.recorded_numbers():
            hit = fold.first_where(self.reducer, self._seek(left), self.steps(left + 1, right), at)
        if hit is None:  # cannot happen for a deterministic reducer: it held at ``right``
            raise PredicateError(
                f"the --bad expression held at v={self.v_at(right)} but not when replayed "
                "again (is the reducer deterministic?)",
                self.v_at(right),
            )
        return BisectResult(
            v=self.v_at(hit.v),
            event=hit.event,
            diff=diff_states(hit.before, hit.after),
            checkpoints_touched=touched + 2,
            reductions=hit.reductions,
        )

    def what_if(self, skip: Iterable[int]) -> WhatIfResult:
        """Replay without the events in ``skip``; compare with the recorded timeline.

        Raises:
            VersionOutOfRange: a skipped ``v`` is not an event of the log.
            ReplayError: the reducer raised on the what-if timeline.
        """
        skipped = sorted(set(skip))
        if not skipped:
            raise VersionOutOfRange("--skip needs at least one event number")
        for v in skipped:
            if not self.first_v <= v <= self.last_v:
                raise VersionOutOfRange(
                    f"--skip={v} is out of range: events run from v={self.first_v} "
                    f"to v={self.last_v}"
                )
        steps = sorted(self.step_of(self.check_v(v, "--skip")) for v in skipped)
        self.build()
        first = steps[0]
        with self.recorded_numbers():
            timelines = fold.what_if(
                self.reducer,
                self._seek(first - 1),
                self.steps(first, self._last),
                steps,
                original_to_end=False,
            )
        final = self._seek(self._last)
        divergent = timelines.first_divergent_v
        return WhatIfResult(
            skipped=skipped,
            first_divergent_v=None if divergent is None else self.v_at(divergent),
            diff=diff_states(final, timelines.alternative, with_old=True),
            state=timelines.alternative,
        )

    def what_if_insert(self, after: int, action: Any) -> WhatIfResult:
        """Replay with the hypothetical ``action`` reduced right after event ``after``; compare
        the final state with the recorded one.

        The timelines part at ``after`` when the action changes the state (a deterministic
        reducer then folds the same events from different states); else they never do.

        Raises:
            VersionOutOfRange: ``after`` is not ``base_v .. last_v``.
            ReplayError: the reducer raised (on the action, at ``v = after``, or later).
        """
        step = self.step_of(self.check_v(after, "--insert-after"))
        self.build()
        before = self._seek(step)
        alternative = self.reducer.step(self._copy(before), after, action)
        diverged = not equal(before, alternative)
        if diverged and step < self._last:
            with self.recorded_numbers():
                rest = self.steps(step + 1, self._last)
                _, alternative = fold.fold(self.reducer, alternative, rest)
        final = self._seek(self._last)
        return WhatIfResult(
            skipped=[],
            first_divergent_v=after if diverged else None,
            diff=diff_states(final, alternative, with_old=True) if diverged else [],
            state=alternative if diverged else final,
            inserted=[{"after": after, "action": action}],
        )

    def _copy(self, state: Any) -> Any:
        return load_state(encode_state(state, 0))

    @property
    def source_kind(self) -> str:
        """``events`` or ``messages``."""
        return self.source.kind

    @property
    def uses_messages(self) -> bool:
        return isinstance(self.source, MessageSource)


class _Bar:
    """A Rich progress bar on stderr, advanced once per decoded chunk."""

    def __init__(self, from_v: int, to_v: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self.from_v = from_v
        self.progress = Progress(
            "replaying",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.task = self.progress.add_task("replay", total=to_v - from_v + 1)
        self.progress.start()

    def advance(self, v: int) -> None:
        self.progress.update(self.task, completed=v - self.from_v + 1)

    def close(self) -> None:
        self.progress.stop()
