"""Pure rules of ``rdt import-events``: table rows into events, the presets, the bad-row rules.

A row is a mapping of column name to value, as the database driver gives it. :class:`Layout`
says which column is what; :func:`row_event` turns one row into an :class:`~devtools.model.Event`
or a :class:`BadRow` (named by its key), given the ``v`` imported before it. No I/O here: the
reading, paging and writing are :mod:`devtools.import_events`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from devtools import jsonutil
from devtools.errors import BadInput
from devtools.model import Event

TS_UNITS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}
"""Integer ``--ts-column`` values in these units become integer nanoseconds."""

BAD_ROW_KINDS = (
    "payload-not-json",
    "payload-not-object",
    "no-type",
    "bad-v",
    "v-backwards",
    "v-repeats",
    "bad-ts",
)


@dataclass(frozen=True, slots=True)
class Layout:
    """Which columns of an event table are what."""

    v_column: str | None = "v"
    """Numbers the events (integers >= 1, strictly increasing in ``order_by`` order); ``None``:
    rdt numbers the rows 1, 2, 3 … in ``order_by`` order (then ``order_by`` must be unique)."""
    type_column: str = "type"
    payload_column: str | None = "payload"
    """A JSON column (text, bytes or a driver's decoded JSON) holding the event's fields."""
    payload_key: str | None = None
    """``None``: the payload's fields are merged into the event; else the payload goes under
    this key (reSolve's events carry ``payload``)."""
    ts_column: str | None = None
    ts_unit: str = "ns"
    """Unit of an integer ``ts_column`` (a datetime column is converted exactly)."""
    sender_column: str | None = None
    columns: tuple[str, ...] = ()
    """More columns copied into the event under their own names."""
    order_by: tuple[str, ...] = ()
    """The keyset: read order and resume key (default: the ``v`` column)."""

    @property
    def key(self) -> tuple[str, ...]:
        """The columns rows are read in order of, and resumed after."""
        if self.order_by:
            return self.order_by
        if self.v_column is None:
            raise BadInput("without --v-column, --order-by must name a unique key")
        return (self.v_column,)

    def needed(self) -> tuple[str, ...]:
        """Every column read, once each, in a stable order."""
        names = [self.v_column, self.type_column, self.payload_column, self.ts_column]
        names += [self.sender_column, *self.columns, *self.key]
        return tuple(dict.fromkeys(n for n in names if n is not None))

    def check(self) -> Layout:
        """This layout, checked (raises ``BadInput``)."""
        if self.ts_unit not in TS_UNITS:
            raise BadInput(f"--ts-unit must be one of {', '.join(TS_UNITS)}, not {self.ts_unit!r}")
        _ = self.key
        return self


@dataclass(frozen=True, slots=True)
class Preset:
    """A known table layout; explicit options override its fields."""

    name: str
    layout: Layout
    table: str | None
    """The usual table name (``--table`` may still be given)."""
    doc: str


PRESETS: dict[str, Preset] = {
    "row-per-event": Preset(
        "row-per-event",
        Layout(v_column="id", type_column="type", payload_column="payload", ts_column=None),
        None,
        "One row per event: an integer id numbering the events, a type, a JSON payload whose "
        "fields are the event's (a salesOrder_events table fed to a Redux store).",
    ),
    "resolve": Preset(
        "resolve",
        Layout(
            v_column=None,
            type_column="type",
            payload_column="payload",
            payload_key="payload",
            ts_column="timestamp",
            ts_unit="ms",
            columns=("aggregateId", "aggregateVersion", "timestamp"),
            order_by=("timestamp", "threadCounter", "threadId"),
        ),
        "events",
        "The reSolve event store (@resolve-js/eventstore-postgresql): columns threadId, "
        "threadCounter, timestamp (ms), aggregateId, aggregateVersion, type, payload (JSON), "
        "eventSize; primary key (threadId, threadCounter). It has no global sequence column, so "
        "rdt numbers the events in (timestamp, threadCounter, threadId) order, the order reSolve "
        "loads them in. Events keep reSolve's shape: {type, aggregateId, aggregateVersion, "
        "timestamp, payload}. Read from reimagined/resolve, "
        "packages/adapters/eventstore-adapters/eventstore-postgresql/src/init-events.ts.",
    ),
}
"""``--preset NAME``. The reSolve column names come from reSolve's own table definition:
github.com/reimagined/resolve, ``packages/adapters/eventstore-adapters/eventstore-postgresql/
src/init-events.ts`` (``CREATE TABLE … ("threadId", "threadCounter", "timestamp", "aggregateId",
"aggregateVersion", "type", "payload", "eventSize", PRIMARY KEY("threadId", "threadCounter"))``).
"""


def preset_layout(name: str | None, **overrides: Any) -> tuple[Layout, str | None]:
    """The layout of preset ``name`` (``None``: the defaults) with the given fields replaced
    where not ``None``, and the preset's usual table.

    Raises:
        BadInput: an unknown preset.
    """
    if name is None:
        base, table = Layout(), None
    else:
        preset = PRESETS.get(name)
        if preset is None:
            raise BadInput(f"--preset must be one of {', '.join(PRESETS)}, not {name!r}")
        base, table = preset.layout, preset.table
    changes = {k: v for k, v in overrides.items() if v is not None and v != ()}
    return replace(base, **changes).check(), table


@dataclass(frozen=True, slots=True)
class BadRow:
    """A row that is not an event: which row (its key), which rule, and why."""

    key: tuple[Any, ...]
    kind: str
    """One of :data:`BAD_ROW_KINDS`."""
    detail: str

    def describe(self, layout: Layout) -> str:
        """``row id=17: payload is not JSON (…)`` — one line."""
        named = ", ".join(f"{c}={_short(v)}" for c, v in zip(layout.key, self.key, strict=False))
        return f"row {named}: {self.detail}"


@dataclass(slots=True)
class Tally:
    """What an import did (mutable, the I/O shell counts into it)."""

    imported: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    first_bad: list[str] = field(default_factory=list)
    """The first few skipped rows, described."""

    def skip(self, bad: BadRow, layout: Layout, keep: int = 5) -> None:
        self.skipped[bad.kind] = self.skipped.get(bad.kind, 0) + 1
        if len(self.first_bad) < keep:
            self.first_bad.append(bad.describe(layout))

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _ts_ns(value: Any, unit: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("a boolean")
    if isinstance(value, int):
        return value * TS_UNITS[unit]
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        delta = value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value) * TS_UNITS[unit]
    raise ValueError(f"not a time: {_short(value)}")


def _payload(value: Any) -> Any:
    """The payload column's JSON value (raises ``ValueError`` when it is not JSON)."""
    if value is None:
        return None
    if isinstance(value, memoryview):
        value = bytes(value)
    if isinstance(value, bytes | bytearray | str):
        return jsonutil.loads(value)
    if isinstance(value, dict | list):  # a driver that decodes json/jsonb itself
        return value
    raise ValueError(f"a {type(value).__name__}")


def _json_value(value: Any) -> Any:
    """A column value as the event holds it (JSON types only)."""
    if value is None or isinstance(value, bool | int | float | str | list | dict):
        return value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return str(value)  # Decimal, UUID …


def row_key(row: Mapping[str, Any], layout: Layout) -> tuple[Any, ...]:
    """The row's keyset key."""
    return tuple(row[c] for c in layout.key)


def row_event(row: Mapping[str, Any], layout: Layout, last_v: int, t_ns: int) -> Event | BadRow:
    """One table row as the next event after ``last_v``, or why it is not one.

    The event object is ``{"type", …payload fields (or payload under payload_key), …copied
    columns, "v", "ts" (with a ts column), "sender" (with a sender column)}``; the type column
    wins over a payload ``type``. ``t_ns`` is the event's stored time when the row has no ts.
    """
    key = row_key(row, layout)
    if layout.v_column is None:
        v = last_v + 1
    else:
        raw_v = row[layout.v_column]
        if isinstance(raw_v, str) and raw_v.isdigit():
            raw_v = int(raw_v)
        if not isinstance(raw_v, int) or isinstance(raw_v, bool) or raw_v < 1:
            return BadRow(
                key, "bad-v", f"{layout.v_column} is not an integer >= 1: {_short(raw_v)}"
            )
        v = raw_v
        if v == last_v:
            return BadRow(key, "v-repeats", f"v={v} repeats the v imported before it")
        if v < last_v:
            return BadRow(key, "v-backwards", f"v={v} goes backwards (after v={last_v})")
    kind = row[layout.type_column]
    if isinstance(kind, bytes):
        kind = kind.decode("utf-8", "replace")
    if not isinstance(kind, str) or not kind:
        return BadRow(key, "no-type", f"{layout.type_column} is empty: {_short(kind)}")
    event: dict[str, Any] = {"type": kind}
    if layout.payload_column is not None:
        try:
            payload = _payload(row[layout.payload_column])
        except ValueError as error:
            detail = str(error).splitlines()[0] if str(error) else "invalid"
            return BadRow(
                key, "payload-not-json", f"{layout.payload_column} is not JSON ({_short(detail)})"
            )
        if layout.payload_key is not None:
            event[layout.payload_key] = payload
        elif payload is not None:
            if not isinstance(payload, dict):
                return BadRow(
                    key,
                    "payload-not-object",
                    f"{layout.payload_column} is not a JSON object to merge: {_short(payload)}",
                )
            event.update({k: val for k, val in payload.items() if k != "type"})
    for column in layout.columns:
        event[column] = _json_value(row[column])
    event["v"] = v
    ts = t_ns
    if layout.ts_column is not None:
        try:
            found = _ts_ns(row[layout.ts_column], layout.ts_unit)
        except ValueError as error:
            return BadRow(key, "bad-ts", f"{layout.ts_column} is {error}")
        if found is not None:
            ts = found
            event["ts"] = found
    if layout.sender_column is not None:
        event["sender"] = _json_value(row[layout.sender_column])
    return Event(v, kind, event, None, None, ts)


def key_json(key: Sequence[Any]) -> list[Any]:
    """A keyset key as JSON (kept in the recording's server info to resume after it)."""
    return [_json_value(k) for k in key]
