"""The planted bug: exactly the documented sequence makes a total negative."""

from __future__ import annotations

from samples import sales_order, sales_order_buggy


def ev(v: int, type: str, **fields) -> dict:
    return {"type": type, **fields, "v": v, "ts": v, "sender": "c1"}


def fold(reducer, events):
    state = reducer(None, {"type": "@@INIT"})
    for event in events:
        state = reducer(state, event)
    return state


CREATE = ev(1, "order/created", id="o1", customer="ACME")
ADD = ev(2, "order/line-added", order="o1", sku="A", qty=1, price=500)
ADD_AGAIN = ev(3, "order/line-added", order="o1", sku="A", qty=1, price=500)
REMOVE = ev(4, "order/line-removed", order="o1", sku="A")


def test_documented_sequence_goes_negative_only_in_the_buggy_reducer():
    events = [CREATE, ADD, ADD_AGAIN, REMOVE]
    assert fold(sales_order_buggy.reducer, events)["orders"]["o1"]["total"] == -1000
    assert fold(sales_order.reducer, events)["orders"]["o1"]["total"] == 0
    assert "-1000" in sales_order_buggy.__doc__ or "total -1000" in sales_order_buggy.__doc__


def test_a_line_added_once_is_removed_correctly():
    events = [CREATE, ADD, ev(3, "order/line-removed", order="o1", sku="A")]
    assert fold(sales_order_buggy.reducer, events) == fold(sales_order.reducer, events)


def test_same_middleware_and_a_server():
    assert sales_order_buggy.MIDDLEWARE is sales_order.MIDDLEWARE
    app = sales_order_buggy.make_server(token="t")
    assert app.name == "sales-order-buggy"
