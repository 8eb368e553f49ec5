"""Redaction: remove the fields named by JSON pointers (RFC 6901) from parsed values.

Pure. The recorder applies the same pointers to every message, event object, snapshot state
and the server's info before anything reaches the store (:func:`redact_everywhere`); the
forwarded bytes are never touched. A pointer is matched at the root of a record *and* under
every object or array inside it: ``/customer`` removes ``/customer`` from an action and
``/orders/o1/customer`` from the state the action was folded into, so a value redacted from
the messages cannot reach the disk through a snapshot of the state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from devtools.errors import BadInput

Pointer = tuple[str, ...]


def parse_pointer(text: str) -> Pointer:
    """Split an RFC 6901 pointer into its unescaped reference tokens.

    Raises:
        BadInput: when the pointer is empty or does not start with ``/``.
    """
    if not text.startswith("/"):
        raise BadInput(f"--redact needs a JSON pointer such as /password, got {text!r}")
    return tuple(part.replace("~1", "/").replace("~0", "~") for part in text[1:].split("/"))


def parse_pointers(texts: Sequence[str]) -> tuple[Pointer, ...]:
    """Parse every pointer (see :func:`parse_pointer`)."""
    return tuple(parse_pointer(text) for text in texts)


def _remove(value: Any, pointer: Pointer) -> tuple[Any, bool]:
    head, rest = pointer[0], pointer[1:]
    if isinstance(value, dict):
        if head not in value:
            return value, False
        if not rest:
            copy = dict(value)
            del copy[head]
            return copy, True
        child, changed = _remove(value[head], rest)
        if not changed:
            return value, False
        copy = dict(value)
        copy[head] = child
        return copy, True
    if isinstance(value, list) and head.isascii() and head.isdigit() and int(head) < len(value):
        index = int(head)
        if not rest:
            return value[:index] + value[index + 1 :], True
        child, changed = _remove(value[index], rest)
        if not changed:
            return value, False
        copy = list(value)
        copy[index] = child
        return copy, True
    return value, False


def redact(value: Any, pointers: Sequence[Pointer]) -> tuple[Any, bool]:
    """Return ``value`` without the fields at ``pointers`` and whether anything was removed.

    The input is never mutated: changed containers are copied along the path, the rest shared.
    Pointers that do not resolve are ignored.
    """
    changed = False
    for pointer in pointers:
        if pointer:
            value, hit = _remove(value, pointer)
            changed = changed or hit
    return value, changed


def redact_everywhere(value: Any, pointers: Sequence[Pointer]) -> tuple[Any, bool]:
    """Like :func:`redact`, with each pointer also applied under every nested object and array.

    ``/a/b`` removes ``/a/b``, ``/x/a/b``, ``/x/0/a/b`` … The input is never mutated.
    """
    pointers = tuple(p for p in pointers if p)
    if not pointers:
        return value, False
    return _everywhere(value, pointers)


def _everywhere(value: Any, pointers: tuple[Pointer, ...]) -> tuple[Any, bool]:
    if not isinstance(value, dict | list):
        return value, False
    value, changed = redact(value, pointers)
    if isinstance(value, dict):
        copy: Any = None
        for key, child in value.items():
            new, hit = _everywhere(child, pointers)
            if hit:
                if copy is None:
                    copy = dict(value)
                copy[key] = new
        if copy is not None:
            return copy, True
        return value, changed
    items: Any = None
    for index, child in enumerate(value):
        new, hit = _everywhere(child, pointers)
        if hit:
            if items is None:
                items = list(value)
            items[index] = new
    if items is not None:
        return items, True
    return value, changed
