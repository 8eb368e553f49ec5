"""The sales-order sample: reducer laws directly, validation and broadcast over real sockets."""

from __future__ import annotations

import asyncio
import copy
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.asyncio.client import connect

from samples import sales_order
from samples.sales_order import reducer

pytestmark = pytest.mark.timeout(30)


def ev(v: int, type: str, **fields) -> dict:
    return {"type": type, **fields, "v": v, "ts": 1_000 + v, "sender": "c1"}


def fold(events: list[dict]) -> dict:
    state = reducer(None, {"type": "@@INIT"})
    for event in events:
        state = reducer(state, event)
    return state


def test_initial_state_and_unknown_events():
    initial = reducer(None, {"type": "@@INIT"})
    assert initial == {"orders": {}, "count": 0}
    assert reducer(initial, ev(1, "something/else")) is initial


def test_totals_follow_added_and_removed_lines():
    state = fold(
        [
            ev(1, "order/created", id="o1", customer="ACME"),
            ev(2, "order/line-added", order="o1", sku="A", qty=2, price=150),
            ev(3, "order/line-added", order="o1", sku="B", qty=1, price=999),
            ev(4, "order/line-added", order="o1", sku="A", qty=1, price=150),
            ev(5, "order/line-removed", order="o1", sku="B"),
            ev(6, "order/submitted", order="o1"),
        ]
    )
    order = state["orders"]["o1"]
    assert order["total"] == 450
    assert order["lines"]["A"]["qty"] == 3
    assert list(order["lines"]) == ["A"]
    assert order["status"] == "submitted"
    assert (order["created_ns"], order["updated_ns"]) == (1001, 1006)


LINE = st.tuples(st.sampled_from("ABC"), st.integers(1, 5), st.integers(0, 1000))


@given(st.lists(st.tuples(st.booleans(), LINE), max_size=25))
def test_reducer_never_mutates_and_total_equals_sum_of_lines(steps):
    state = fold([ev(1, "order/created", id="o1", customer="X")])
    v = 1
    for remove, (sku, qty, price) in steps:
        v += 1
        if remove and sku in state["orders"]["o1"]["lines"]:
            event = ev(v, "order/line-removed", order="o1", sku=sku)
        else:
            event = ev(v, "order/line-added", order="o1", sku=sku, qty=qty, price=price)
        before = copy.deepcopy(state)
        new = reducer(state, event)
        assert state == before  # the input state is untouched
        state = new
        lines = state["orders"]["o1"]["lines"].values()
        assert state["orders"]["o1"]["total"] == sum(line["amount"] for line in lines)


async def recv(ws) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), 5))


async def test_changes_are_broadcast_and_invalid_commands_refused():
    app = sales_order.make_server(token="t")
    async with await app.serve() as h, connect(h.url) as a, connect(h.url) as b:
        await a.send(json.dumps({"type": "order/create", "customer": "ACME"}))
        created = await recv(a)
        assert created == await recv(b)  # pushed to every client
        assert created["type"] == "order/created" and created["id"] == "o1"
        order = created["id"]
        refused = [
            ({"type": "order/submit", "order": order}, "empty"),
            (
                {"type": "order/add-line", "order": "o9", "sku": "A", "qty": 1, "price": 5},
                "unknown order",
            ),
            ({"type": "order/add-line", "order": order, "sku": "A", "qty": 0, "price": 5}, "qty"),
            ({"type": "order/remove-line", "order": order, "sku": "Z"}, "no line"),
            ({"type": "order/create", "customer": " "}, "customer"),
            ({"type": "order/fly"}, "unknown message type"),
        ]
        for message, words in refused:
            await a.send(json.dumps(message))
            reply = await recv(a)
            assert reply["type"] == "error" and words in reply["error"], reply
        await a.send(
            json.dumps({"type": "order/add-line", "order": order, "sku": "A", "qty": 2, "price": 5})
        )
        await a.send(json.dumps({"type": "order/submit", "order": order}))
        for _ in range(2):
            assert await recv(a) == await recv(b)
        await a.send(
            json.dumps({"type": "order/add-line", "order": order, "sku": "B", "qty": 1, "price": 5})
        )
        reply = await recv(a)
        assert reply["type"] == "error" and "submitted" in reply["error"]
        await b.send(json.dumps({"type": "order/list"}))
        listing = await recv(b)
        assert listing["orders"][order]["total"] == 10
        assert listing["orders"][order]["status"] == "submitted"
    assert app.v == 3  # refused commands produced no event
