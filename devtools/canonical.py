"""Canonical JSON bytes and state hashes (PROTOCOL.md §5).

The canonical form is RFC 8785 (JSON Canonicalization Scheme), byte-identical to the ``rfc8785``
package, with one extension: an integer outside ±2**53 is written exactly as its decimal digits
(RFC 8785 alone rejects it; nanosecond timestamps are such integers).

What counts as JSON here: ``dict`` (string keys), ``list``, ``str``, ``int``, ``float``
(finite), ``bool`` and ``None``, and subclasses of those (an ``IntEnum`` is its integer, a
``StrEnum`` its string). Anything else is a :class:`CanonicalError` naming the JSON path
(an RFC 6901 pointer): NaN, infinities, non-string keys, sets, bytes, datetimes, strings with
lone surrogates, circular references. **Tuples are refused too**, unlike ``rfc8785``: a state
travels as JSON, so a tuple comes back from a log or snapshot as a list, and a reducer that
compares it with a tuple would behave differently after a restore — better to hear it at once.

How it is fast: one pass over the value checks that it is plain JSON and replaces each float by
an ``orjson.Fragment`` holding its ECMAScript text (copying only the containers on the way to a
float); then ``orjson.dumps(OPT_SORT_KEYS)`` writes the rest, which for strings, integers up to
64 bits and code-point key order is already exactly JCS. Values orjson cannot write exactly
(keys whose UTF-16 order differs from code-point order, bigger integers, deep nesting, subclasses)
and every error go through a plain-Python serializer that also names the path of a problem.
"""

from __future__ import annotations

import gc
import hashlib
import re
from itertools import compress, repeat
from operator import is_
from typing import Any

import orjson

from devtools.errors import BadInput
from devtools.sanitize import visible

__all__ = ["CanonicalError", "canonical_bytes", "float_text", "state_hash"]


class CanonicalError(BadInput):
    """A value that JSON cannot carry; the message names its path and what is wrong."""

    def __init__(self, pointer: str, problem: str) -> None:
        self.pointer = pointer
        """RFC 6901 JSON pointer to the offending value (``""`` for the root)."""
        self.problem = problem
        """What is wrong there."""
        where = visible(pointer) if pointer else "the root"
        super().__init__(f"state is not JSON at {where}: {problem}")

    def __reduce__(self) -> tuple[type[CanonicalError], tuple[str, str]]:
        return (type(self), (self.pointer, self.problem))


def canonical_bytes(value: Any) -> bytes:
    """The canonical UTF-8 JSON bytes of ``value`` (RFC 8785 + exact big integers).

    Raises:
        CanonicalError: when ``value`` holds something JSON cannot carry.
    """
    try:
        # _prepare: only when some float is one that orjson writes differently from JCS.
        plain = value if _scan(value) else _prepare(value, 0)
        data = orjson.dumps(plain, option=orjson.OPT_SORT_KEYS)
        if _utf16_hazard(data) and _keys_need_utf16_order(value):
            raise _NeedsSlowPath
        return data
    except (_NeedsSlowPath, TypeError):  # orjson.JSONEncodeError is a TypeError
        return _serialize(value)


def state_hash(value: Any) -> str:
    """``"sha256:"`` + the lowercase hex SHA-256 of :func:`canonical_bytes`.

    Raises:
        CanonicalError: when ``value`` holds something JSON cannot carry.
    """
    return "sha256:" + hashlib.sha256(canonical_bytes(value)).hexdigest()


def float_text(number: float) -> str:
    """ECMAScript's Number-to-String for a finite float, as RFC 8785 §3.2.2.3 requires.

    ``1.0`` → ``1``, ``1e21`` → ``1e+21``, ``1e-7`` → ``1e-7``, ``-0.0`` → ``0``.

    Raises:
        ValueError: for NaN and infinities.
    """
    text = float.__repr__(number)
    if "e" not in text:
        if text[-1] == "n" or text[-1] == "f":  # nan, inf, -inf
            raise ValueError(f"{text} is not a JSON number")
        # Python writes 1e-4 <= |x| < 1e16 without exponent, with the same shortest digits.
        if text.endswith(".0"):
            text = text[:-2]
            return "0" if text == "-0" else text
        return text
    sign = ""
    if text[0] == "-":
        sign, text = "-", text[1:]
    mantissa, _, exponent = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + int(exponent)  # value = 0.<digits> * 10**point
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    count = len(digits)
    if count <= point <= 21:
        text = digits + "0" * (point - count)
    elif 0 < point <= 21:
        text = digits[:point] + "." + digits[point:]
    elif -6 < point <= 0:
        text = "0." + "0" * -point + digits
    else:
        power = point - 1
        tail = ("e+" if power >= 0 else "e-") + str(abs(power))
        text = (digits if count == 1 else digits[0] + "." + digits[1:]) + tail
    return sign + text


