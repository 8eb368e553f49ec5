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
from pathlib import Path
from typing import Any

from replayer import fold
from replayer.bisect import BisectResult, checkpoint_window
from replayer.checkpoints import CheckpointCache, checkpoint_key, encode_state, load_state
from replayer.diff import diff as diff_states
from replayer.diff import equal
from replayer.errors import PredicateError, VersionOutOfRange
from replayer.fold import ReducerRuntime
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
            self.source = open_source(reader, source, allow_empty=allow_empty)
        except ValueError as error:
            raise VersionOutOfRange(str(error)) from None
        self.skipped_messages = self.source.skipped
        """Flagged inbound messages the ``messages`` source left out."""
        self.base_v, self.initial_state = self._start()
        self.first_v = self.base_v + 1
        self.last_v = max(self.source.last_v or 0, self.base_v)
        start_bytes = encode_state(self.initial_state, self.base_v)
        self._initial_bytes = start_bytes
        self.key = checkpoint_key(
            self.reducer.identity(), self.every, self.source.kind, start_bytes
        )
        persist = self.last_v - self.base_v >= persist_after
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

    # ---- events

    def check_v(self, v: int, what: str = "v") -> int:
        """``v`` itself when the replay has a state after it.

        Raises:
            VersionOutOfRange: it is outside ``base_v .. last_v``.
        """
        if not self.base_v <= v <= self.last_v:
            if self.last_v == self.base_v:
                span = f"it has no events after v={self.base_v}"
            else:
                span = f"events run from v={self.first_v} to v={self.last_v}"
            raise VersionOutOfRange(f"{what}={v} is out of range: {span}")
        return v

    def events(
        self, from_v: int | None = None, to_v: int | None = None
    ) -> Iterator[tuple[int, Any]]:
        """``(v, event)`` of the replay source, decoded, in order."""
        lo = self.first_v if from_v is None else max(from_v, self.first_v)
        hi = self.last_v if to_v is None else min(to_v, self.last_v)
        if lo > hi:
            return
        for chunk in chunks(self.source.payloads(lo, hi)):
            yield from chunk

    def event(self, v: int) -> Any:
        """The event numbered ``v`` (``None`` for the start state's ``v``)."""
        if v <= self.base_v:
            return None
        return self.source.event(self.check_v(v))

    # ---- folding

    def _fold(self, state: Any, from_v: int, to_v: int, *, checkpoint: bool = False) -> Any:
        """Apply events ``from_v..to_v`` to ``state`` and return the new state.

        With ``checkpoint`` the states after multiples of K are recorded, as often as
        :class:`~replayer.checkpoints.Pacing` allows.
        """
        bar = self._progress(from_v, to_v) if checkpoint else None
        try:
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
        """Replay from the last checkpoint up to ``v``, recording checkpoints on the way."""
        start = self.checkpoints.last
        state = self.checkpoints.state(start) if start is not None else self._initial()
        state = self._fold(state, (start or self.base_v) + 1, v, checkpoint=True)
        self._built_to = max(self._built_to, v)
        return state

    def _initial(self) -> Any:
        return load_state(self._initial_bytes)

    def _seek(self, v: int) -> Any:
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

    # ---- the API

    def state_at(self, v: int | None = None) -> Any:
        """The state after event ``v`` (``None``: the last); a fresh object each call.

        Raises:
            VersionOutOfRange: ``v`` is not in ``base_v .. last_v``.
            ReplayError: the reducer raised.
        """
        return self._seek(self.last_v if v is None else self.check_v(v))

    def build(self) -> None:
        """Replay the whole log once so that every later seek starts from a near checkpoint."""
        if self._built_to < self.last_v:
            self._build(self.last_v)

    def diff(self, a: int, b: int) -> list[dict[str, Any]]:
        """The RFC 6902 patch turning the state after ``a`` into the state after ``b``."""
        self.check_v(a, "A")
        self.check_v(b, "B")
        return diff_states(self.state_at(a), self.state_at(b))

    def bisect(
        self, expr: str | Predicate, *, good: int | None = None, bad_at: int | None = None
    ) -> BisectResult:
        """The first ``v`` after which ``expr`` (over ``state``, ``event``, ``v``) holds.

        The predicate is taken as monotone: false up to some event, true from it on. It is
        evaluated at ``bad_at`` (default: the last event), at O(log n) checkpoints, then after
        each event of one checkpoint window (K events, or a multiple when paced).

        Raises:
            BadExpression: ``expr`` does not compile.
            PredicateError: it raised (the message names the ``v``), or it already holds at
                ``good``.
            VersionOutOfRange: ``good`` or ``bad_at`` is out of range.
        """
        predicate = expr if isinstance(expr, Predicate) else Predicate.compile(expr)
        lo = self.base_v if good is None else self.check_v(good, "--good")
        hi = self.last_v if bad_at is None else self.check_v(bad_at, "--bad-at")
        if hi <= lo:
            raise VersionOutOfRange(f"--bad-at={hi} must come after --good={lo}")
        self.build()
        if not predicate(self.state_at(hi), self.event(hi), hi):
            return BisectResult(v=None, checkpoints_touched=1)
        if good is not None and predicate(self.state_at(lo), self.event(lo), lo):
            raise PredicateError(f"the --bad expression already holds at --good={lo}", lo)

        def holds(v: int) -> bool:
            return predicate(self.checkpoints.state(v), self.source.event(v), v)

        left, right, touched = checkpoint_window(lo, hi, self.checkpoints.vs, holds)
        hit = fold.first_where(
            self.reducer, self.state_at(left), self.events(left + 1, right), predicate
        )
        if hit is None:  # cannot happen for a deterministic reducer: it held at ``right``
            raise PredicateError(
                f"the --bad expression held at v={right} but not when replayed again "
                "(is the reducer deterministic?)",
                right,
            )
        return BisectResult(
            v=hit.v,
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
        self.build()
        first = skipped[0]
        timelines = fold.what_if(
            self.reducer,
            self.state_at(first - 1),
            self.events(first, self.last_v),
            skipped,
            original_to_end=False,
        )
        final = self.state_at(self.last_v)
        return WhatIfResult(
            skipped=skipped,
            first_divergent_v=timelines.first_divergent_v,
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
        self.check_v(after, "--insert-after")
        self.build()
        before = self.state_at(after)
        alternative = self.reducer.step(self._copy(before), after, action)
        diverged = not equal(before, alternative)
        if diverged and after < self.last_v:
            _, alternative = fold.fold(self.reducer, alternative, self.events(after + 1))
        final = self.state_at(self.last_v)
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
