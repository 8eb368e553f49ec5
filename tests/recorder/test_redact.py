"""Redaction by JSON pointer: pure, never mutates its input."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from devtools.errors import BadInput
from recorder.records import build_message
from recorder.redact import parse_pointer, parse_pointers, redact


def test_pointer_escapes():
    assert parse_pointer("/a~1b/c~0d/0") == ("a/b", "c~d", "0")


def test_bad_pointer_is_refused():
    with pytest.raises(BadInput, match="JSON pointer"):
        parse_pointer("password")


def test_removes_nested_fields_and_array_items_without_mutating():
    value = {"type": "login", "auth": {"password": "s3cret", "user": "u"}, "keys": ["k0", "k1"]}
    out, changed = redact(value, parse_pointers(["/auth/password", "/keys/0", "/missing/x"]))
    assert changed
    assert out == {"type": "login", "auth": {"user": "u"}, "keys": ["k1"]}
    assert value["auth"]["password"] == "s3cret" and value["keys"] == ["k0", "k1"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)


def removes_an_array_item(value, pointer) -> bool:
    """Whether ``pointer`` resolves to an item of an array in ``value``."""
    for depth, token in enumerate(pointer):
        if isinstance(value, dict) and token in value:
            value = value[token]
        elif isinstance(value, list) and token.isascii() and token.isdigit():
            if int(token) >= len(value):
                return False
            if depth == len(pointer) - 1:
                return True
            value = value[int(token)]
        else:
            return False
    return False


@given(json_values, st.lists(st.lists(st.text(max_size=3), min_size=1, max_size=3), max_size=3))
def test_redaction_is_idempotent(value, pointers):
    """Law: redacting twice equals redacting once — for fields of objects. An array item is
    removed, so the same pointer then names the next one (see the test below); the recorder
    applies each pointer once."""
    pointers = [tuple(p) for p in pointers]
    once, _ = redact(value, pointers)
    assume(not any(removes_an_array_item(once, p) for p in pointers))
    twice, changed = redact(once, pointers)
    assert twice == once and not changed


def test_a_pointer_to_an_array_item_removes_that_item_and_names_the_next_after():
    once, _ = redact([None, "b"], [("0",)])
    assert once == ["b"]
    assert redact(once, [("0",)]) == ([], True)


def test_redacted_message_keeps_no_trace_even_with_duplicate_keys():
    frame = b'{"type":"login","password":"s3cret","password":"other"}'
    message = build_message(1, 1, "in", 0, frame, False, pointers=parse_pointers(["/password"]))
    assert b"s3cret" not in message.payload and b"other" not in message.payload
    assert message.type == "login" and message.size == len(frame)


def test_unparseable_frame_under_redaction_is_stored_as_length_and_flag():
    frame = b'{"type":"login","password":"s3cret"'  # truncated JSON
    message = build_message(1, 1, "in", 0, frame, False, pointers=parse_pointers(["/password"]))
    assert message.payload == b"" and message.flag == "not-json" and message.size == len(frame)


def test_non_ascii_digits_are_not_array_indexes():
    """Regression: '²'.isdigit() is true, and int('²') raised inside the recorder."""
    assert redact([1, 2], [("²",)]) == ([1, 2], False)


def test_redact_everywhere_applies_each_pointer_at_every_depth_without_mutating():
    from recorder.redact import redact_everywhere

    state = {"customer": "c0", "orders": {"o1": {"customer": "c1", "lines": [{"customer": 2}]}}}
    out, changed = redact_everywhere(state, parse_pointers(["/customer"]))
    assert changed and out == {"orders": {"o1": {"lines": [{}]}}}
    assert state["orders"]["o1"]["customer"] == "c1"
    out, changed = redact_everywhere({"a": [{"auth": {"token": 1, "x": 2}}]}, [("auth", "token")])
    assert changed and out == {"a": [{"auth": {"x": 2}}]}
    assert redact_everywhere({"a": 1}, [("b",)]) == ({"a": 1}, False)


def test_verify_notes_name_the_redacted_paths_a_diff_touches():
    from replayer.findings import Finding, LogResult
    from replayer.verify import redacted_paths, with_redaction_notes

    diff = [{"op": "add", "path": "/orders/o1/customer", "value": "x"}, {"op": "add", "path": "/n"}]
    assert redacted_paths(diff, ["/customer"]) == ["/orders/o1/customer"]
    finding = Finding("recorded-hash", 3, diff=diff)
    result = LogResult("x.rdtlog", (finding,), headline=finding)
    noted = with_redaction_notes(result, {"redacted": ["/customer"]})
    assert noted.info["redacted"] == ["/customer"]
    assert "/orders/o1/customer" in noted.headline.note and noted.findings == (noted.headline,)
    assert with_redaction_notes(LogResult("x"), {"redacted": ["/a"]}) == LogResult("x")
