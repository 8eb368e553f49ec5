"""The order a replay folds events in: ``v`` (as recorded) or ``logux`` (as a Logux log would).

``v`` is the order the recorder numbered the events: for a Logux recording the order it first
saw each action. A Logux node applies actions in another order: its log is sorted by
``@logux/core``'s ``isFirstOlder`` (``is-first-older/index.js``, ``@logux/core`` 0.10), so an
action created offline an hour ago and synced now is older than one created a minute ago. That
rule, copied exactly, is :func:`logux_key`: ``meta.time`` first, then the parts of the id
``"<time> <node> <counter>"`` — the node id (compared as JavaScript compares strings: by UTF-16
code units), the counter, the id's own time (both read as ``parseInt`` reads them). Two metas
with equal keys are the same action to Logux; the recorded ``v`` breaks such a tie.

:class:`Ordering` is the permutation a replay walks: step ``1 … n`` (the fold's own numbers,
on which checkpoints fall) ↔ the recorded ``v`` of the event folded at that step. Numbers shown
to people stay the recorded ``v``. Pure: no I/O; the replayer's source reads the metas and hands
them here.
"""

from __future__ import annotations

import hashlib
import re
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from devtools.errors import BadInput

ORDERS = ("v", "logux")
"""The values ``--order`` takes."""

_PARSE_INT = re.compile(
    "[\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]*"
    r"([+-]?)(?:0[xX]([0-9a-fA-F]*)|([0-9]*))"
)
"""What ``parseInt`` reads: white space, a sign, then hexadecimal digits after ``0x`` or
decimal digits."""


class NotLogux(BadInput):
    """``--order logux`` over events that carry no Logux meta (exit 3)."""


def check_order(order: str) -> str:
    """``order`` when it is one of :data:`ORDERS`.

    Raises:
        BadInput: another value.
    """
    if order not in ORDERS:
        raise BadInput(f"--order must be v or logux, not {order!r}")
    return order


def _parse_int(text: str) -> int | None:
    """JavaScript's ``parseInt(text)`` for the digits Logux writes; ``None`` for ``NaN``."""
    match = _PARSE_INT.match(text)
    assert match is not None  # every group may be empty
    sign, hexa, decimal = match.groups()
    digits = hexa if hexa is not None else decimal
    if not digits:
        return None
    value = int(digits, 16 if hexa is not None else 10)
    return -value if sign == "-" else value


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


def logux_key(meta: Any) -> tuple[int | float, bytes, int, int] | None:
    """The sort key of one action's meta in Logux's order; ``None`` when ``meta`` is not a
    Logux meta (an object with a numeric ``time`` and an id ``"<time> <node> <counter>"``).

    ``key(a) < key(b)`` exactly when ``isFirstOlder(a, b)``; equal keys are the same action.
    """
    if not isinstance(meta, dict):
        return None
    time, ident = meta.get("time"), meta.get("id")
    if not _number(time) or not isinstance(ident, str):
        return None
    parts = ident.split(" ")
    if len(parts) < 3:
        return None
    counter, id_time = _parse_int(parts[2]), _parse_int(parts[0])
    if counter is None or id_time is None:
        return None
    node = parts[1].encode("utf-16-be", "surrogatepass")  # code units, as JS compares them
    return (time, node, counter, id_time)


def is_first_older(first: Any, second: Any) -> bool:
    """``isFirstOlder(first, second)`` of ``@logux/core`` for two Logux metas.

    Raises:
        ValueError: either is not a Logux meta (see :func:`logux_key`).
    """
    a, b = logux_key(first), logux_key(second)
    if a is None or b is None:
        raise ValueError("not a Logux meta")
    return a < b


@dataclass(frozen=True, slots=True)
class Ordering:
    """Which recorded event a replay folds at each step (step ``s`` is ``vs[s - 1]``)."""

    order: str
    """The order's name (:data:`ORDERS`)."""
    vs: array
    """The recorded ``v`` of each step, in fold order."""
    steps: array
    """``steps[v - low]``: the step of the event numbered ``v`` (0: no such event)."""
    low: int
    """The lowest recorded ``v``."""
    digest: str
    """A hash of the whole permutation: checkpoints of one ordering never serve another (an
    event recorded later may sort before earlier ones and change every state after it)."""

    def __len__(self) -> int:
        return len(self.vs)

    def step(self, v: int) -> int | None:
        """The step of the event numbered ``v``; ``None`` when no event has that ``v``."""
        i = v - self.low
        if 0 <= i < len(self.steps) and self.steps[i]:
            return self.steps[i]
        return None

    def v(self, step: int) -> int:
        """The recorded ``v`` of ``step`` (``1 … len``)."""
        return self.vs[step - 1]


def logux_ordering(metas: Iterable[tuple[int, Any]]) -> Ordering:
    """The Logux ordering of events given as ``(v, meta)`` in any order.

    Raises:
        NotLogux: an event whose meta is not a Logux meta (named by its ``v``).
    """
    keyed: list[tuple[Any, int]] = []
    for v, meta in metas:
        key = logux_key(meta)
        if key is None:
            raise NotLogux(
                f"--order logux needs a Logux recording (rdt record --protocol logux): event "
                f"v={v} has no Logux meta (meta.time and meta.id '<time> <node> <counter>')"
            )
        keyed.append((key, v))
    keyed.sort()
    return ordering("logux", [v for _, v in keyed])


def ordering(order: str, vs: Iterable[int]) -> Ordering:
    """The :class:`Ordering` folding the events numbered ``vs`` in that order (each once)."""
    walk = array("q", vs)
    low = min(walk) if walk else 1
    steps = array("q", bytes(8 * ((max(walk) - low + 1) if walk else 0)))
    for step, v in enumerate(walk, 1):
        steps[v - low] = step
    digest = hashlib.sha256(walk.tobytes()).hexdigest()[:32]
    return Ordering(order, walk, steps, low, digest)
