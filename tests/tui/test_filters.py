"""The `/` filter's parser and predicates (pure)."""

from __future__ import annotations

import pytest

from tests import factories as f
from tui.filters import FilterError, parse_filter
from tui.rows import event_row, message_row


def rows():
    return [
        event_row(f.event(1, "order/created", sender="c1", total=5)),
        event_row(f.event(2, "order/line-added", sender="c2", total=-3)),
        event_row(f.event(3, "cart/added", sender="c1")),
    ]


def keys(text: str) -> list[int]:
    flt = parse_filter(text)
    assert flt is not None
    return [row.key for row in rows() if flt(row)]


def test_empty_filter_shows_everything() -> None:
    assert parse_filter("   ") is None


def test_type_glob() -> None:
    assert keys("order/*") == [1, 2]
    assert keys("type:cart/*") == [3]


def test_sender() -> None:
    assert keys("sender:c1") == [1, 3]
    assert parse_filter("sender:c1").kind == "sender"


def test_expression_over_payload() -> None:
    assert keys("event['total'] < 0") == [2]
    assert keys("expr:v>=2") == [2, 3]


def test_expression_that_raises_on_a_row_does_not_match() -> None:
    assert keys("event['missing'] == 1") == []


def test_expression_cannot_reach_builtins_like_open() -> None:
    assert keys("open('/etc/passwd') is not None") == []


def test_bad_expression_is_a_clear_error() -> None:
    with pytest.raises(FilterError, match="does not parse"):
        parse_filter("event[ == ")


def test_message_rows_filter_by_connection_as_sender() -> None:
    row = message_row(f.message(1, {"type": "a"}, connection=7))
    assert parse_filter("sender:7")(row)
    assert not parse_filter("sender:8")(row)
