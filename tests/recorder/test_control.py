"""The control endpoint (PROTOCOL.md §2) over real sockets."""

from __future__ import annotations

import asyncio

import pytest
import websockets

from devtools import jsonutil, protocol
from devtools.store import Log
from recorder.app import start_recorder
from samples.sales_order import make_server
from tests.recorder.conftest import TOKEN, settings_for

pytestmark = pytest.mark.timeout(60)

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def live(sqlite_log):
    """A sales-order server with a recorder in front of it, devtools channel joined."""
    server = await make_server(token=TOKEN).serve("127.0.0.1", 0)
    settings = settings_for(
        server.port, sqlite_log, devtools_path="/devtools", allow_origins=("http://localhost:3000",)
    )
    handle = await start_recorder(settings)
    await handle.wait_joined()
    try:
        yield handle
    finally:
        await handle.close()
        await server.close()


async def control(handle, headers=AUTH, **kw):
    return websockets.connect(handle.control_url, proxy=None, additional_headers=headers, **kw)


async def ask(ws, request: dict) -> dict:
    await ws.send(jsonutil.dumps(request).decode())
    return jsonutil.loads(await ws.recv())


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong"}, 401),
        ({**AUTH, "Origin": "https://evil.example"}, 403),
    ],
    ids=["no-token", "wrong-token", "foreign-origin"],
)
async def test_refused_before_the_upgrade(live, headers, status):
    with pytest.raises(websockets.InvalidStatus) as info:
        await websockets.connect(live.control_url, proxy=None, additional_headers=headers)
    assert info.value.response.status_code == status


async def test_an_allowed_origin_is_accepted_and_status_answers(live):
    headers = {**AUTH, "Origin": "http://localhost:3000"}
    async with await control(live, headers) as ws:
        answer = await ask(ws, protocol.status_request())
    assert answer["type"] == protocol.STATUS
    assert answer["recording"] == live.recording_id and answer["messages"] == 0


async def test_subscribe_replays_the_log_then_goes_live_without_doubles(live):
    async with websockets.connect(live.url, proxy=None) as client:
        await client.send('{"type":"order/create","customer":"A"}')
        await client.recv()
        async with asyncio.timeout(5):
            while live.session.events < 1:
                await asyncio.sleep(0.01)
        async with await control(live) as ws:
            await ws.send(jsonutil.dumps(protocol.subscribe_request(from_seq=1)).decode())
            await ws.send(jsonutil.dumps(protocol.mark_request("here")).decode())
            await client.send('{"type":"order/create","customer":"B"}')
            records = []
            async with asyncio.timeout(5):
                while sum(r.get("kind") == "event" for r in records) < 2 or not any(
                    r.get("kind") == "message" and r["seq"] == 4 for r in records
                ):
                    records.append(jsonutil.loads(await ws.recv()))
    kinds = [r.get("kind") or r.get("type") for r in records]
    seqs = [r["seq"] for r in records if r.get("kind") == "message"]
    assert seqs == [1, 2, 3, 4]  # replayed, then live, none twice
    assert [r["v"] for r in records if r.get("kind") == "event"] == [1, 2]
    assert "connection" in kinds and "snapshot" in kinds and protocol.MARKED in kinds
    event = next(r for r in records if r.get("kind") == "event")
    assert event["cause_seq"] == 1


async def test_subscribe_kinds_filter(live):
    async with await control(live) as ws:
        await ws.send(jsonutil.dumps(protocol.subscribe_request(kinds=["mark"])).decode())
        async with websockets.connect(live.url, proxy=None) as client:
            await client.send('{"type":"order/list"}')
            await client.recv()
        answer = await ask(ws, protocol.mark_request("only marks"))
        assert answer == {"type": protocol.MARKED, "seq": 2}
        record = jsonutil.loads(await asyncio.wait_for(ws.recv(), 5))
    assert record["kind"] == "mark" and record["label"] == "only marks"


async def test_inject_via_devtools_is_applied_once_per_id_and_recorded(live, sqlite_log):
    action = {"type": "order/create", "customer": "injected"}
    async with await control(live) as ws:
        first = await ask(ws, protocol.inject_request("i-1", action))
        again = await ask(ws, protocol.inject_request("i-1", action))
    assert first["type"] == protocol.INJECTED and first["ok"] is True
    assert first["events"] == [1] and again == first
    await live.close()
    with Log.open(sqlite_log) as log:
        reader = log.reader()
        events = list(reader.events())
        (conn,) = reader.connections()
        injected = reader.message(first["seq"])
    assert [e.v for e in events] == [1]  # applied once
    assert events[0].cause_seq == first["seq"]
    assert conn.origin == "injected" and injected.type == "order/create"


async def test_an_inject_without_an_id_gets_one_and_a_retry_with_it_is_idempotent(live, sqlite_log):
    action = {"type": "order/create", "customer": "no-id"}
    async with await control(live) as ws:
        first = await ask(ws, {"type": protocol.INJECT, "action": action, "via": "devtools"})
        assigned = first["id"]
        retry = await ask(ws, protocol.inject_request(assigned, action))
        other = await ask(ws, {"type": protocol.INJECT, "action": action, "via": "devtools"})
    assert first["ok"] is True and isinstance(assigned, str) and assigned.startswith("rdt-")
    assert retry == first  # applied once
    assert other["id"] != assigned and other["events"] == [2]
    await live.close()
    with Log.open(sqlite_log) as log:
        assert [e.v for e in log.reader().events()] == [1, 2]


async def test_inject_via_client_goes_through_the_proxy_as_an_injected_connection(live, sqlite_log):
    action = {"type": "order/create", "customer": "synthetic"}
    async with await control(live) as ws:
        answer = await ask(ws, protocol.inject_request("c-1", action, via="client"))
    assert answer["ok"] is True and answer["events"] == [1]
    assert any(
        r.get("type") == "order/created" or "order" in jsonutil.dumps(r).decode()
        for r in answer["replies"]
    )
    await live.close()
    with Log.open(sqlite_log) as log:
        reader = log.reader()
        (conn,) = reader.connections()
        message = reader.message(answer["seq"])
    assert conn.origin == "injected" and message.direction == "in"
    assert message.payload == jsonutil.dumps(action)


async def test_bad_requests_get_an_error_and_the_connection_stays_open(live):
    async with await control(live) as ws:
        assert (await ask(ws, {"type": "nope"}))["type"] == protocol.ERROR
        await ws.send("not json")
        assert jsonutil.loads(await ws.recv())["type"] == protocol.ERROR
        assert (await ask(ws, protocol.status_request()))["type"] == protocol.STATUS


async def test_inject_via_devtools_without_a_channel_fails_clearly(echo_server, sqlite_log):
    handle = await start_recorder(settings_for(echo_server.port, sqlite_log))
    async with handle, await control(handle) as ws:
        answer = await ask(ws, protocol.inject_request("x", {"type": "a"}))
    assert answer["ok"] is False and "--devtools-path" in answer["error"]
