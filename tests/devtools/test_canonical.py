"""Canonical JSON and state hashes: byte-identical to rfc8785, big integers exact, errors named."""

from __future__ import annotations

import datetime
import enum
import hashlib
import math
import pickle
import uuid
from collections import OrderedDict
from decimal import Decimal

import orjson
import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.canonical import CanonicalError, _serialize, canonical_bytes, float_text, state_hash
from devtools.errors import BadInput
from devtools.jsonutil import loads

SAFE = 2**53 - 1

# Keys that exercise JCS's UTF-16 ordering: ASCII, Latin, the U+E000..U+FFFF block and astral.
_KEY_CHARS = st.sampled_from(
    ["a", "b", "A", "é", "\u20ac", "\ue000", "\uffff", "\U00010000", "\U0001f600"]
)
KEYS = st.text(_KEY_CHARS, max_size=3) | st.text(max_size=5)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-SAFE, SAFE)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(KEYS, children, max_size=5),
    max_leaves=40,
)


@settings(max_examples=400)
@given(JSON)
def test_identical_to_rfc8785(value) -> None:
    assert canonical_bytes(value) == rfc8785.dumps(value)


@settings(max_examples=200)
@given(JSON)
def test_fast_and_exact_paths_agree(value) -> None:
    assert canonical_bytes(value) == _serialize(value)


@settings(max_examples=500)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_as_ecmascript(number: float) -> None:
    assert float_text(number).encode() == rfc8785.dumps(number)
    assert float(float_text(number)) == number


