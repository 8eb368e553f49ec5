"""Parse one websocket frame into a message, or say why it is not one.

A frame is a valid *message* when it is a UTF-8 text frame holding a JSON object whose ``type``
is a string. :func:`parse_frame` never raises on bad input: it returns a :class:`ParsedFrame`
whose ``flag`` names the first reason (in the order of :data:`FLAGS`) the frame is not a message:

``binary``
    a binary frame.
``too-large``
    longer than ``max_size`` bytes.
``invalid-utf8``
    the bytes are not UTF-8 (this includes UTF-8-encoded surrogates).
``lone-surrogate``
    a ``\\ud800``-style escape without its pair.
``nan``
    a ``NaN``/``Infinity`` literal, or a number that overflows to infinity (``1e400``).
``too-deep``
    arrays/objects nested more than ``max_depth`` levels (``[]`` is depth 1).
``not-json``
    anything else that does not parse as JSON (a BOM is not JSON either).
``not-object``
    JSON, but not an object.
``no-type``
    an object whose ``type`` is missing or not a string.

Integers of any size come back exact (:func:`devtools.jsonutil.loads`). Duplicate keys in an
object: the last one wins, as in JavaScript's ``JSON.parse``.

The common valid frame costs one ``orjson.loads`` plus a couple of C-speed checks.
"""

from __future__ import annotations

import gc
import re
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import orjson

from devtools import jsonutil

__all__ = [
    "FLAGS",
    "ORJSON_MAX_DEPTH",
    "ParsedFrame",
    "frame_kind",
    "nesting_depth",
    "parse_frame",
    "parse_json",
]

FLAGS = (
    "binary",
    "invalid-utf8",
    "not-json",
    "nan",
    "lone-surrogate",
    "too-deep",
    "not-object",
    "no-type",
    "too-large",
)
"""Every flag :func:`parse_frame` may set (the order of precedence is in the module doc)."""

ORJSON_MAX_DEPTH = 1024
"""orjson refuses documents nested deeper than this; a larger ``max_depth`` cannot take effect."""


@dataclass(frozen=True, slots=True)
class ParsedFrame:
    """The outcome of parsing one frame."""

    value: Any
    """The JSON object when the frame is a valid message, else ``None`` (from
    :func:`parse_json`: any JSON value)."""
    type: str | None
    """Its ``type`` when the frame is a valid message, else ``None``."""
    flag: str | None
    """``None`` when the frame is a valid message; else one of :data:`FLAGS`."""

    @property
    def ok(self) -> bool:
        """Whether the frame is a valid message."""
        return self.flag is None


_FLAGGED = {flag: ParsedFrame(None, None, flag) for flag in FLAGS}

# A JSON string literal (unrolled loop: linear time, no backtracking blow-up).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# An unterminated string at the end of the text.
_OPEN_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*\Z', re.DOTALL)
# Escapes, left to right: a valid surrogate pair, a lone surrogate, or any other escape.
_ESCAPE = re.compile(
    rb"\\(?:u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}"
    rb"|(?P<lone>u[dD][89a-fA-F][0-9a-fA-F]{2})|.)",
    re.DOTALL,
)
_NAN_LITERAL = re.compile(rb"NaN|Infinity")
_NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
# Numbers that may overflow to infinity: a 3+ digit positive exponent or 309+ integer digits.
_MAYBE_HUGE = re.compile(rb"[eE]\+?\d{3}|\d{309}")
_BRACKETS_ONLY = bytes(b for b in range(256) if b not in b"[]{}")
_DELTA = [0] * 256
for _open in b"[{":
    _DELTA[_open] = 1
for _close in b"]}":
    _DELTA[_close] = -1
_INF = float("inf")


def parse_frame(
    payload: bytes | bytearray | memoryview | str,
    binary: bool = False,
    *,
    max_depth: int = 512,
    max_size: int | None = None,
) -> ParsedFrame:
    """Parse one frame; never raises on bad input.

    Args:
        payload: the frame's bytes (a ``str`` is taken as its UTF-8 encoding).
        binary: whether it arrived as a binary frame.
        max_depth: the deepest nesting accepted (capped by :data:`ORJSON_MAX_DEPTH`).
        max_size: the largest payload in bytes accepted; ``None`` for no limit.

    Returns:
        The message, or a flagged :class:`ParsedFrame` with ``value`` and ``type`` ``None``.

    Raises:
        TypeError: only when ``payload`` is not bytes-like or ``str`` (a caller's bug).
    """
    value = _value(payload, binary, max_depth, max_size)
    if type(value) is ParsedFrame:
        return value
    if type(value) is not dict:
        return _FLAGGED["not-object"]
    message_type = value.get("type")
    if type(message_type) is not str:
        return _FLAGGED["no-type"]
    return ParsedFrame(value, message_type, None)


def parse_json(
    payload: bytes | bytearray | memoryview | str,
    binary: bool = False,
    *,
    max_depth: int = 512,
    max_size: int | None = None,
) -> ParsedFrame:
    """Like :func:`parse_frame` for any JSON value: ``value`` is whatever the frame holds (an
    array too; ``type`` is ``None``), flagged only when it is no JSON at all (``binary``,
    ``invalid-utf8``, ``not-json``, ``nan``, ``lone-surrogate``, ``too-deep``, ``too-large``).
    For protocols whose messages are not objects (Logux's arrays): one parse, not two."""
    value = _value(payload, binary, max_depth, max_size)
    if type(value) is ParsedFrame:
        return value
    return ParsedFrame(value, None, None)


