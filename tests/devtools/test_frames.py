"""parse_frame: valid messages come back exact; every bad frame is flagged, never raised.
frame_kind (the recorder's hot path) gives the same type and flag."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.frames import (
    FLAGS,
    ORJSON_MAX_DEPTH,
    ParsedFrame,
    frame_kind,
    nesting_depth,
    parse_frame,
)


def test_valid_message() -> None:
    frame = parse_frame(b'{"type":"order/create","customer":"ACME","lines":[1,2.5,null]}')
    assert frame == ParsedFrame(
        {"type": "order/create", "customer": "ACME", "lines": [1, 2.5, None]},
        "order/create",
        None,
    )
    assert frame.ok


def test_text_payload_given_as_str() -> None:
    assert parse_frame('{"type":"é"}').type == "é"


@pytest.mark.parametrize("number", [2**64 + 1, -(2**63) - 1, 10**400, -(10**30)])
def test_integers_of_any_size_are_exact(number: int) -> None:
    frame = parse_frame(b'{"type":"t","n":%d,"m":[%d]}' % (number, number))
    assert frame.flag is None
    assert frame.value["n"] == number and type(frame.value["n"]) is int
    assert frame.value["m"] == [number]


def test_duplicate_keys_last_wins() -> None:
    frame = parse_frame(b'{"type":"a","k":1,"k":2,"type":"b"}')
    assert frame.value == {"type": "b", "k": 2}
    assert frame.type == "b"


@pytest.mark.parametrize(
    ("payload", "flag"),
    [
        (b"\xff\xfe", "invalid-utf8"),
        (b'{"type":"a","s":"\xed\xa0\x80"}', "invalid-utf8"),  # UTF-8-encoded surrogate
        (b'{"type":"a","s":"\\ud800"}', "lone-surrogate"),
        (b'{"type":"a","s":"\\udc00x"}', "lone-surrogate"),
        (b'{"type":"a","s":"\\ud800\\u0041"}', "lone-surrogate"),
        (b'{"type":"a","n":NaN}', "nan"),
        (b'{"type":"a","n":-Infinity}', "nan"),
        (b'{"type":"a","n":1e400}', "nan"),
        (b'{"type":"a","n":-1.5E+999}', "nan"),
        (b"[" + b"1" * 400 + b".0]", "nan"),
        (b"[" * 100_000, "too-deep"),
        (b"[" * 513 + b"]" * 513, "too-deep"),
        (b"{" * 2000, "too-deep"),
        (b"", "not-json"),
        (b"not json", "not-json"),
        (b'{"type":"a",}', "not-json"),
        (b"\xef\xbb\xbf{}", "not-json"),
        (b'{"type":"a"} {}', "not-json"),
        (b"[]", "not-object"),
        (b'"type"', "not-object"),
        (b"12345678901234567890123", "not-object"),
        (b"{}", "no-type"),
        (b'{"type":null}', "no-type"),
        (b'{"type":1}', "no-type"),
        (b'{"type":["a"]}', "no-type"),
    ],
)
def test_bad_frames_are_flagged(payload: bytes, flag: str) -> None:
    assert parse_frame(payload) == ParsedFrame(None, None, flag)


def test_binary_and_too_large_come_first() -> None:
    assert parse_frame(b'{"type":"a"}', binary=True).flag == "binary"
    assert parse_frame(b"\xff" * 10, binary=True).flag == "binary"
    assert parse_frame(b"\xff" * 10, max_size=5).flag == "too-large"
    assert parse_frame(b'{"type":"a"}', max_size=12).flag is None


def test_first_reason_wins() -> None:
    assert parse_frame(b'["\\ud800", NaN]').flag == "lone-surrogate"
    assert parse_frame(b"[" * 600 + b"NaN" + b"]" * 600).flag == "nan"
    assert parse_frame(b"\xff" + b"[" * 600).flag == "invalid-utf8"


def test_escapes_that_look_like_surrogates_are_fine() -> None:
    frame = parse_frame(b'{"type":"\\\\ud800","e":"\\ud83d\\ude00"}')
    assert frame.value == {"type": "\\ud800", "e": "\U0001f600"}


def test_markers_inside_strings_do_not_flag() -> None:
    payload = b'{"type":"NaN","s":"Infinity 1e400 ' + b"[" * 3000 + b'"}'
    assert parse_frame(payload).type == "NaN"


def test_max_depth_is_a_setting() -> None:
    nested = b'{"type":"a","x":' + b"[" * 20 + b"]" * 20 + b"}"
    assert parse_frame(nested, max_depth=21).flag is None
    assert parse_frame(nested, max_depth=20).flag == "too-deep"
    deep = b'{"type":"a","x":' + b"[" * 700 + b"]" * 700 + b"}"
    assert parse_frame(deep).flag == "too-deep"
    assert frame_kind(deep) == (None, "too-deep")
    assert parse_frame(deep, max_depth=800).flag is None
    deeper = b"[" * (ORJSON_MAX_DEPTH + 5) + b"]" * (ORJSON_MAX_DEPTH + 5)
    assert parse_frame(deeper, max_depth=5000).flag == "too-deep"


def test_nesting_depth() -> None:
    assert nesting_depth(b"1") == 0
    assert nesting_depth(b"[]") == 1
    assert nesting_depth(b'{"a":[{"b":"[[[["}]}') == 3
    assert nesting_depth(b'["\\"[[["]') == 1
    assert nesting_depth(b"[" * 100_000) == 100_000


@settings(max_examples=300)
@given(st.binary(max_size=300), st.booleans())
def test_never_raises_on_arbitrary_bytes(payload: bytes, binary: bool) -> None:
    frame = parse_frame(payload, binary)
    assert frame.flag in FLAGS or frame.flag is None
    if frame.flag is None:
        assert isinstance(frame.value, dict) and frame.type == frame.value["type"]
    else:
        assert frame.value is None and frame.type is None


_JSON_TEXTISH = st.text(alphabet=st.sampled_from('[]{}",:\\0123456789.eE+-nulNaIfity "tpy'))


@settings(max_examples=300)
@given(_JSON_TEXTISH)
def test_never_raises_on_jsonish_text(text: str) -> None:
    frame = parse_frame(text.encode())
    assert frame.flag in FLAGS or frame.flag is None


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), _JSON, max_size=5), st.text())
def test_messages_round_trip(body: dict, message_type: str) -> None:
    import json

    message = {**body, "type": message_type}
    frame = parse_frame(json.dumps(message).encode())
    assert frame.flag is None
    assert frame.value == message
    assert frame.type == message_type


_JSON = st.recursive(
    st.none() | st.integers() | st.text(alphabet='[]{}"\\ab', max_size=5),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(alphabet="[]{}a", max_size=3), children, max_size=3)
    ),
    max_leaves=12,
)


@given(_JSON, st.integers(min_value=0, max_value=6))
def test_the_depth_of_a_parsed_value_is_the_depth_of_its_text(value, limit) -> None:
    """Large frames are measured on the parsed value (a walk), small ones on the text (a
    scan): the two agree, brackets inside strings not counted."""
    from devtools.frames import _deeper_than

    text = json.dumps(value).encode()
    assert _deeper_than(value, limit) == (nesting_depth(text) > limit)


def test_a_large_frame_too_deep_is_flagged_like_a_small_one() -> None:
    deep = b'{"type":"x","pad":"' + b"y" * 2**20 + b'","n":' + b"[" * 600 + b"]" * 600 + b"}"
    assert len(deep) > 2**20
    assert parse_frame(deep).flag == "too-deep"
    assert parse_frame(deep.replace(b"[" * 600, b"[" * 400).replace(b"]" * 600, b"]" * 400)).ok


_KIND_CASES = [
    b'{"type":"a","n":123456789012345678901234567890}',  # a big integer: the exact re-parse
    b'{"type":"a","n":1' + b"0" * 400 + b"}",  # 401 digits: orjson refuses, the exact parser not
    b'{"type":' + b"[" * 600 + b"]" * 600 + b"}",
    b"\xff",
    b'{"type":"\\ud800"}',
    b"[1]",
    b'{"type":1}',
    b"NaN",
]


@pytest.mark.parametrize("payload", _KIND_CASES)
def test_frame_kind_agrees_with_parse_frame_on_edge_cases(payload: bytes) -> None:
    frame = parse_frame(payload)
    assert frame_kind(payload) == (frame.type, frame.flag)
    assert frame_kind(payload.decode("latin-1").encode("latin-1"), True) == (None, "binary")


@settings(max_examples=300)
@given(st.one_of(st.binary(max_size=300), _JSON_TEXTISH.map(str.encode)), st.booleans())
def test_frame_kind_agrees_with_parse_frame(payload: bytes, binary: bool) -> None:
    frame = parse_frame(payload, binary)
    assert frame_kind(payload, binary) == (frame.type, frame.flag)
    assert frame_kind(bytearray(payload), binary) == (frame.type, frame.flag)
