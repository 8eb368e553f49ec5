"""Which Logux records answer which: the links the TUI's Cause tab follows. Pure; no I/O.

Two rules of Logux's protocol (``@logux/core`` 0.10, ``@logux/server`` 0.14):

- an **answer** — an event of type ``logux/processed`` or ``logux/undo`` — names the action it
  answers by its ``id``: that action's Logux id, which ``rdt record --protocol logux`` stores
  absolute as the action event's ``meta.id`` (:func:`answered_id`, :func:`action_id`);
- a ``["synced", added]`` message confirms the ``["sync", added, …]`` that went the other way
  on the same connection before it (:func:`sync_key`, :func:`confirms_key`).

The links are derived when read, never stored: a log holds the records, this module says how
they pair. :class:`LinkIndex` keeps them for records held in memory (the live feed); a log's
reader looks them up near the record (``tui.links``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devtools.model import Event, Message

ANSWERS = ("logux/processed", "logux/undo")
"""The event types that answer an action."""

_ADDED = re.compile(rb'\A\s*\[\s*"(sync|synced)"\s*,\s*(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*[,\]]')


def answered_id(event: Any) -> str | None:
    """The Logux id of the action an answer event answers (``None``: not an answer)."""
    if not isinstance(event, dict) or event.get("type") not in ANSWERS:
        return None
    ident = event.get("id")
    return ident if isinstance(ident, str) else None


def action_id(event: Any) -> str | None:
    """The Logux id (``meta.id``) of an action event that answers may name (``None``: an
    answer itself, or no Logux id)."""
    if not isinstance(event, dict) or event.get("type") in ANSWERS:
        return None
    meta = event.get("meta")
    ident = meta.get("id") if isinstance(meta, dict) else None
    return ident if isinstance(ident, str) else None


def added_of(message: Message) -> tuple[str, float] | None:
    """``("sync", added)`` or ``("synced", added)`` of a Logux message, read from the first
    bytes of its frame (a backlog ``sync`` is never parsed whole); ``None`` for others."""
    if message.type not in ("sync", "synced") or message.binary or message.flag is not None:
        return None
    match = _ADDED.match(bytes(message.payload[:96]))
    if match is None:
        return None
    return match.group(1).decode(), float(match.group(2))


def sync_key(message: Message) -> tuple[int, str, float] | None:
    """What pairs a ``sync`` with its ``synced``: (connection, the sync's direction, added)."""
    found = added_of(message)
    if found is None or found[0] != "sync":
        return None
    return message.connection, message.direction, found[1]


def confirms_key(message: Message) -> tuple[int, str, float] | None:
    """The :func:`sync_key` of the ``sync`` a ``synced`` message confirms (``None``: not a
    ``synced``)."""
    found = added_of(message)
    if found is None or found[0] != "synced":
        return None
    return message.connection, "out" if message.direction == "in" else "in", found[1]


@dataclass(frozen=True, slots=True)
class Link:
    """One record linked to the selected one, and how."""

    label: str
    """``answered by``, ``answers``, ``confirmed by`` or ``confirms``."""
    record: Event | Message


@dataclass(slots=True)
class LinkIndex:
    """The links among records added in order (the live feed's), by Logux id and sync key."""

    _actions: dict[str, int] = field(default_factory=dict)
    """Action id → its ``v``."""
    _answers: dict[str, int] = field(default_factory=dict)
    """Action id → the ``v`` of its answer."""
    _syncs: dict[tuple[int, str, float], int] = field(default_factory=dict)
    """Sync key → the ``seq`` of the latest such ``sync``."""
    _synced: dict[int, int] = field(default_factory=dict)
    """``seq`` of a ``sync`` → the ``seq`` of the ``synced`` that confirmed it."""
    _confirms: dict[int, int] = field(default_factory=dict)
    """``seq`` of a ``synced`` → the ``seq`` of the ``sync`` it confirms."""

    def add_event(self, event: Event) -> None:
        ident = action_id(event.event)
        if ident is not None:
            self._actions.setdefault(ident, event.v)
            return
        answered = answered_id(event.event)
        if answered is not None:
            self._answers.setdefault(answered, event.v)

    def add_message(self, message: Message) -> None:
        key = sync_key(message)
        if key is not None:
            self._syncs[key] = message.seq
            return
        key = confirms_key(message)
        if key is not None and key in self._syncs:
            sync = self._syncs.pop(key)
            self._synced[sync] = message.seq
            self._confirms[message.seq] = sync

    def answer_of(self, event: Event) -> int | None:
        """The ``v`` of the answer to action ``event``."""
        ident = action_id(event.event)
        return None if ident is None else self._answers.get(ident)

    def action_of(self, event: Event) -> int | None:
        """The ``v`` of the action answer ``event`` answers."""
        ident = answered_id(event.event)
        return None if ident is None else self._actions.get(ident)

    def synced_of(self, message: Message) -> int | None:
        """The ``seq`` of the ``synced`` that confirmed ``sync`` message ``message``."""
        return self._synced.get(message.seq)

    def sync_of(self, message: Message) -> int | None:
        """The ``seq`` of the ``sync`` that ``synced`` message ``message`` confirms."""
        return self._confirms.get(message.seq)

    def links(
        self,
        record: Event | Message,
        event_at: Callable[[int], Event | None],
        message_at: Callable[[int], Message | None],
    ) -> list[Link]:
        """The records linked to ``record``, fetched by ``v`` / ``seq`` with the callables."""
        if isinstance(record, Message):
            pairs = [("confirmed by", self.synced_of(record)), ("confirms", self.sync_of(record))]
            found = [(label, message_at(seq)) for label, seq in pairs if seq is not None]
        else:
            pairs = [("answered by", self.answer_of(record)), ("answers", self.action_of(record))]
            found = [(label, event_at(v)) for label, v in pairs if v is not None]
        return [Link(label, other) for label, other in found if other is not None]
