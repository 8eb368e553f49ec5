"""The reference reducer server over real websockets on 127.0.0.1 (PROTOCOL.md §1)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from devtools import protocol
from devtools.canonical import state_hash
from devtools.server import ReducerServer, ServerHandle
from devtools.server_context import Context, Next
from devtools.tasks import spawn
from devtools.tokens import bearer_header
from samples import sales_order

pytestmark = pytest.mark.timeout(30)

TOKEN = "test-token"
AUTH = bearer_header(TOKEN)


# --------------------------------------------------------------------------- a tiny app


def counter(state: dict | None, event: dict) -> dict:
    """Counts; a ``boom`` event makes the reducer raise."""
    state = {"n": 0, "last": None} if state is None else state
    if event["type"] == "add":
        return {"n": state["n"] + event["by"], "last": event["sender"]}
    if event["type"] == "boom":
        raise RuntimeError("reducer exploded")
    return state


async def counter_mw(ctx: Context, message: dict, next: Next) -> None:
    kind = message["type"]
    if kind == "get":
        ctx.reply({"type": "value", "n": ctx.state["n"]})
        return
    if kind == "crash":
        raise ValueError("middleware exploded")
    if kind == "half":  # emits, then refuses: nothing must stick
        ctx.emit({"type": "add", "by": 1})
        ctx.reply({"type": "never"})
        ctx.reject("changed my mind")
    if kind == "add":
        if not isinstance(message.get("by"), int):
            ctx.reject("'by' must be an integer")
        event = ctx.emit({"type": "add", "by": message["by"]})
        ctx.reply({"type": "added", "v": event["v"]})
        ctx.broadcast({"type": "changed", "n": ctx.state["n"]})
        return
    await next(message)


def ticking_clock() -> Any:
    now = [1_795_420_800_000_000_000]

    def clock() -> int:
        now[0] += 1000
        return now[0]

    return clock


def counter_server(**kw: Any) -> ReducerServer:
    return ReducerServer(
        counter,
        [counter_mw],
        name="counter",
        version="0.1",
        token=TOKEN,
        clock=ticking_clock(),
        **kw,
    )


@pytest.fixture
async def handle() -> AsyncIterator[ServerHandle]:
    h = await counter_server().serve("127.0.0.1", 0)
    try:
        yield h
    finally:
        await h.close()


async def recv_json(ws: ClientConnection, timeout: float = 5) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def recv_until(ws: ClientConnection, kind: str) -> dict:
    while True:
        message = await recv_json(ws)
        if message["type"] == kind:
            return message


async def devtools(h: ServerHandle, **headers: str) -> ClientConnection:
    ws = await connect(h.devtools_url, additional_headers={**AUTH, **headers})
    hello = await recv_json(ws)
    assert hello["type"] == "@@devtools/hello"
    return ws


async def send(ws: ClientConnection, message: dict) -> None:
    await ws.send(json.dumps(message))


# --------------------------------------------------------------------------- clients


async def test_message_becomes_event_reply_and_broadcast(handle):
    async with connect(handle.url) as a, connect(handle.url) as b:
        await send(a, {"type": "add", "by": 5})
        assert await recv_json(a) == {"type": "added", "v": 1}
        assert await recv_json(a) == {"type": "changed", "n": 5}
        assert await recv_json(b) == {"type": "changed", "n": 5}
    assert handle.app.v == 1
    assert handle.app.state == {"n": 5, "last": "c1"}


async def test_bad_frames_get_an_error_reply_to_that_client_only(handle):
    bad = [
        "not json",
        b"\x00binary",
        json.dumps({"no": "type"}),
        json.dumps([1, 2]),
        "[" * 5000 + "]" * 5000,
        '{"type": "x", "n": NaN}',
    ]
    flags = ["not-json", "binary", "no-type", "not-object", "too-deep", "nan"]
    async with connect(handle.url) as a, connect(handle.url) as b:
        for frame, flag in zip(bad, flags, strict=True):
            await a.send(frame)
            reply = await recv_json(a)
            assert reply["type"] == "error"
            assert flag in reply["error"]
        await send(b, {"type": "add", "by": 1})
        # b's first message is its own reply: none of a's errors reached it
        assert await recv_json(b) == {"type": "added", "v": 1}
        await send(a, {"type": "get"})
        assert await recv_until(a, "value") == {"type": "value", "n": 1}


async def test_invalid_utf8_closes_only_that_connection_with_1007(handle):
    """RFC 6455 requires failing a connection whose text frame is not UTF-8; others go on."""
    async with connect(handle.url) as a, connect(handle.url) as b:
        await a.send(b"\xff\xfe{}", text=True)
        with pytest.raises(ConnectionClosed) as closed:
            await recv_json(a)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1007
        await send(b, {"type": "add", "by": 2})
        assert await recv_json(b) == {"type": "added", "v": 1}


async def test_middleware_and_reducer_failures_leave_state_unchanged(handle):
    async with connect(handle.url) as a:
        await send(a, {"type": "add", "by": 3})
        await recv_until(a, "changed")
        for message, expected in [
            ({"type": "crash"}, "middleware exploded"),
            ({"type": "boom"}, "reducer exploded"),
            ({"type": "half"}, "changed my mind"),
            ({"type": "add", "by": "x"}, "'by' must be an integer"),
        ]:
            await send(a, message)
            reply = await recv_json(a)
            assert reply["type"] == "error", reply
            assert expected in reply["error"]
            assert reply["request"] == message["type"]
        await send(a, {"type": "get"})
        assert await recv_json(a) == {"type": "value", "n": 3}
    assert handle.app.v == 1


async def test_cause_from_the_proxy_connection_header(handle):
    dt = await devtools(handle)
    await send(dt, {"type": "@@devtools/subscribe", "snapshot": False})
    async with connect(handle.url, additional_headers={"X-Rdt-Connection": "p7"}) as proxied:
        await proxied.send("garbage")  # message 1 on that connection: no event
        await send(proxied, {"type": "add", "by": 1})  # message 2
        event = await recv_until(dt, "@@devtools/event")
        assert event["cause"] == {"connection": "p7", "n": 2}
    async with connect(handle.url) as direct:
        await send(direct, {"type": "add", "by": 1})
        event = await recv_until(dt, "@@devtools/event")
        assert event["cause"] is None
    await dt.close()


# --------------------------------------------------------------------------- devtools channel


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}]
)
async def test_devtools_refused_with_401_before_upgrade(handle, headers):
    with pytest.raises(InvalidStatus) as refused:
        async with connect(handle.devtools_url, additional_headers=headers):
            pass
    assert refused.value.response.status_code == 401


async def test_devtools_refuses_a_foreign_origin_with_403_as_the_control_endpoint_does():
    h = await counter_server(allow_origins=("http://localhost:3000",)).serve("127.0.0.1", 0)
    try:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(
                h.devtools_url, additional_headers={**AUTH, "Origin": "https://evil.example"}
            ):
                pass
        assert refused.value.response.status_code == 403
        with pytest.raises(InvalidStatus) as no_token:  # the token is still checked first
            async with connect(h.devtools_url, additional_headers={"Origin": "https://x.example"}):
                pass
        assert no_token.value.response.status_code == 401
        ws = await devtools(h, Origin="http://localhost:3000")  # allowed
        await ws.close()
        ws = await devtools(h)  # no Origin header: not a browser
        await ws.close()
        async with connect(h.url, additional_headers={"Origin": "https://app.example"}):
            pass  # the application endpoint itself is not the devtools channel's business
    finally:
        await h.close()


async def test_client_endpoint_needs_no_token_but_devtools_path_query_does(handle):
    async with connect(handle.url):
        pass
    with pytest.raises(InvalidStatus):
        async with connect(handle.devtools_url + "?x=1"):
            pass


async def test_hello_content(handle):
    async with connect(handle.url) as a:
        await send(a, {"type": "add", "by": 2})
        await recv_until(a, "changed")
    async with connect(handle.devtools_url, additional_headers=AUTH) as dt:
        hello = await recv_json(dt)
    assert hello == {
        "type": "@@devtools/hello",
        "protocol": 1,
        "server": {"name": "counter", "version": "0.1"},
        "v": 1,
        "hash": state_hash({"n": 2, "last": "c1"}),
    }


async def test_get_state_answers_with_the_request_id(handle):
    dt = await devtools(handle)
    await send(dt, {"type": "@@devtools/get-state", "id": "q1"})
    snap = await recv_json(dt)
    assert snap == {
        "type": "@@devtools/snapshot",
        "v": 0,
        "state": {"n": 0, "last": None},
        "hash": state_hash({"n": 0, "last": None}),
        "id": "q1",
    }
    await dt.close()


async def test_unknown_and_malformed_devtools_requests_get_errors_and_stay_open(handle):
    dt = await devtools(handle)
    for request in [
        {"type": "@@devtools/teleport", "id": 4},
        {"type": "@@devtools/mark", "label": "x"},
        {"type": "@@devtools/dispatch", "id": 5, "action": "nope"},
    ]:
        await send(dt, request)
        error = await recv_json(dt)
        assert error["type"] == "@@devtools/error"
        assert error["id"] == request.get("id")
    await dt.send("not json")
    assert (await recv_json(dt))["type"] == "@@devtools/error"
    await send(dt, {"type": "@@devtools/get-state", "id": 1})
    assert (await recv_json(dt))["type"] == "@@devtools/snapshot"
    await dt.close()


async def test_dispatch_runs_the_middleware_as_the_devtools_sender(handle):
    dt = await devtools(handle)
    await send(dt, {"type": "@@devtools/subscribe"})
    assert (await recv_json(dt))["v"] == 0
    async with connect(handle.url) as client:
        await send(
            dt, {"type": "@@devtools/dispatch", "id": "d1", "action": {"type": "add", "by": 4}}
        )
        event = await recv_json(dt)
        assert event["event"] == {
            "type": "add",
            "by": 4,
            "v": 1,
            "ts": event["event"]["ts"],
            "sender": "devtools",
        }
        assert event["cause"] is None
        answer = await recv_json(dt)
        assert answer == {
            "type": "@@devtools/dispatched",
            "id": "d1",
            "ok": True,
            "events": [1],
            "error": None,
            "replies": [{"type": "added", "v": 1}],
        }
        assert await recv_json(client) == {"type": "changed", "n": 4}  # broadcasts reach clients
    await send(dt, {"type": "@@devtools/dispatch", "id": "d2", "action": {"type": "half"}})
    refused = await recv_json(dt)
    assert (refused["ok"], refused["events"], refused["error"]) == (False, [], "changed my mind")
    assert handle.app.state == {"n": 4, "last": "devtools"}
    await dt.close()


async def test_events_carry_ts_from_the_clock_and_the_exact_reducer_input():
    seen: list[dict] = []

    def recording_reducer(state, event):
        seen.append(event)
        return counter(state, event)

    app = ReducerServer(
        recording_reducer, [counter_mw], name="c", version="1", token=TOKEN, clock=ticking_clock()
    )
    async with await app.serve() as h:
        dt = await devtools(h)
        await send(dt, {"type": "@@devtools/subscribe", "snapshot": False})
        async with connect(h.url) as a:
            await send(a, {"type": "add", "by": 1})
            await send(a, {"type": "add", "by": 1})
            events = [(await recv_until(dt, "@@devtools/event"))["event"] for _ in range(2)]
        await dt.close()
    assert events == seen[1:]  # seen[0] is @@INIT
    assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)
    assert all(isinstance(e["ts"], int) and e["ts"] > 2**53 for e in events)


async def test_hash_every_k_and_snapshot_every_k():
    app = counter_server(hash_every=3, snapshot_every=4)
    async with await app.serve() as h:
        dt = await devtools(h)
        await send(dt, {"type": "@@devtools/subscribe"})
        snap = await recv_json(dt)
        async with connect(h.url) as a:
            for _ in range(8):
                await send(a, {"type": "add", "by": 1})
            received = []
            while len([m for m in received if m["type"] == "@@devtools/event"]) < 8:
                received.append(await recv_json(dt))
            received.append(await recv_json(dt))  # the snapshot after v=8
        await dt.close()
    state = snap["state"]
    for message in received:
        if message["type"] == "@@devtools/event":
            state = counter(state, message["event"])
            assert ("hash" in message) == (message["v"] % 3 == 0), message
            if "hash" in message:
                assert message["hash"] == state_hash(state)
        else:
            assert message["type"] == "@@devtools/snapshot"
            assert message["v"] % 4 == 0
            assert message["state"] == state
            assert message["hash"] == state_hash(state)
    assert [m["v"] for m in received if m["type"] == "@@devtools/snapshot"] == [4, 8]


async def test_join_under_load_covers_every_v_exactly_once():
    app = sales_order.make_server(token=TOKEN, hash_every=5)
    async with await app.serve() as h:
        joined = asyncio.Event()

        async def shopper(i: int) -> None:
            async with connect(h.url) as ws:
                await send(ws, {"type": "order/create", "customer": f"cust{i}"})
                created = await recv_until(ws, "order/created")
                while created["customer"] != f"cust{i}":
                    created = await recv_until(ws, "order/created")
                order, after_join, k = created["id"], 0, 0
                while after_join < 40:
                    sku = f"s{k % 7}"
                    if k % 5 == 4:
                        message = {"type": "order/remove-line", "order": order, "sku": sku}
                    else:
                        message = {"type": "order/add-line", "order": order, "sku": sku}
                        message.update(qty=1, price=10 + k)
                    await send(ws, message)
                    reply = await recv_json(ws)  # a broadcast, or the error for a missing line
                    while reply.get("order", order) != order:
                        reply = await recv_json(ws)
                    k += 1
                    after_join += joined.is_set()

        tasks = [spawn(shopper(i), f"shopper-{i}") for i in range(4)]
        while h.app.v < 20:
            await asyncio.sleep(0.001)
        dt = await devtools(h)
        await send(dt, {"type": "@@devtools/subscribe"})
        joined.set()
        await asyncio.gather(*tasks)
        await send(dt, {"type": "@@devtools/get-state", "id": "end"})
        messages = []
        while True:
            message = await recv_json(dt)
            if message.get("id") == "end":
                final = message
                break
            messages.append(message)
        await dt.close()
    join, events = messages[0], messages[1:]
    assert join["type"] == "@@devtools/snapshot"
    assert join["v"] >= 20
    assert final["v"] > join["v"]  # the subscription really happened under load
    assert [e["v"] for e in events] == list(range(join["v"] + 1, final["v"] + 1))
    state = join["state"]
    for e in events:
        assert e["event"]["v"] == e["v"]
        state = sales_order.reducer(state, e["event"])
    assert state == final["state"] == app.state
    assert state_hash(state) == final["hash"]


async def test_a_burst_of_events_reaches_a_subscriber_that_reads():
    app = counter_server(queue_size=5)
    async with await app.serve() as h:
        dt = await devtools(h)
        await send(dt, {"type": "@@devtools/subscribe"})
        await recv_json(dt)
        while not app._subscribers:
            await asyncio.sleep(0.001)
        # ten times the queue, without yielding to the event loop: written at once, as the
        # socket takes them, so a reader that keeps up is not taken for a slow one
        for _ in range(50):
            assert (await app.process("local", {"type": "add", "by": 1})).ok
        assert [(await recv_json(dt))["v"] for _ in range(50)] == list(range(1, 51))
        assert app._subscribers


async def test_slow_subscriber_is_dropped_without_stalling_clients():
    app = counter_server(queue_size=5)
    async with await app.serve() as h:
        # a subscriber that stops reading: a small socket receive buffer, and websockets
        # stops reading the socket once a frame waits unread
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before the handshake
        sock.connect(("127.0.0.1", h.port))
        dt = await connect(h.devtools_url, sock=sock, additional_headers=AUTH, max_queue=1)
        assert (await recv_json(dt))["type"] == "@@devtools/hello"
        await send(dt, {"type": "@@devtools/subscribe"})
        while not app._subscribers:
            await asyncio.sleep(0.001)
        # and a small send buffer on the server's side (else the kernel takes megabytes first)
        (peer,) = app._subscribers.values()
        peer.ws.transport.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_SNDBUF, 4096
        )
        sent = 0
        while app._subscribers and sent < 200_000:  # until the socket's buffers are full
            assert (await app.process("local", {"type": "add", "by": 1})).ok
            sent += 1
            if sent % 100 == 0:
                await asyncio.sleep(0)  # the writer drains what the socket takes
        assert not app._subscribers, f"still subscribed after {sent} events"
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await recv_json(dt)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1008
        assert "too slow" in closed.value.rcvd.reason
        async with connect(h.url) as a:  # the server goes on
            await send(a, {"type": "add", "by": 1})
            assert await recv_json(a) == {"type": "added", "v": sent + 1}


async def test_handle_urls_and_close():
    h = await counter_server().serve("127.0.0.1", 0)
    assert h.port > 0
    assert h.url == f"ws://127.0.0.1:{h.port}/"
    assert h.devtools_url == f"ws://127.0.0.1:{h.port}/devtools"
    await h.close()
    with pytest.raises(OSError):
        async with connect(h.url, open_timeout=2):
            pass


def test_empty_token_refused():
    with pytest.raises(ValueError):
        ReducerServer(counter, [], name="x", version="1", token="")


async def test_oversized_frame_closes_only_that_connection_with_1009(handle):
    async with connect(handle.url, max_size=None) as big, connect(handle.url) as other:
        await big.send(json.dumps({"type": "add", "pad": "x" * (2 * 2**20)}))
        with pytest.raises(ConnectionClosed) as closed:
            await recv_json(big)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        await send(other, {"type": "add", "by": 1})
        assert await recv_json(other) == {"type": "added", "v": 1}


async def test_a_hashes_only_subscriber_gets_the_hashes_before_a_snapshot_after_them():
    app = counter_server(snapshot_every=5)
    async with await app.serve() as h:
        dt = await devtools(h)
        await send(dt, protocol.subscribe_request(snapshot=False, hashes_only=True))
        while not app._subscribers:
            await asyncio.sleep(0.001)
        states = []
        for _ in range(7):
            assert (await app.process("local", {"type": "add", "by": 2})).ok
            states.append(app.state)
        got = [await recv_json(dt) for _ in range(3)]  # hashes 1-5, the snapshot, hashes 6-7
        assert [m["type"] for m in got] == [protocol.HASHES, protocol.SNAPSHOT, protocol.HASHES]
        assert [v for v, _ in got[0]["hashes"] + got[2]["hashes"]] == list(range(1, 8))
        expected = [[v, state_hash(s)] for v, s in enumerate(states, start=1)]
        assert got[0]["hashes"] + got[2]["hashes"] == expected
        assert got[1]["v"] == 5 and got[1]["state"] == states[4]
