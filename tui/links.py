"""The Logux links of a row read from a log: an action's answer, an answer's action, a sync's
``synced`` and back (the rules are :mod:`devtools.logux_links`'s; this module finds the other
record near the selected one, blocking — call it from a worker thread).

Nothing is stored for the links: an answer follows its action and a ``synced`` its ``sync``,
so each is looked for from the selected record on, forward or backward (in pages of
:data:`PAGE` keys), at most :data:`REACH` keys away — an offline backlog of N actions puts each
answer about N events after its action. Events are searched in their stored bytes for the id's
JSON text and only the ones holding it decoded (12,000 events away: about 50 ms).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from typing import Any

from devtools.jsonutil import dumps
from devtools.logux_links import (
    Link,
    action_id,
    answered_id,
    confirms_key,
    sync_key,
)
from devtools.model import Event, Message

PAGE = 2_000
"""Keys read per step of a backward look-up."""
REACH = 200_000
"""How many events (or messages) away a linked record is looked for."""


def log_links(reader: Any, record: Event | Message, *, logux: bool = True) -> list[Link]:
    """The records linked to ``record`` in the log ``reader`` reads.

    Args:
        logux: whether the recording's events are Logux actions (only then does an action's
            answer get looked for: any other log would be scanned in vain).
    """
    if isinstance(record, Message):
        return _message_links(reader, record)
    answered = answered_id(record.event)
    if answered is not None:
        before = _backward(lambda lo, hi: reader.event_payloads(lo, hi), record.v - 1, 1)
        found = _with_id(reader, answered, before, action_id)
        return [Link("answers", found)] if found is not None else []
    ident = action_id(record.event)
    if ident is None or not logux:
        return []
    with closing(reader.event_payloads(record.v + 1, record.v + REACH)) as after:
        found = _with_id(reader, ident, after, answered_id)  # (closed: it holds a connection)
    return [Link("answered by", found)] if found is not None else []


def _with_id(
    reader: Any, ident: str, payloads: Iterable[tuple[int, bytes]], key: Callable[[Any], Any]
) -> Event | None:
    """The first event of ``payloads`` (``(v, stored bytes)``) whose ``key`` is ``ident``: the
    bytes are searched for the id's JSON text, and only the events holding it are decoded."""
    needle = dumps(ident)
    for v, payload in payloads:
        if needle in payload:
            event = reader.event(v)
            if event is not None and key(event.event) == ident:
                return event
    return None


def _message_links(reader: Any, message: Message) -> list[Link]:
    key = sync_key(message)
    other = "out" if message.direction == "in" else "in"
    if key is not None:
        later = reader.messages(
            message.seq + 1, message.seq + REACH, connection=message.connection, direction=other
        )
        with closing(later):
            found = _first(later, lambda m: confirms_key(m) == key)
        return [Link("confirmed by", found)] if found is not None else []
    key = confirms_key(message)
    if key is None:
        return []

    def page(lo: int, hi: int) -> Iterable[Message]:
        return reader.messages(lo, hi, connection=message.connection, direction=other)

    found = _first(_backward(page, message.seq - 1, 1), lambda m: sync_key(m) == key)
    return [Link("confirms", found)] if found is not None else []


def _backward(page: Callable[[int, int], Iterable[Any]], start: int, first: int) -> Iterator[Any]:
    """The records from key ``start`` down to ``first`` (at most :data:`REACH`), newest first."""
    hi = start
    bottom = max(first, start - REACH + 1)
    while hi >= bottom:
        lo = max(bottom, hi - PAGE + 1)
        yield from reversed(list(page(lo, hi)))
        hi = lo - 1


def _first(records: Iterable[Any], match: Callable[[Any], bool]) -> Any:
    for record in records:
        if match(record):
            return record
    return None
