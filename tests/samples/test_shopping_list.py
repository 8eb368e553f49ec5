"""The CQRS shopping list: aggregate and read model directly, rejection and queries on sockets."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect

from devtools.tokens import bearer_header
from samples import shopping_list
from samples.shopping_list import decide, read_model, reducer

pytestmark = pytest.mark.timeout(30)


def state_with(*names: str) -> dict:
    state = reducer(None, {"type": "@@INIT"})
    for v, name in enumerate(names, 1):
        state = reducer(
            state,
            {"type": "list/item-added", "item": name, "qty": 1, "v": v, "ts": v, "sender": "c"},
        )
    return state


def test_aggregate_refuses_duplicates_unknowns_and_empty_names():
    state = state_with("Milk")
    assert "already on the list" in decide(state, {"type": "list/add-item", "item": " milk "})
    assert "not on the list" in decide(state, {"type": "list/check-item", "item": "bread"})
    assert "not on the list" in decide(state, {"type": "list/remove-item", "item": "bread"})
    assert "empty" in decide(state, {"type": "list/add-item", "item": "  "})
    assert "empty" in decide(state, {"type": "list/rename", "name": ""})
    assert "qty" in decide(state, {"type": "list/add-item", "item": "eggs", "qty": 0})


def test_aggregate_accepts_into_events():
    state = state_with("Milk")
    assert decide(state, {"type": "list/check-item", "item": "MILK"}) == [
        {"type": "list/item-checked", "item": "Milk", "checked": True}
    ]
    assert decide(state, {"type": "list/add-item", "item": " eggs", "qty": 2}) == [
        {"type": "list/item-added", "item": "eggs", "qty": 2}
    ]


def test_read_model_lists_unchecked_first():
    state = state_with("tea", "bread")
    state = reducer(
        state,
        {
            "type": "list/item-checked",
            "item": "bread",
            "checked": True,
            "v": 3,
            "ts": 3,
            "sender": "c",
        },
    )
    model = read_model(state)
    assert [i["name"] for i in model["items"]] == ["tea", "bread"]
    assert model["open"] == 1


async def recv(ws) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), 5))


async def test_rejected_commands_produce_no_event_and_queries_are_answered():
    app = shopping_list.make_server(token="t")
    async with await app.serve() as h, connect(h.url) as a, connect(h.url) as b:
        devtools = await connect(h.devtools_url, additional_headers=bearer_header("t"))
        await recv(devtools)  # hello
        await devtools.send(json.dumps({"type": "@@devtools/subscribe", "snapshot": False}))
        await a.send(json.dumps({"type": "list/add-item", "item": "Milk"}))
        added = await recv(a)
        assert added["type"] == "list/item-added"
        assert await recv(b) == added
        for command in [
            {"type": "list/add-item", "item": "milk"},
            {"type": "list/check-item", "item": "caviar"},
            {"type": "list/rename", "name": "   "},
        ]:
            await a.send(json.dumps(command))
            reply = await recv(a)
            assert reply["type"] == "error"
        await b.send(json.dumps({"type": "list/query"}))
        answer = await recv(b)
        assert answer == {
            "type": "list/items",
            "name": "Shopping",
            "items": [{"name": "Milk", "qty": 1, "checked": False}],
            "open": 1,
        }
        await a.send(json.dumps({"type": "list/check-item", "item": "MILK"}))
        await recv(a)
        events = [json.loads(await asyncio.wait_for(devtools.recv(), 5)) for _ in range(2)]
        await devtools.close()
    # only the two accepted commands reached the event stream; rejections and the query did not
    assert [e["event"]["type"] for e in events] == ["list/item-added", "list/item-checked"]
    assert [e["v"] for e in events] == [1, 2]
    assert app.v == 2