# -- the fast path ---------------------------------------------------------------------------

_LEAF_TYPES = frozenset({str, int, bool, type(None)})
_PLAIN_TYPES = frozenset({str, int, bool, type(None), float, dict, list})
_FAST_MAX_DEPTH = 200  # orjson refuses to write deeper than ~254 levels
_INF = float("inf")
_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
_BMP_HIGH = re.compile("[\ue000-\uffff]")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


class _NeedsSlowPath(Exception):
    """The fast path cannot write this value exactly (or it is an error to be named)."""


def _scan(root: Any) -> bool:
    """Whether ``orjson.dumps(root, option=OPT_SORT_KEYS)`` can be used as is.

    Walks the value one nesting level at a time with C-level iteration only: the next level is
    ``gc.get_referents`` of this one (the values of dicts with string keys, the items of lists;
    scalars have none), and each level's types are collected into a set. Returns False when some
    float is written differently by orjson than by ECMAScript (``1.0``, ``1e+16``, NaN);
    raises :class:`_NeedsSlowPath` for anything that is not plain JSON or nests too deep.
    Keys are left to orjson (it refuses non-string ones) and to :func:`_utf16_hazard`.
    """
    level = [root]
    floats: list[float] = []
    depth = 0
    while level:
        depth += 1
        if depth > _FAST_MAX_DEPTH:
            raise _NeedsSlowPath
        kinds = set(map(type, level))
        if not _PLAIN_TYPES.issuperset(kinds):
            raise _NeedsSlowPath
        if float in kinds:
            floats.extend(compress(level, map(is_, map(type, level), repeat(float))))
        if dict not in kinds and list not in kinds:
            break
        level = gc.get_referents(*level)
    return not floats or _floats_as_orjson_writes(floats)


def _floats_as_orjson_writes(floats: list[float]) -> bool:
    """Whether orjson writes every one of ``floats`` exactly as ECMAScript does."""
    text = ",".join(map(float.__repr__, floats))
    # Without an exponent and without a ".0" ending, Python's repr is the ECMAScript text;
    # then orjson must agree with repr (it writes 1e-05 as 0.00001, NaN as null …).
    return (
        "e" not in text and ".0," not in text + "," and orjson.dumps(floats)[1:-1] == text.encode()
    )


def _utf16_hazard(data: bytes) -> bool:
    """Whether the text holds characters from both U+E000..U+FFFF and U+10000.. (UTF-8 lead
    bytes EE/EF and F0..F4): only then can UTF-16 key order differ from orjson's."""
    return (b"\xee" in data or b"\xef" in data) and (
        b"\xf0" in data or b"\xf1" in data or b"\xf2" in data or b"\xf3" in data or b"\xf4" in data
    )


def _keys_need_utf16_order(root: Any) -> bool:
    """Whether some object holds keys whose UTF-16 order differs from code-point order."""
    stack = [root]
    while stack:
        value = stack.pop()
        if type(value) is dict:
            if len(value) > 1:
                keys = "".join(value)
                if (
                    not keys.isascii()
                    and _BMP_HIGH.search(keys) is not None
                    and _ASTRAL.search(keys) is not None
                ):
                    return True
            stack.extend(value.values())
        elif type(value) is list:
            stack.extend(value)
    return False