def _value(
    payload: bytes | bytearray | memoryview | str,
    binary: bool,
    max_depth: int,
    max_size: int | None,
) -> Any:
    """The frame's JSON value, or the flagged :class:`ParsedFrame` saying why there is none."""
    if binary:
        return _FLAGGED["binary"]
    if type(payload) is not bytes:
        payload = _as_bytes(payload)
    if max_size is not None and len(payload) > max_size:
        return _FLAGGED["too-large"]
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return _diagnose(payload, max_depth)
    # orjson accepted it: valid UTF-8, no lone surrogates, no NaN, no overflow, depth <= 1024.
    if len(payload) > 2 * max_depth and (
        _deeper_than(value, max_depth)
        if len(payload) > TREE_DEPTH_FROM
        else nesting_depth(payload) > max_depth
    ):
        return _FLAGGED["too-deep"]
    if jsonutil.maybe_big_int(payload):
        try:
            value = jsonutil.loads(payload)
        except (ValueError, RecursionError):  # pragma: no cover - orjson accepted it already
            return _FLAGGED["not-json"]
    return value


def frame_kind(
    payload: bytes | bytearray | memoryview | str,
    binary: bool = False,
    *,
    max_depth: int = 512,
) -> tuple[str | None, str | None]:
    """A frame's ``(type, flag)``, the same as :func:`parse_frame` gives, without its value.

    The recorder's hot path (a log row needs no value): no :class:`ParsedFrame` is built and
    big integers are not re-parsed exactly (they change no type and no flag).
    """
    # _value's checks inlined: this runs once per recorded frame
    if binary:
        return None, "binary"
    if type(payload) is not bytes:
        payload = _as_bytes(payload)
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError:
        value = _diagnose(payload, max_depth)
        if type(value) is ParsedFrame:
            return value.type, value.flag
    else:
        if len(payload) > 2 * max_depth and (
            _deeper_than(value, max_depth)
            if len(payload) > TREE_DEPTH_FROM
            else nesting_depth(payload) > max_depth
        ):
            return None, "too-deep"
    if type(value) is not dict:
        return None, "not-object"
    message_type = value.get("type")
    if type(message_type) is not str:
        return None, "no-type"
    return message_type, None


def _as_bytes(payload: bytes | bytearray | memoryview | str) -> bytes:
    if type(payload) is bytes:
        return payload
    if isinstance(payload, str):
        return payload.encode("utf-8", "surrogatepass")
    return bytes(payload)


TREE_DEPTH_FROM = 2**20
"""Payloads longer than this have their depth measured on the parsed value: the text scan
(:func:`nesting_depth`) cuts the strings out with a regex whose pieces cost ~15× the payload
in memory (200 MiB for a 12.5 MiB Logux backlog); the walk costs a stack of ``max_depth``."""


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest deeper than ``limit`` in ``value`` (already parsed).

    One nesting level at a time, at C speed: the next level is ``gc.get_referents`` of this
    one (a dict's keys and values, a list's items; strings and numbers have none), and a level
    counts when it holds a dict or a list. A 120,000-action Logux backlog is measured in ~20 ms
    this way; a walk with a Python loop per node took ~0.4 s of the forwarding loop."""
    level = [value]
    depth = 0
    while True:
        kinds = set(map(type, level))
        if dict not in kinds and list not in kinds:
            return False
        depth += 1
        if depth > limit:
            return True
        level = gc.get_referents(*level)


def nesting_depth(payload: bytes) -> int:
    """The deepest array/object nesting in JSON text (brackets inside strings do not count).

    Works without recursion on any bytes, so ``b"[" * 100_000`` is just ``100000``.
    """
    if b'"' in payload:
        payload = _STRING.sub(b"", payload)
        payload = _OPEN_STRING.sub(b"", payload)
    brackets = payload.translate(None, _BRACKETS_ONLY)
    return max(accumulate(map(_DELTA.__getitem__, brackets)), default=0)


def _diagnose(payload: bytes, max_depth: int) -> Any:
    """Name why orjson refused ``payload`` (the slow path; bad frames only): a flagged
    :class:`ParsedFrame`, or the value when the exact parser takes it after all."""
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return _FLAGGED["invalid-utf8"]
    if b"\\" in payload:
        for match in _ESCAPE.finditer(payload):
            if match.lastgroup == "lone":
                return _FLAGGED["lone-surrogate"]
    outside = _STRING.sub(b'""', payload) if b'"' in payload else payload
    if _NAN_LITERAL.search(outside) is not None or _overflows(outside):
        return _FLAGGED["nan"]
    if nesting_depth(payload) > min(max_depth, ORJSON_MAX_DEPTH):
        return _FLAGGED["too-deep"]
    if _MAYBE_HUGE.search(outside) is not None:
        # orjson calls a 309+ digit integer "infinity"; the exact parser may still take it.
        try:
            return jsonutil.loads(payload)
        except (ValueError, RecursionError):
            return _FLAGGED["not-json"]
    return _FLAGGED["not-json"]


def _overflows(outside_strings: bytes) -> bool:
    """Whether a float-looking number token (outside strings) overflows to infinity."""
    if _MAYBE_HUGE.search(outside_strings) is None:
        return False
    for match in _NUMBER.finditer(outside_strings):
        token = match.group()
        if (b"." in token or b"e" in token or b"E" in token) and float(token) in (_INF, -_INF):
            return True
    return False
