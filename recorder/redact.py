"""Redaction: remove the fields named by JSON pointers (RFC 6901) from parsed values.

Pure. The recorder applies the same pointers to every message, event object and snapshot state
before anything reaches the store; the forwarded bytes are never touched.
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
