"""Where the replay's events come from: the recorded events, or the parsed client messages.

A source hands the engine ``(v, payload bytes)`` in order, one by one or in pages, and decodes
them in chunks. :class:`EventSource` reads the log's events (the server's own numbering, or
events derived from messages by ``rdt record --events-from inbound`` / pulled from a table by
``rdt import-events``). Asked for explicitly (``--source messages``), :class:`MessageSource`
numbers the inbound client messages that parsed ``v = 1, 2, 3 …`` in ``seq`` order, skipping
(and counting) the flagged ones. Both only call :class:`devtools.store.LogReader` methods.
With ``--order logux``, :class:`OrderedSource` hands the recorded events over in Logux's
order (:mod:`replayer.order`), numbered by their step in it.

The rule for a recording without events lives here, in :func:`open_source`, and only here:
``auto`` never falls back to the client messages (folding commands through an event reducer
prints a state, or a verdict, that means nothing); it raises
:class:`~devtools.errors.EmptyRecording` (exit 3, :func:`devtools.errors.refuse_empty`, which the
Redux export shares) unless the caller allows an empty recording.
"""

from __future__ import annotations

import bisect
import itertools
from array import array
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from operator import itemgetter
from typing import Any, Protocol

import orjson

from devtools.errors import BadInput, refuse_empty
from devtools.jsonutil import DIGIT_RUN
from devtools.jsonutil import loads as exact_loads
from replayer.order import Ordering, check_order, logux_ordering

CHUNK = 512

# Digits and "-" become "1", everything else a space: orjson keeps integers in
# [-2**63, 2**64) exact, so only a run of DIGIT_RUN such characters can hide an integer it would
# turn into a float. (A long all-digit id with dashes also matches: that chunk just takes the
# exact path.)
_DIGITS = bytes(ord("1") if (48 <= i <= 57 or i == 45) else ord(" ") for i in range(256))
_BIG = b"1" * DIGIT_RUN
_V = itemgetter(0)


def may_hold_big_int(data: bytes) -> bool:
    """Whether ``data`` may hold an integer ``orjson.loads`` would not keep exact (one C scan)."""
    return _BIG in data.translate(_DIGITS)


def chunk_loads(rows: list[tuple[int, bytes]]) -> Callable[[bytes], Any]:
    """The JSON loader that is exact for every payload of ``rows``.

    One C-level scan of the whole chunk decides whether the fast ``orjson.loads`` is exact;
    only a chunk that may hold a huge integer goes through :func:`devtools.jsonutil.loads`.
    """
    return exact_loads if may_hold_big_int(b"\n".join([p for _, p in rows])) else orjson.loads