@pytest.mark.parametrize(
    ("number", "text"),
    [
        (1.0, "1"),
        (-0.0, "0"),
        (0.0, "0"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (1e-7, "1e-7"),
        (1e-6, "0.000001"),
        (123.456, "123.456"),
        (-1.5e300, "-1.5e+300"),
        (5e-324, "5e-324"),
        (0.1 + 0.2, "0.30000000000000004"),
        (2.0**53, "9007199254740992"),
    ],
)
def test_float_examples(number: float, text: str) -> None:
    assert float_text(number) == text
    assert canonical_bytes([number]) == f"[{text}]".encode()


def test_rfc8785_sample_keys_sort_by_utf16() -> None:
    # RFC 8785 §3.2.3's sorting example.
    value = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    expected = [
        "Carriage Return",
        "One",
        "Control",
        "Latin Small Letter O With Diaeresis",
        "Euro Sign",
        "Emoji: Grinning Face",
        "Hebrew Letter Dalet With Dagesh",
    ]
    assert list(loads(canonical_bytes(value)).values()) == expected
    assert canonical_bytes(value) == rfc8785.dumps(value)


def test_strings_escape_only_what_jcs_escapes() -> None:
    text = '"\\/\x00\x08\t\n\x0b\x0c\r\x1f\x7f\u2028\u2029é\U0001f600'
    expected = (
        b'"\\"\\\\/\\u0000\\b\\t\\n\\u000b\\f\\r\\u001f\x7f' + '\u2028\u2029é\U0001f600"'.encode()
    )
    assert canonical_bytes(text) == expected == rfc8785.dumps(text)


@pytest.mark.parametrize(
    "number", [2**53, -(2**53), 2**63, 2**64 - 1, 2**64 + 1, -(2**63) - 1, 10**40, -(10**300)]
)
def test_integers_beyond_2_53_are_exact_digits(number: int) -> None:
    value = {"ts": number, "l": [number, 1.5]}
    data = canonical_bytes(value)
    assert data == b'{"l":[%d,1.5],"ts":%d}' % (number, number)
    assert loads(data) == value


@given(st.integers())
def test_any_integer_round_trips(number: int) -> None:
    assert loads(canonical_bytes({"n": [number]})) == {"n": [number]}


def test_state_hash() -> None:
    state = {"b": [1, 2.0], "a": "x"}
    digest = hashlib.sha256(b'{"a":"x","b":[1,2]}').hexdigest()
    assert state_hash(state) == "sha256:" + digest
    assert state_hash({"a": "x", "b": [1, 2]}) == state_hash(state)
    assert state_hash({"a": "x", "b": [2, 1]}) != state_hash(state)


def test_subclasses_of_json_types() -> None:
    class Colour(enum.IntEnum):
        RED = 1

    class Name(enum.StrEnum):
        ADA = "ada"

    value = OrderedDict([("z", Colour.RED), ("a", Name.ADA), ("l", [True, False])])
    assert canonical_bytes(value) == b'{"a":"ada","l":[true,false],"z":1}' == rfc8785.dumps(value)


def test_deep_nesting_has_no_recursion_limit() -> None:
    value: list = []
    for _ in range(5000):
        value = [value]
    assert canonical_bytes(value) == b"[" * 5001 + b"]" * 5001


@pytest.mark.parametrize(
    ("value", "pointer", "problem"),
    [
        ({"orders": {"o1": {"lines": [{"qty": math.nan}]}}}, "/orders/o1/lines/0/qty", "NaN"),
        ({"x": [1, math.inf]}, "/x/1", "Infinity"),
        ([-math.inf], "/0", "-Infinity"),
        (math.nan, "", "NaN"),
        ({"a": {1: "x"}}, "/a", "key 1 (int) is not a string"),
        ({"a": {None: "x", "b": 1}}, "/a", "not a string"),
        ({"a": {1, 2}}, "/a", "set"),
        ({"a": frozenset()}, "/a", "frozenset"),
        ({"a": b"x"}, "/a", "bytes"),
        ({"a": (1, 2)}, "/a", "tuple"),
        ({"when": datetime.datetime(2026, 1, 1)}, "/when", "datetime"),
        ({"d": datetime.date(2026, 1, 1)}, "/d", "date"),
        ({"u": uuid.UUID(int=1)}, "/u", "UUID"),
        ({"m": Decimal("1.5")}, "/m", "Decimal"),
        ({"a/b": {"c~d": [object()]}}, "/a~1b/c~0d/0", "object"),
        ({"s": "ok\ud800"}, "/s", "lone surrogate"),
        ({"\udc00": 1}, "/\\udc00", "lone surrogate"),
    ],
)
def test_errors_name_the_path(value, pointer: str, problem: str) -> None:
    with pytest.raises(CanonicalError) as caught:
        canonical_bytes(value)
    error = caught.value
    assert isinstance(error, BadInput)
    shown = pointer or "the root"
    assert f"at {shown}: " in str(error)
    assert problem in str(error)
    assert "\n" not in str(error)
    with pytest.raises(CanonicalError):
        state_hash(value)


def test_circular_reference_is_an_error() -> None:
    value: dict = {"a": []}
    value["a"].append(value)
    with pytest.raises(CanonicalError, match=r"at /a/0: circular reference"):
        canonical_bytes(value)


def test_shared_subtrees_are_fine() -> None:
    shared = {"x": 1.0}
    assert canonical_bytes([shared, shared]) == b'[{"x":1},{"x":1}]'


def test_input_is_not_modified() -> None:
    value = {"a": [1.0, {"b": 2.5}], "c": 3}
    canonical_bytes(value)
    assert value == {"a": [1.0, {"b": 2.5}], "c": 3}
    assert type(value["a"][0]) is float


def test_error_pickles() -> None:
    error = pickle.loads(pickle.dumps(CanonicalError("/a/0", "NaN is not a JSON number")))
    assert str(error) == "state is not JSON at /a/0: NaN is not a JSON number"
    assert error.pointer == "/a/0"


@settings(max_examples=500)
@given(st.lists(st.floats() | st.sampled_from([1.0, -0.0, 1e16, 1e-5, 1e-7, 1e21, 2.5e20])))
def test_orjson_floats_are_used_only_when_exact(floats: list[float]) -> None:
    from devtools.canonical import _floats_as_orjson_writes

    if floats and _floats_as_orjson_writes(floats):
        assert orjson.dumps(floats) == ("[" + ",".join(map(float_text, floats)) + "]").encode()


def test_float_heavy_state_matches_rfc8785() -> None:
    state = {"q": [float(i) for i in range(50)], "p": [i / 7 for i in range(50)], "z": [1e-5, 1e17]}
    assert canonical_bytes(state) == rfc8785.dumps(state)
