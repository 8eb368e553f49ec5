"""The `/` filter: parse what the user typed into a row predicate. Pure; no I/O.

Three forms:

- ``sender:GLOB`` — rows whose sender (event ``sender``, or a message's connection) matches;
- an expression — text with ``=``, ``<``, ``>``, ``(`` or a space, or starting with ``expr:`` —
  a Python expression over ``event`` (the row's JSON value), ``type``, ``v``/``seq`` and
  ``sender``; a row matches when it is true (an expression that raises on a row does not match);
- anything else — a glob over the row's ``type`` (``order/*``), optionally ``type:GLOB``.

A filter hides rows in the list; the log is never changed. So does folding (``z``): Logux's
keep-alive and acknowledgement messages (:data:`FOLDED`) hidden from the message list.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from devtools.errors import BadInput
from tui.rows import Row

_SAFE_BUILTINS: dict[str, Any] = {
    name: __builtins__[name] if isinstance(__builtins__, dict) else getattr(__builtins__, name)
    for name in (
        "len", "any", "all", "min", "max", "abs", "sum", "str", "int", "float", "bool",
        "isinstance", "dict", "list", "round", "sorted", "set", "tuple",
    )
}  # fmt: skip


FOLDED = ("ping", "pong", "synced")
"""The message types ``z`` folds away: Logux's ``ping``/``pong`` and the ``synced`` answering
every ``sync`` (a backlog's answers make half the messages)."""


def unfolded(row: Row) -> bool:
    """Whether ``row`` stays in the list while :data:`FOLDED` types are folded."""
    return row.type not in FOLDED


class FilterError(BadInput):
    """A filter or expression that does not parse."""


@dataclass(frozen=True, slots=True)
class RowFilter:
    """A parsed filter: its text, its kind and the predicate."""

    text: str
    kind: str
    """``type``, ``sender`` or ``expr``."""
    match: Callable[[Row], bool]

    def __call__(self, row: Row) -> bool:
        return self.match(row)


def parse_filter(text: str) -> RowFilter | None:
    """Parse the filter text; ``None`` for an empty filter (show every row).

    Raises:
        FilterError: when an expression does not compile.
    """
    text = text.strip()
    if not text:
        return None
    if text.startswith("sender:"):
        pattern = text[len("sender:") :].strip()
        return RowFilter(text, "sender", lambda row: _glob(row.sender, pattern))
    if text.startswith("type:"):
        pattern = text[len("type:") :].strip()
        return RowFilter(text, "type", lambda row: _glob(row.type, pattern))
    if text.startswith("expr:") or any(ch in text for ch in "=<>( "):
        source = text[len("expr:") :] if text.startswith("expr:") else text
        return RowFilter(text, "expr", compile_predicate(source))
    return RowFilter(text, "type", lambda row: _glob(row.type, text))


def _glob(value: str | None, pattern: str) -> bool:
    return value is not None and fnmatch.fnmatchcase(value, pattern)


def compile_predicate(source: str) -> Callable[[Row], bool]:
    """Compile ``source`` into a row predicate (see the module docstring for the names).

    Raises:
        FilterError: when ``source`` is not a Python expression.
    """
    try:
        code = compile(source.strip(), "<filter>", "eval")
    except SyntaxError as error:
        raise FilterError(f"filter expression does not parse: {error.msg}") from None
    globals_ = {"__builtins__": _SAFE_BUILTINS}

    def predicate(row: Row) -> bool:
        data = row.data()
        names = {
            "event": data,
            "msg": data,
            "type": row.type,
            "sender": row.sender,
            "v": row.key if row.kind == "event" else None,
            "seq": row.key if row.kind == "message" else None,
        }
        try:
            return bool(eval(code, globals_, names))  # noqa: S307 - the user's own expression
        except Exception:
            return False

    return predicate
