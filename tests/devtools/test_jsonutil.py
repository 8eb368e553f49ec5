"""jsonutil: orjson speed, exact integers of any size, strict about what JSON cannot carry."""

from __future__ import annotations

import math

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from devtools import jsonutil
from devtools.jsonutil import dumps, loads


@pytest.mark.parametrize(
    "number", [2**64 + 1, -(2**63) - 1, 2**64 - 1, -(2**63), 10**400, -(10**500)]
)
def test_big_integers_round_trip_exactly(number: int) -> None:
    text = dumps({"n": number, "l": [number, 1.5]})
    assert text == b'{"n":%d,"l":[%d,1.5]}' % (number, number)
    back = loads(text)
    assert back == {"n": number, "l": [number, 1.5]}
    assert type(back["n"]) is int


def test_str_input() -> None:
    assert loads('{"a":18446744073709551617}') == {"a": 2**64 + 1}


def test_duplicate_keys_last_wins() -> None:
    assert loads(b'{"a":1,"a":2}') == {"a": 2}
    assert loads(b'{"a":1,"a":18446744073709551617}') == {"a": 2**64 + 1}


@pytest.mark.parametrize(
    "text",
    [
        b"NaN",
        b"[Infinity]",
        b"[1e400]",
        b"[1" + b"0" * 400 + b".0]",
        b"[1" + b"0" * 400 + b', "\\ud800"]',
        b"[1" + b"0" * 400 + b", NaN]",
        b"[1" + b"0" * 400 + b",]",
        b'"\\ud800"',
        b"[12345678901234567890123, 1e999]",
        b"\xff",
    ],
)
def test_strict(text: bytes) -> None:
    with pytest.raises(ValueError):
        loads(text)


def test_dumps_refuses_what_json_cannot_carry() -> None:
    with pytest.raises(TypeError):
        dumps({1, 2})
    with pytest.raises(ValueError):
        dumps([2**64, math.nan])


@given(st.integers())
def test_any_integer_round_trips(number: int) -> None:
    assert loads(dumps([number])) == [number]


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_round_trip(number: float) -> None:
    assert loads(dumps([number])) == [number]
    assert loads(orjson.dumps([number])) == [number]


@given(st.binary(max_size=60) | st.text(alphabet="0123456789-9a ,[]", max_size=60).map(str.encode))
def test_the_fast_big_integer_check_says_what_the_pattern_says(raw: bytes) -> None:
    assert jsonutil.maybe_big_int(raw) == (jsonutil._MAYBE_BIG_INT.search(raw) is not None)


def test_a_nanosecond_timestamp_and_a_hash_are_no_big_integers() -> None:
    frame = (
        b'{"ts":1795420800000150000,"hash":"sha256:0123456789012345678a","n":-1223372036854775809}'
    )
    assert not jsonutil.maybe_big_int(frame)
    assert jsonutil.maybe_big_int(b'{"n":-9223372036854775809}')
    assert jsonutil.maybe_big_int(b'{"n":18446744073709551616}')
