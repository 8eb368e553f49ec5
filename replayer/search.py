"""Search through history: the events at which a value, a match or a predicate changes.

A *probe* observes one thing of each state: the value at a JSON Pointer (:class:`PathProbe`),
whether a regex matches a line of the state as indented JSON (:class:`GrepProbe`, the rule in
:mod:`replayer.grep`) or whether a Python predicate over ``state`` and ``event`` holds
(:class:`WhereProbe`). :func:`changes` walks ``(v, event, state after)`` triples and yields a
:class:`Change` at every event after which the probe's observation differs from the one before
— a pointer's value appears, disappears or changes; a match starts or stops; a predicate flips.

:func:`search` runs it over a :class:`~replayer.engine.Replay` in one pass: from the state
before ``--from`` (a checkpoint plus a few reductions), folding the events once. A Python
reducer is folded inline over the store's pages (the replay's hot loop plus one probe call an
event); any other runtime (a JavaScript reducer in Node) through ``runtime.steps``.

Pure: no I/O of its own (the replay reads the log).
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from devtools.errors import BadInput
from replayer import grep
from replayer.diff import equal, split_pointer
from replayer.errors import ReplayError
from replayer.fold import PyReducer
from replayer.predicate import Predicate


class _Absent:
    """The observation of a pointer that leads nowhere (distinct from JSON ``null``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()
"""What :class:`PathProbe` observes where its pointer leads nowhere."""


class Probe(Protocol):
    """What a search watches: one observation of each state."""

    kind: str
    """``path``, ``grep`` or ``where``."""
    text: str
    """The pointer, regex or expression as the user wrote it."""

    def __call__(self, state: Any, event: Any, v: int) -> Any:
        """The observation of the state after ``v`` (``event`` is ``None`` at the start)."""
        ...

    def observer(self) -> Callable[[Any, Any, int], Any]:
        """The same observation for one pass over consecutive states: it may keep what it saw
        of the state before (``--grep`` does) and is called once per state, in order."""
        ...


@dataclass(frozen=True, slots=True)
class PathProbe:
    """The value at a JSON Pointer (RFC 6901), or :data:`ABSENT`."""

    text: str
    tokens: tuple[str, ...]
    kind: str = "path"

    @classmethod
    def parse(cls, pointer: str) -> PathProbe:
        """Raises BadInput: ``pointer`` is not empty and does not start with ``/``."""
        if pointer and not pointer.startswith("/"):
            raise BadInput(f"--path takes a JSON Pointer like /orders/o1/total; got {pointer!r}")
        return cls(pointer, tuple(split_pointer(pointer)))

    def observer(self) -> Callable[[Any, Any, int], Any]:
        return self

    def __call__(self, state: Any, event: Any, v: int) -> Any:
        value = state
        for token in self.tokens:
            kind = type(value)
            if kind is dict:
                value = value.get(token, ABSENT)
                if value is ABSENT:
                    return ABSENT
            elif kind is list:
                if not token.isdigit() or (len(token) > 1 and token[0] == "0"):
                    return ABSENT
                index = int(token)
                if index >= len(value):
                    return ABSENT
                value = value[index]
            else:
                return ABSENT
        return value


@dataclass(frozen=True, slots=True)
class GrepProbe:
    """Whether a regex matches at least one line of the state as indented JSON (the rule:
    :mod:`replayer.grep`; a match never spans lines)."""

    text: str
    pattern: re.Pattern[str]
    kind: str = "grep"

    @classmethod
    def parse(cls, regex: str, *, option: str = "--grep") -> GrepProbe:
        """Raises BadInput: ``regex`` does not compile (``option`` names it in the message)."""
        try:
            return cls(regex, re.compile(regex))
        except re.error as error:
            raise BadInput(f"{option} {regex!r} is not a valid regex: {error}") from None

    def __call__(self, state: Any, event: Any, v: int) -> bool:
        """Writes every line of ``state`` (one state; a pass uses :meth:`observer`)."""
        return grep.count_matches(self.pattern, state) > 0

    def observer(self) -> Callable[[Any, Any, int], bool]:
        """Keeps the matching lines' count from one state to the next, walking what changed."""
        return grep.line_matches(self.pattern).observe


@dataclass(frozen=True, slots=True)
class WhereProbe:
    """Whether a Python expression over ``state``, ``event`` and ``v`` holds (the user's own
    code, like ``--reducer``; recorded data only reaches it as values)."""

    text: str
    predicate: Predicate
    function: Callable[[Any, Any, int], Any]
    """The same expression as a function of ``(state, event, v)``: a call an event instead of
    an ``eval`` (the search's hot loop)."""
    kind: str = "where"

    @classmethod
    def parse(cls, expr: str, *, option: str = "--where") -> WhereProbe:
        """Raises BadExpression: ``expr`` does not compile (``option`` names it in messages)."""
        predicate = Predicate.compile(expr, option=option)
        source = f"lambda state, event, v: ({expr.strip()}\n)"
        function = eval(  # noqa: S307 - the user's own expression, checked by compile above
            compile(source, f"<{option}>", "eval"), {"__builtins__": builtins}
        )
        return cls(expr, predicate, function)

    def observer(self) -> Callable[[Any, Any, int], Any]:
        return self

    def __call__(self, state: Any, event: Any, v: int) -> bool:
        try:
            return bool(self.function(state, event, v))
        except Exception:
            return self.predicate(state, event, v)  # raises PredicateError naming v


def probe(*, path: str | None = None, grep: str | None = None, where: str | None = None) -> Probe:
    """The probe for exactly one of ``path``, ``grep``, ``where``.

    Raises:
        BadInput: none or more than one is given, or the one given is malformed.
    """
    given = [(k, t) for k, t in (("path", path), ("grep", grep), ("where", where)) if t is not None]
    if len(given) != 1:
        raise BadInput("search needs exactly one of --path, --grep, --where")
    kind, text = given[0]
    if kind == "path":
        return PathProbe.parse(text)
    if kind == "grep":
        return GrepProbe.parse(text)
    return WhereProbe.parse(text)


def parse_query(text: str) -> Probe:
    """The TUI's search line: ``/pointer`` (path), ``re:REGEX`` (grep), else an expression.

    Raises:
        BadInput: empty or malformed.
    """
    text = text.strip()
    if not text:
        raise BadInput("enter /pointer, re:REGEX or an expression over state and event")
    if text.startswith("/"):
        return PathProbe.parse(text)
    if text.startswith("re:"):
        return GrepProbe.parse(text[3:], option="re:")
    return WhereProbe.parse(text, option="search")


@dataclass(frozen=True, slots=True)
class Change:
    """The observation changed with event ``v``: ``old`` before it, ``new`` after it."""

    v: int
    old: Any
    new: Any
    type: str | None = None
    """The event's type (shown beside the change; not part of the JSON line)."""

    def to_json(self) -> dict[str, Any]:
        """``{"v", "old", "new"}``; a side where a pointer led nowhere is left out."""
        doc: dict[str, Any] = {"v": self.v}
        if self.old is not ABSENT:
            doc["old"] = self.old
        if self.new is not ABSENT:
            doc["new"] = self.new
        return doc

    @property
    def what(self) -> str:
        """``appears``, ``disappears`` or ``changes`` (path); ``starts``/``stops`` otherwise."""
        if self.old is ABSENT:
            return "appears"
        if self.new is ABSENT:
            return "disappears"
        if self.new is True and self.old is False:
            return "starts"
        if self.new is False and self.old is True:
            return "stops"
        return "changes"


def _differs(old: Any, new: Any) -> bool:
    return old is not new and not equal(old, new)


def changes(
    watch: Probe, start: tuple[int, Any], steps: Iterable[tuple[int, Any, Any]]
) -> Iterator[Change]:
    """The events after which ``watch``'s observation differs from the one before.

    Args:
        watch: the probe.
        start: ``(v, state)`` the steps fold from (observed with ``event=None``).
        steps: ``(v, event, state after)`` in order.
    """
    observe = watch.observer()
    old = observe(start[1], None, start[0])
    for v, event, state in steps:
        new = observe(state, event, v)
        if _differs(old, new):
            kind = event.get("type") if type(event) is dict else None
            yield Change(v, old, new, kind if type(kind) is str else None)
            old = new
        elif new is not old:
            old = new


@dataclass(frozen=True, slots=True)
class Span:
    """The events a search walks: after ``start_v`` (whose state it starts from) to ``to_v``,
    recorded numbers; ``first_v`` is the first event walked. The same as the fold's steps
    (:meth:`replayer.engine.Replay.step_of`; equal to the numbers in ``v`` order)."""

    start_v: int
    to_v: int
    start_step: int
    to_step: int
    first_v: int


def span(replay: Any, from_v: int | None, to_v: int | None) -> Span:
    """Check ``--from``/``--to`` against the replay (recorded numbers; in another order than
    ``v``, the events folded from ``--from`` to ``--to``).

    Raises:
        VersionOutOfRange: either is outside the log, or ``--from`` comes after ``--to``.
    """
    from replayer.errors import VersionOutOfRange

    first = replay.base_v + 1
    lo = first if from_v is None else replay.step_of(replay.check_v(from_v, "--from"))
    hi = replay.final_v if to_v is None else replay.check_v(to_v, "--to")
    hi_step = replay.step_of(hi)
    if lo > hi_step:
        raise VersionOutOfRange(f"--from={from_v} comes after --to={hi}")
    start = max(lo, first) - 1
    walked = replay.v_at(start + 1) if start < hi_step else start + 1
    return Span(replay.v_at(start), hi, start, hi_step, walked)


def search(
    replay: Any,
    watch: Probe,
    *,
    from_v: int | None = None,
    to_v: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[Change]:
    """The changes of ``watch`` over ``replay``'s events ``from_v..to_v``, in one pass.

    Args:
        progress: called with the last step folded (its ``v`` in ``v`` order), about once
            per thousand events.

    Raises:
        VersionOutOfRange: ``from_v``/``to_v`` out of range (raised before the first change).
        ReplayError: the reducer raised. PredicateError: a ``--where`` expression raised.
    """
    where = span(replay, from_v, to_v)
    return _search(replay, watch, where, progress)


def _search(
    replay: Any, watch: Probe, where: Span, progress: Callable[[int], None] | None
) -> Iterator[Change]:
    state = replay.state_at(where.start_v)
    if where.to_step <= where.start_step:
        return
    runtime = replay.reducer
    lo, hi = where.start_step + 1, where.to_step
    if isinstance(runtime, PyReducer):
        steps = _page_steps(runtime.func, state, replay.source.loaded_pages(lo, hi), progress)
    else:
        steps = _progress_steps(runtime.steps(state, replay.steps(lo, hi)), progress)
    if replay.ordering is not None:
        steps = ((replay.v_at(step), event, after) for step, event, after in steps)
    with replay.recorded_numbers():
        yield from changes(watch, (where.start_v, state), steps)


def _page_steps(
    func: Callable[[Any, Any], Any],
    state: Any,
    pages: Iterable[tuple[Any, Callable[[bytes], Any]]],
    progress: Callable[[int], None] | None,
) -> Iterator[tuple[int, Any, Any]]:
    """The replay's hot loop over store pages, yielding each state (Python reducers)."""
    for page, loads_page in pages:
        for v, payload in page:
            event = loads_page(payload)
            try:
                state = func(state, event)
            except Exception as error:
                raise ReplayError.from_exception(v, event, error) from None
            yield v, event, state
        if progress is not None and page:
            progress(page[-1][0])


def _progress_steps(
    steps: Iterator[tuple[int, Any, Any]], progress: Callable[[int], None] | None
) -> Iterator[tuple[int, Any, Any]]:
    if progress is None:
        yield from steps
        return
    for count, item in enumerate(steps, 1):
        if count % 1000 == 0:
            progress(item[0])
        yield item