def segments(page: list[tuple[int, bytes]], every: int) -> Iterator[list[tuple[int, bytes]]]:
    """Consecutive slices of ``page`` (rows in ``v`` order), each ending at the last row whose
    ``v`` is at or before the next multiple of ``every``: the engine checks for a checkpoint
    once per slice instead of once per row."""
    start, end = 0, len(page)
    while start < end:
        boundary = -(-page[start][0] // every) * every
        stop = bisect.bisect_right(page, boundary, lo=start, hi=end, key=_V)
        yield page[start:stop]
        start = stop


def raw_chunks(
    rows: Iterable[tuple[int, bytes]], size: int = CHUNK
) -> Iterator[tuple[list[tuple[int, bytes]], Callable[[bytes], Any]]]:
    """Chunks of at most ``size`` undecoded rows, each with its exact loader."""
    for batch in batched(rows, size):
        yield batch, chunk_loads(batch)


def batched(
    rows: Iterable[tuple[int, bytes]], size: int = CHUNK
) -> Iterator[list[tuple[int, bytes]]]:
    """Lists of at most ``size`` rows."""
    iterator = iter(rows)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def chunks(rows: Iterable[tuple[int, bytes]], size: int = CHUNK) -> Iterator[list[tuple[int, Any]]]:
    """Decoded chunks of at most ``size`` rows."""
    for batch, loads in raw_chunks(rows, size):
        yield [(v, loads(payload)) for v, payload in batch]


Loader = Callable[[bytes], Any]


class Source(Protocol):
    kind: str
    first_v: int | None
    last_v: int | None

    def payloads(self, from_v: int, to_v: int) -> Iterator[tuple[int, bytes]]: ...

    def loaded_pages(
        self, from_v: int, to_v: int
    ) -> Iterator[tuple[list[tuple[int, bytes]], Loader]]: ...

    def event(self, v: int) -> Any: ...


class EventSource:
    """The recorded events."""

    kind = "events"

    def __init__(self, reader: Any) -> None:
        self.reader = reader
        self.first_v: int | None = reader.first_v()
        self.last_v: int | None = reader.last_v()
        self.skipped = 0

    def payloads(self, from_v: int, to_v: int) -> Iterator[tuple[int, bytes]]:
        return self.reader.event_payloads(from_v, to_v)

    def loaded_pages(
        self, from_v: int, to_v: int
    ) -> Iterator[tuple[list[tuple[int, bytes]], Loader]]:
        """Store pages, each with its exact loader: the replay's hot path."""
        for page in self.reader.event_payload_pages(from_v, to_v):
            yield page, chunk_loads(page)

    def event(self, v: int) -> Any:
        found = self.reader.event(v)
        return None if found is None else found.event


class MessageSource:
    """The inbound client messages that parsed, numbered 1, 2, 3 … in ``seq`` order.

    Opening scans the inbound messages once to map each ``v`` to its ``seq``.
    """

    kind = "messages"

    def __init__(self, reader: Any) -> None:
        self.reader = reader
        self.seqs = array("q")
        self.skipped = 0
        for message in reader.messages(direction="in"):
            if message.flag is None and not message.binary:
                self.seqs.append(message.seq)
            else:
                self.skipped += 1
        self.first_v: int | None = 1 if self.seqs else None
        self.last_v: int | None = len(self.seqs) or None

    def payloads(self, from_v: int, to_v: int) -> Iterator[tuple[int, bytes]]:
        from_v, to_v = max(from_v, 1), min(to_v, len(self.seqs))
        if from_v > to_v:
            return
        v = from_v
        for message in self.reader.messages(
            self.seqs[from_v - 1], self.seqs[to_v - 1], direction="in"
        ):
            if message.flag is None and not message.binary:
                yield v, message.payload
                v += 1

    def loaded_pages(
        self, from_v: int, to_v: int
    ) -> Iterator[tuple[list[tuple[int, bytes]], Loader]]:
        """Pages, each with its exact loader."""
        for page in batched(self.payloads(from_v, to_v), 2 * CHUNK):
            yield page, chunk_loads(page)

    def event(self, v: int) -> Any:
        if not 1 <= v <= len(self.seqs):
            return None
        message = self.reader.message(self.seqs[v - 1])
        return None if message is None else exact_loads(message.payload)


class OrderedSource:
    """The recorded events in another order than ``v``: step ``1 … n`` is the event
    ``ordering.v(step)``; rows carry the step, so checkpoints fall on steps.

    Opening reads every event once (its meta) to sort them (:mod:`replayer.order`).
    """

    def __init__(self, events: EventSource, ordering: Ordering) -> None:
        self.events = events
        self.ordering = ordering
        self.kind = f"events/{ordering.order}:{ordering.digest}"
        """Keys the checkpoints: never shared with another order, nor another permutation."""
        self.skipped = 0
        n = len(ordering)
        self.first_v: int | None = 1 if n else None
        self.last_v: int | None = n or None

    @classmethod
    def logux(cls, events: EventSource) -> OrderedSource:
        """The events in Logux's order.

        Raises:
            NotLogux: an event without a Logux meta.
        """

        def metas() -> Iterator[tuple[int, Any]]:
            if events.last_v is None:
                return
            for page, loads in events.loaded_pages(events.first_v or 1, events.last_v):
                for v, payload in page:
                    event = loads(payload)
                    yield v, event.get("meta") if type(event) is dict else None

        with closing(metas()) as walk:  # NotLogux midway: the store's page reader ends now
            return cls(events, logux_ordering(walk))

    def _rows(self, from_step: int, to_step: int) -> Iterator[list[tuple[int, bytes]]]:
        """Rows ``(step, payload)`` of steps ``from_step..to_step``, a page at a time: each
        page's events are read by ``v`` in runs (few queries when the orders mostly agree)."""
        lo, hi = max(from_step, 1), min(to_step, len(self.ordering))
        vs = self.ordering.vs
        reader = self.events.reader
        for start in range(lo, hi + 1, 2 * CHUNK):
            wanted = vs[start - 1 : min(start - 1 + 2 * CHUNK, hi)]
            found: dict[int, bytes] = {}
            for first, last in _runs(sorted(wanted)):
                found.update(reader.event_payloads(first, last))
            yield [(start + i, found[v]) for i, v in enumerate(wanted)]

    def payloads(self, from_v: int, to_v: int) -> Iterator[tuple[int, bytes]]:
        for page in self._rows(from_v, to_v):
            yield from page

    def loaded_pages(
        self, from_v: int, to_v: int
    ) -> Iterator[tuple[list[tuple[int, bytes]], Loader]]:
        """Pages of ``(step, payload)``, each with its exact loader."""
        for page in self._rows(from_v, to_v):
            yield page, chunk_loads(page)

    def event(self, v: int) -> Any:
        """The event folded at step ``v``."""
        if not 1 <= v <= len(self.ordering):
            return None
        return self.events.event(self.ordering.v(v))


RUN_GAP = 64
"""Events not needed that a run read may step over rather than start another query."""


def _runs(vs: list[int]) -> Iterator[tuple[int, int]]:
    """``(first, last)`` ranges covering the sorted ``vs``, joined across small holes."""
    if not vs:
        return
    first = last = vs[0]
    for v in vs[1:]:
        if v - last > RUN_GAP:
            yield first, last
            first = v
        last = v
    yield first, last


def open_source(
    reader: Any, kind: str, *, allow_empty: bool = False, order: str = "v"
) -> EventSource | MessageSource | OrderedSource:
    """The source ``kind`` (``auto``, ``events`` or ``messages``) over ``reader``.

    ``auto`` and ``events`` take the recorded events; ``messages`` the parsed client messages.
    A recording without events is refused unless ``kind`` is ``messages`` or ``allow_empty``
    (then the empty event source: the state is the initial one). ``order`` ``logux`` hands
    the events over in Logux's order (:class:`OrderedSource`).

    Raises:
        ValueError: an unknown kind.
        BadInput: an unknown order, or ``logux`` with ``messages``.
        NotLogux: ``logux`` over events without Logux metas.
        EmptyRecording: ``auto``/``events`` over a recording with no events, not allowed.
    """
    if kind not in ("auto", "events", "messages"):
        raise ValueError(f"--source must be auto, events or messages, not {kind!r}")
    if check_order(order) != "v" and kind == "messages":
        raise BadInput("--order logux orders the recorded events, not --source messages")
    if kind == "messages":
        return MessageSource(reader)
    events = EventSource(reader)
    refuse_empty(reader.recording, events.last_v, allow_empty=allow_empty)
    if order == "logux":
        return OrderedSource.logux(events)
    return events
