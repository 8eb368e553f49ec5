"""`rdt record --events-from inbound`: a server without a devtools channel, recorded through the
proxy, its client messages numbered as events.

Two plain servers: one in Python (`websockets` + the sample sales-order reducer) and a real
Node one (`samples/js/plain_server.mjs`: `ws` + a Redux store with the Redux Toolkit twin). Both
do what a plain ws + Redux server does: every `order/*` message is dispatched to the reducer
unchanged and broadcast; anything else is answered without an action.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from typing import Any

from typer.testing import CliRunner
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

from devtools.cli import app
from devtools.frames import parse_frame
from devtools.store import Log
from recorder.app import start_recorder
from recorder.protocols import protocol_for
from recorder.protocols.plain import PlainProtocol
from replayer.engine import Replay
from samples.sales_order import reducer as sales_order
from tests.recorder.conftest import settings_for
from tests.samples.js_support import JS_DIR, requires_node

runner = CliRunner()
T = 1_795_420_800_000_000_000


# --------------------------------------------------------------------------- the seam, pure


def frame(value: Any) -> Any:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return parse_frame(raw)


def test_the_plain_protocol_turns_a_typed_message_into_one_event():
    plain = PlainProtocol()
    assert plain.events_from(frame({"type": "order/create", "customer": "A"}), 3, 42) == [
        {"type": "order/create", "customer": "A", "ts": 42, "sender": 3}
    ]
    # the message's own ts and sender are what the server's reducer saw: kept
    kept = plain.events_from(frame({"type": "x", "ts": 7, "sender": "me"}), 3, 42)
    assert kept == [{"type": "x", "ts": 7, "sender": "me"}]


def test_the_plain_protocol_ignores_frames_that_are_not_typed_messages():
    plain = PlainProtocol()
    for bad in (b"not json", b"[1, 2]", b'{"no": "type"}', b'{"type": 5}'):
        assert plain.events_from(frame(bad), 1, 0) == []
    assert plain.events_from(parse_frame(b"\x00", binary=True), 1, 0) == []


def test_event_types_globs_narrow_the_messages():
    plain = protocol_for("inbound", ("order/*", "cart/add"))
    assert plain is not None
    assert plain.events_from(frame({"type": "order/create"}), 1, 0)
    assert plain.events_from(frame({"type": "cart/add"}), 1, 0)
    assert plain.events_from(frame({"type": "query/list"}), 1, 0) == []
    assert plain.events_from(frame({"type": "Order/create"}), 1, 0) == []  # case-sensitive


# --------------------------------------------------------------------------- real sockets


class PlainServer:
    """A plain websocket server: dispatches each order/* message, answers query/* itself."""

    def __init__(self) -> None:
        self.state = sales_order(None, {"type": "@@INIT"})
        self.clients: set[Any] = set()
        self.actions = 0

    async def handler(self, ws: Any) -> None:
        self.clients.add(ws)
        try:
            async for data in ws:
                action = json.loads(data)
                if action["type"].startswith("order/"):
                    self.state = sales_order(self.state, action)
                    self.actions += 1
                    for client in list(self.clients):
                        await client.send(data)
                else:
                    await ws.send(json.dumps({"type": "orders", "count": self.state["count"]}))
        finally:
            self.clients.discard(ws)


def orders_of(n: int, rounds: int) -> list[dict[str, Any]]:
    """Client ``n``'s messages: its own orders (so their order across clients does not matter
    to the final state), client-stamped times, and queries that are no actions."""
    out: list[dict[str, Any]] = []
    ts = T + n * 10**9
    for k in range(rounds):
        oid = f"o{n}-{k}"
        ts += 1000
        out.append({"type": "order/created", "id": oid, "customer": f"C{n}", "ts": ts})
        for sku in ("apple", "pear"):
            ts += 1000
            line = {"order": oid, "sku": sku, "qty": k + 1, "price": 250}
            out.append({"type": "order/line-added", **line, "ts": ts})
        if k % 3 == 0:
            ts += 1000
            out.append({"type": "order/line-removed", "order": oid, "sku": "pear", "ts": ts})
        ts += 1000
        status = "order/submitted" if k % 2 else "order/cancelled"
        out.append({"type": status, "order": oid, "ts": ts})
        out.append({"type": "query/list"})
    return out


async def drive(url: str, n: int, rounds: int) -> int:
    sent = 0
    async with connect(url) as ws:
        for message in orders_of(n, rounds):
            await ws.send(json.dumps(message))
            sent += message["type"].startswith("order/")
        await ws.send(json.dumps({"type": "query/list"}))
        while json.loads(await ws.recv())["type"] != "orders":
            pass  # broadcasts; the answer comes after every earlier message of this client
    return sent


async def test_a_plain_server_replays_to_its_own_final_state(sqlite_log):
    server = PlainServer()
    async with serve(server.handler, "127.0.0.1", 0) as upstream:
        port = upstream.sockets[0].getsockname()[1]
        settings = settings_for(port, sqlite_log, events_from="inbound", event_types=("order/*",))
        handle = await start_recorder(settings)
        try:
            sent = await asyncio.gather(*(drive(handle.url, n, 30) for n in range(5)))
        finally:
            await handle.close()
    assert server.actions == sum(sent) == handle.session.events
    with Log.open(sqlite_log) as opened:
        reader = opened.reader()
        server_info = reader.recording.server
        assert server_info["events_from"] == "inbound"
        assert server_info["event_types"] == ["order/*"]
        events = list(reader.events())
        assert [e.v for e in events] == list(range(1, sum(sent) + 1))
        for e in events[:50]:
            cause = reader.message(e.cause_seq)
            assert cause.direction == "in" and cause.connection == e.event["sender"]
            assert json.loads(cause.payload) == {
                k: val for k, val in e.event.items() if k not in ("v", "sender")
            }
        assert all(e.type.startswith("order/") for e in events)
    with Replay.open(sqlite_log, reducer="samples.sales_order:reducer") as replay:
        assert replay.state_at() == server.state
    assert server.state["count"] == 150
    verified = runner.invoke(
        app, ["verify", sqlite_log, "--reducer", "samples.sales_order:reducer"]
    )
    assert verified.exit_code == 0, verified.output


async def test_the_recorder_stamps_ts_and_sender_on_messages_without_them(sqlite_log):
    async def echo(ws: Any) -> None:
        async for data in ws:
            await ws.send(data)

    async with serve(echo, "127.0.0.1", 0) as upstream:
        port = upstream.sockets[0].getsockname()[1]
        handle = await start_recorder(settings_for(port, sqlite_log, events_from="inbound"))
        try:
            before = time.time_ns()
            async with connect(handle.url) as ws:
                for message in ('{"type": "a/one"}', "not json", '{"x": 1}', '{"type": "b"}'):
                    await ws.send(message)
                    await ws.recv()
            after = time.time_ns()
        finally:
            await handle.close()
    with Log.open(sqlite_log) as opened:
        events = list(opened.reader().events())
    assert [(e.v, e.type, e.cause_seq) for e in events] == [(1, "a/one", 1), (2, "b", 7)]
    for e in events:
        assert e.event["sender"] == 1 and before <= e.event["ts"] <= after
        assert e.event["ts"] == e.t_ns and e.event["v"] == e.v


def test_events_from_inbound_with_devtools_path_is_a_usage_error():
    result = runner.invoke(
        app,
        ["record", "--upstream", "ws://127.0.0.1:9", "--events-from", "inbound",
         "--devtools-path", "/devtools"],
    )  # fmt: skip
    assert result.exit_code == 3
    assert "exclude each other" in result.stderr and result.stderr.count("\n") == 1
    for args, needle in [
        (["--events-from", "outbound"], "--events-from must be inbound"),
        (["--event-types", "order/*"], "--event-types needs --events-from inbound"),
    ]:
        result = runner.invoke(app, ["record", "--upstream", "ws://127.0.0.1:9", *args])
        assert result.exit_code == 3 and needle in result.stderr


def test_record_help_says_what_events_from_inbound_assumes():
    result = runner.invoke(app, ["record", "--help"], terminal_width=200)
    text = " ".join(result.output.split())
    assert "--events-from" in text and "--event-types" in text
    assert "dispatches each such message" in text
    assert "in the order the recorder forwarded them" in text


@requires_node
async def test_a_plain_node_ws_redux_server_replays_to_its_own_final_state(sqlite_log):
    """The same case with a real Node server: `ws` + a Redux store with the Redux Toolkit twin,
    no devtools channel; the JS replay of what the recorder derived equals the server's state."""
    node = subprocess.Popen(
        ["node", str(JS_DIR / "plain_server.mjs"), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert node.stdout is not None
        port = json.loads(node.stdout.readline())["port"]
        settings = settings_for(port, sqlite_log, events_from="inbound", event_types=("order/*",))
        handle = await start_recorder(settings)
        try:
            sent = await asyncio.gather(*(drive(handle.url, n, 20) for n in range(4)))
            async with connect(handle.url) as ws:
                await ws.send(json.dumps({"type": "query/state"}))
                server_state = json.loads(await ws.recv())["state"]
        finally:
            await handle.close()
    finally:
        node.terminate()
        node.wait(timeout=10)
    assert handle.session.events == sum(sent)
    assert server_state["count"] == 80
    with Replay.open(sqlite_log, reducer="samples/js/sales_order.mjs:reducer") as replay:
        assert replay.state_at() == server_state
    verified = runner.invoke(
        app, ["verify", sqlite_log, "--reducer", "samples/js/sales_order.mjs:reducer"]
    )
    assert verified.exit_code == 0, verified.output
