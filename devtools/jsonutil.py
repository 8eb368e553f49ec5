"""Fast JSON with exact integers.

``orjson`` is fast but turns integers beyond 64 bits into floats on load (and refuses integer
literals beyond ~309 digits as "infinity"), and refuses them on dump. These two functions keep
orjson's speed and strictness for the common case and fall back to the standard library only
when a number that large may be present, so ``2**64 + 1`` and a 400-digit integer survive a
round trip exactly. The fallback stays as strict as orjson: no ``NaN``/``Infinity`` literals, no
number that overflows to infinity (``1e400``), no lone surrogates.

Duplicate keys in an object: the last one wins (both parsers agree).
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

DIGIT_RUN = 20
"""orjson keeps integers in [-2**63, 2**64) exact: only a run of this many digits (or digits
and "-") in the JSON text can hide one it would turn into a float."""

# A run of 20+ digits, or a 19-digit negative number starting with 9: the only integer
# literals orjson may not represent exactly (it handles [-2**63, 2**64)).
_MAYBE_BIG_INT = re.compile(rb"\d{20}|-9\d{18}")

_DIGIT_RUN = re.compile(rb"\d{20,}")

_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_TWENTY_DIGITS = b"0" * 20
_NEGATIVE_NINETEEN = b"-" + b"0" * 19


def maybe_big_int(raw: bytes) -> bool:
    """Whether ``raw`` may hold an integer literal orjson does not keep exact.

    Looked for at C speed first (every digit mapped to ``0``, then a plain ``in`` for 20 digits
    or ``-`` and 19): the regex alone costs several µs on a frame full of digits, like an event
    with its hash and nanosecond timestamp (19 digits), and almost no frame has such a run."""
    digits = raw.translate(_DIGITS_AS_ZERO)
    return (_TWENTY_DIGITS in digits or _NEGATIVE_NINETEEN in digits) and _MAYBE_BIG_INT.search(
        raw
    ) is not None


_INFINITY_MESSAGE = "number is infinity"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if number in (_INF, -_INF):
        raise ValueError(f"number {text[:40]} overflows to infinity")
    return number


_INF = float("inf")


def _exact(raw: bytes) -> Any:
    """Parse ``raw`` (already known to be valid JSON apart from its numbers) with exact integers."""
    return json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse JSON strictly (no NaN, no lone surrogates) with integers of any size kept exact.

    Raises:
        orjson.JSONDecodeError: (a ``ValueError``) when ``data`` is not valid JSON.
    """
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        # orjson reads a 309+ digit integer as a float and calls it infinity.
        if _INFINITY_MESSAGE not in str(error):
            raise
        raw = _as_bytes(data)
        if not maybe_big_int(raw):
            raise
        # Check everything but those numbers with orjson (a run of digits becomes 0; inside a
        # string that keeps the string valid), then parse exactly.
        orjson.loads(_DIGIT_RUN.sub(b"0", raw))
        try:
            return _exact(raw)
        except (ValueError, RecursionError):
            raise error from None
    raw = _as_bytes(data)
    if maybe_big_int(raw):
        # orjson validated the text already; the standard library keeps big integers exact.
        value = _exact(raw)
    return value


def _as_bytes(data: bytes | bytearray | memoryview | str) -> bytes:
    if isinstance(data, str):
        return data.encode("utf-8", "surrogatepass")
    return bytes(data) if not isinstance(data, bytes) else data


def dumps(value: Any) -> bytes:
    """Serialise ``value`` to compact UTF-8 JSON; integers of any size are written exactly.

    Note that orjson writes NaN and infinities as ``null``; check values with
    :func:`devtools.canonical.canonical_bytes` where that matters.

    Raises:
        TypeError: for values JSON cannot carry (sets, bytes, datetimes …).
        ValueError: for NaN or infinities inside a value holding a big integer.
    """
    try:
        return orjson.dumps(value)
    except TypeError as error:
        if "64-bit" not in str(error):
            raise
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