def _prepare(value: Any, depth: int) -> Any:
    """``value`` with floats replaced by ``orjson.Fragment``s (copying only what changes)."""
    kind = type(value)
    if kind is dict:
        if depth >= _FAST_MAX_DEPTH:
            raise _NeedsSlowPath
        if _LEAF_TYPES.issuperset(map(type, value.values())):
            return value
        copy = None
        for key, item in value.items():
            if type(item) in _LEAF_TYPES:
                continue
            new = _prepare(item, depth + 1)
            if new is not item:
                if copy is None:
                    copy = value.copy()
                copy[key] = new
        return value if copy is None else copy
    if kind is list:
        if depth >= _FAST_MAX_DEPTH:
            raise _NeedsSlowPath
        if _LEAF_TYPES.issuperset(map(type, value)):
            return value
        copy = None
        for index, item in enumerate(value):
            if type(item) in _LEAF_TYPES:
                continue
            new = _prepare(item, depth + 1)
            if new is not item:
                if copy is None:
                    copy = value.copy()
                copy[index] = new
        return value if copy is None else copy
    if kind is float:
        if value != value or value == _INF or value == -_INF:
            raise _NeedsSlowPath
        return orjson.Fragment(float_text(value))
    if kind in _LEAF_TYPES:
        return value
    raise _NeedsSlowPath


# -- the exact path --------------------------------------------------------------------------


def _utf16_order(item: tuple[str, Any]) -> bytes:
    return item[0].encode("utf-16-be", "surrogatepass")


def _serialize(root: Any) -> bytes:
    """Plain-Python JCS writer: iterative (any depth), names the path of every problem."""
    out: list[bytes] = []
    # Each open container: [items, next index, is object, token of the current child, id].
    stack: list[list[Any]] = []
    open_ids: set[int] = set()
    value = root
    while True:
        if value is None:
            out.append(b"null")
        elif value is True:
            out.append(b"true")
        elif value is False:
            out.append(b"false")
        elif isinstance(value, str):
            out.append(_string(value, stack, None))
        elif isinstance(value, int):
            try:
                out.append(int.__repr__(value).encode())
            except ValueError as error:  # more digits than sys.get_int_max_str_digits()
                raise _error(stack, None, f"integer too large to write ({error})") from None
        elif isinstance(value, float):
            try:
                out.append(float_text(value).encode())
            except ValueError:
                raise _error(
                    stack, None, f"{_NON_FINITE[float.__repr__(value)]} is not a JSON number"
                ) from None
        elif isinstance(value, dict | list):
            if id(value) in open_ids:
                raise _error(stack, None, "circular reference")
            if isinstance(value, dict):
                for key in value:
                    if not isinstance(key, str):
                        raise _error(
                            stack, None, f"key {key!r} ({type(key).__name__}) is not a string"
                        )
                items: list[Any] = sorted(value.items(), key=_utf16_order)
                is_object = True
            else:
                items = value
                is_object = False
            if not items:
                out.append(b"{}" if is_object else b"[]")
            else:
                out.append(b"{" if is_object else b"[")
                stack.append([items, 0, is_object, None, id(value)])
                open_ids.add(id(value))
        else:
            raise _error(stack, None, _describe(value))
        # Move to the next value to write, closing finished containers.
        while stack:
            frame = stack[-1]
            items, index = frame[0], frame[1]
            if index < len(items):
                if index:
                    out.append(b",")
                frame[1] = index + 1
                if frame[2]:
                    key, value = items[index]
                    frame[3] = key
                    out.append(_string(key, stack, None))
                    out.append(b":")
                else:
                    value = items[index]
                    frame[3] = index
                break
            out.append(b"}" if frame[2] else b"]")
            open_ids.discard(frame[4])
            stack.pop()
        else:
            return b"".join(out)


def _string(text: str, stack: list[list[Any]], extra: str | None) -> bytes:
    try:
        # orjson escapes exactly as JCS does: ", \\, and controls (\b \t \n \f \r, else \u00xx).
        return orjson.dumps(str.__str__(text))
    except TypeError:
        raise _error(stack, extra, "string holds a lone surrogate (not valid UTF-8)") from None


def _describe(value: Any) -> str:
    name = type(value).__name__
    if isinstance(value, tuple):
        return "a tuple is not a JSON array (states are JSON: use a list)"
    if isinstance(value, set | frozenset):
        return f"a {name} is not JSON (use a sorted list)"
    if isinstance(value, bytes | bytearray | memoryview):
        return f"{name} is not JSON (use a string)"
    return f"a {name} is not a JSON value"


def _pointer(tokens: list[Any]) -> str:
    return "".join("/" + str(token).replace("~", "~0").replace("/", "~1") for token in tokens)


def _error(stack: list[list[Any]], extra: str | None, problem: str) -> CanonicalError:
    tokens = [frame[3] for frame in stack]
    if extra is not None:
        tokens.append(extra)
    return CanonicalError(_pointer(tokens), problem)
