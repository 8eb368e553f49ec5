"""`rdt replay-traffic` and `rdt diff-runs` against real servers on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

from devtools.cli import app
from devtools.model import Connection, Message
from devtools.store import Log
from devtools.tasks import spawn
from recorder.app import start_recorder
from recorder.replay_plan import build_plan
from recorder.traffic_commands import load_plan
from recorder.traffic_replay import ReplaySettings, TrafficReplay, parse_target
from samples import sales_order, sales_order_buggy
from tests.recorder.conftest import TOKEN, settings_for

runner = CliRunner()


class Checking:
    """A target that echoes every message and keeps, in arrival order, (path, message)."""

    def __init__(self, *, close_after: int | None = None, silent: bool = False) -> None:
        self.arrived: list[tuple[str, Any]] = []
        self.close_after = close_after
        self.silent = silent

    async def handler(self, ws: Any) -> None:
        count = 0
        async for message in ws:
            self.arrived.append((ws.request.path, message))
            count += 1
            if self.close_after is not None and count >= self.close_after:
                await ws.close(1011, "enough")
                return
            if not self.silent:
                await ws.send(message)


async def _serve(handler: Any) -> Any:
    server = await serve(handler, "127.0.0.1", 0)
    server.port = server.sockets[0].getsockname()[1]
    return server


async def _record_traffic(log: str, port: int, *, connections: int, rounds: int) -> None:
    """Record `connections` clients through a real recorder, round robin, each waiting for its
    echo, text and binary frames mixed."""
    handle = await start_recorder(settings_for(port, log, control=None))
    try:
        clients = [await connect(f"{handle.url}c{i}", proxy=None) for i in range(connections)]
        for r in range(rounds):
            for i, ws in enumerate(clients):
                frame: Any = (
                    bytes([i, r, 0xFF]) if (i + r) % 7 == 0 else f'{{"type":"t","c":{i},"r":{r}}}'
                )
                await ws.send(frame)
                assert await ws.recv() == frame
        for ws in clients:
            await ws.close()
    finally:
        await handle.close()


def _replay(source: str, port: int, new_log: str, pace: str, **kw: Any) -> Any:
    plan, _ = load_plan(source, None, connections=kw.pop("connections", None), skip_flagged=False)
    settings = ReplaySettings(
        target=parse_target(f"ws://127.0.0.1:{port}"), log=new_log, pace=pace, **kw
    )
    return TrafficReplay(plan, settings)


@pytest.mark.parametrize("pace", ["replies", "original", "fast"])
async def test_fifty_connections_arrive_identical_and_in_order(tmp_path: Path, pace: str):
    source = str(tmp_path / "a.rdtlog")
    recorded = Checking()
    server = await _serve(recorded.handler)
    try:
        await _record_traffic(source, server.port, connections=50, rounds=3)
    finally:
        server.close()
    target = Checking()
    server = await _serve(target.handler)
    try:
        result = await _replay(
            source, server.port, str(tmp_path / "b.rdtlog"), pace, speed=20
        ).run()
    finally:
        server.close()
    assert result.problems == ()
    assert result.sent == 150 and result.received == 150
    per_conn = lambda arrived: {  # noqa: E731
        path: [m for p, m in arrived if p == path] for path, _ in arrived
    }
    assert per_conn(target.arrived) == per_conn(recorded.arrived)  # same bytes, same kind
    if pace == "replies":  # only waiting for the echo orders arrival across connections
        assert target.arrived == recorded.arrived
    with Log.open(str(tmp_path / "b.rdtlog")) as log:
        reader = log.reader()
        conns = reader.connections()
        assert [c.path for c in conns] == [f"/c{i}" for i in range(50)]
        assert all(c.closed_ns is not None and c.close_code == 1000 for c in conns)
        sent = [m.payload for m in reader.messages(direction="in")]
    with Log.open(source) as log:
        assert sent == [m.payload for m in log.reader().messages(direction="in")]
    code = runner.invoke(app, ["diff-runs", source, str(tmp_path / "b.rdtlog")]).exit_code
    assert code == 0


async def test_a_target_that_closes_early_is_named_with_connection_and_frame(tmp_path: Path):
    source = str(tmp_path / "a.rdtlog")
    server = await _serve(Checking().handler)
    try:
        await _record_traffic(source, server.port, connections=2, rounds=4)
    finally:
        server.close()
    server = await _serve(Checking(close_after=2).handler)
    try:
        async with asyncio.timeout(20):
            result = await _replay(
                source, server.port, str(tmp_path / "b.rdtlog"), "replies", reply_timeout=2
            ).run()
    finally:
        server.close()
    kinds = {(p.connection, p.kind) for p in result.problems}
    assert kinds == {(1, "closed-early"), (2, "closed-early")}
    first = next(p for p in result.problems if p.connection == 1)
    assert first.seq is not None and "1011" in first.line() and "frame seq" in first.line()


async def test_a_target_that_stops_replying_is_reported_not_waited_for(tmp_path: Path):
    source = str(tmp_path / "a.rdtlog")
    server = await _serve(Checking().handler)
    try:
        await _record_traffic(source, server.port, connections=3, rounds=2)
    finally:
        server.close()
    server = await _serve(Checking(silent=True).handler)
    try:
        async with asyncio.timeout(20):
            result = await _replay(
                source, server.port, str(tmp_path / "b.rdtlog"), "replies", reply_timeout=0.3
            ).run()
    finally:
        server.close()
    assert {p.kind for p in result.problems} == {"no-reply"}
    assert {p.connection for p in result.problems} == {1, 2, 3}
    assert result.sent == 6  # every frame was still sent


def test_a_refused_target_is_reported_and_exits_1(tmp_path: Path):
    source = str(tmp_path / "a.rdtlog")

    async def record() -> None:
        server = await _serve(Checking().handler)
        try:
            await _record_traffic(source, server.port, connections=1, rounds=1)
        finally:
            server.close()

    asyncio.run(record())
    result = runner.invoke(
        app,
        ["replay-traffic", source, "--target", "ws://127.0.0.1:1", "--log", str(tmp_path / "b")],
    )
    assert result.exit_code == 1
    assert "connection 1: refused" in result.output


def test_bad_input_exits_3(tmp_path: Path):
    result = runner.invoke(app, ["replay-traffic", str(tmp_path / "none"), "--target", "ws://x:1"])
    assert result.exit_code == 3
    result = runner.invoke(app, ["replay-traffic", "x", "--target", "http://x:1"])
    assert result.exit_code == 3 and "ws://" in result.output
    result = runner.invoke(app, ["diff-runs", str(tmp_path / "a"), str(tmp_path / "b")])
    assert result.exit_code == 3


def test_the_plan_keeps_order_and_skips_flagged_frames_on_request():
    conns = [
        Connection(1, "p", "/a", opened_ns=0, closed_ns=100),
        Connection(2, "p", "/b", opened_ns=10),
    ]
    msgs = [
        Message(1, 1, "in", 1, "t", b'{"type":"t"}'),
        Message(2, 1, "out", 2, "t", b"r1"),
        Message(3, 2, "in", 11, None, b"\x00", binary=True, flag="binary"),
        Message(4, 2, "out", 12, None, b"r2"),
        Message(5, 1, "in", 20, "t", b'{"type":"u"}'),
        Message(6, 1, "out", 21, "t", b"r3"),
    ]
    plan = build_plan(conns, msgs)
    assert [(s.kind, s.connection, s.seq, s.expect) for s in plan.steps] == [
        ("open", 1, 0, 0),
        ("send", 1, 1, 1),
        ("open", 2, 0, 0),
        ("send", 2, 3, 1),
        ("send", 1, 5, 2),
        ("close", 2, 0, 1),  # never closed in the recording: at the end
        ("close", 1, 0, 2),
    ]
    skipped = build_plan(conns, msgs, skip_flagged=True)
    assert [s.seq for s in skipped.steps if s.kind == "send"] == [1, 5]
    assert [(s.connection, s.seq) for s in skipped.skipped] == [(2, 3)]
    assert [s.expect for s in skipped.steps if s.kind == "close"] == [0, 2]


def _clock() -> Any:
    return itertools.count(1_700_000_000_000_000_000, 1000).__next__


BUG_SEQUENCE = [
    {"type": "order/create", "customer": "ACME"},
    {"type": "order/add-line", "order": "o1", "sku": "A", "qty": 1, "price": 500},
    {"type": "order/add-line", "order": "o1", "sku": "A", "qty": 1, "price": 500},
    {"type": "order/remove-line", "order": "o1", "sku": "A"},
    {"type": "order/list"},
]


async def _sales_run(module: Any, log: str, source: str | None) -> None:
    """One run of the sales-order traffic: recorded live (``source`` None) or replayed."""
    server = module.make_server(token=TOKEN, clock=_clock())
    handle = await server.serve("127.0.0.1", 0)
    try:
        if source is None:
            settings = settings_for(handle.port, log, control=None, devtools_path="/devtools")
            recorder = await start_recorder(settings)
            await recorder.wait_joined()
            from devtools import jsonutil

            async with connect(recorder.url, proxy=None) as ws, connect(recorder.url, proxy=None):
                for message in BUG_SEQUENCE:
                    await ws.send(jsonutil.dumps(message).decode())
                    await ws.recv()
            await asyncio.sleep(0.3)
            await recorder.close()
        else:
            replay = _replay(
                source, handle.port, log, "replies", devtools_path="/devtools", token=TOKEN
            )
            result = await replay.run()
            assert result.problems == ()
    finally:
        await handle.close()


def test_diff_runs_same_server_is_same_and_buggy_names_the_first_changed_reply(tmp_path: Path):
    a, b, c = (str(tmp_path / f"{name}.rdtlog") for name in "abc")
    asyncio.run(_sales_run(sales_order, a, None))
    asyncio.run(_sales_run(sales_order, b, a))
    asyncio.run(_sales_run(sales_order_buggy, c, a))
    ignore = [
        "--ignore",
        "/ts",
        "--ignore",
        "/orders/*/created_ns",
        "--ignore",
        "/orders/*/updated_ns",
    ]
    same = runner.invoke(app, ["diff-runs", a, b, *ignore])
    assert same.exit_code == 0, same.output
    assert "same" in same.output
    changed = runner.invoke(app, ["diff-runs", a, c, *ignore])
    assert changed.exit_code == 1, changed.output
    assert "connection 1: first differing reply: frame 5" in changed.output
    assert "order/list" in changed.output and "0 → -1000" in changed.output
    assert "state hash" in changed.output  # the events agree, the buggy state does not
    as_json = runner.invoke(app, ["diff-runs", a, c, "--json", *ignore])
    assert as_json.exit_code == 1
    assert '"path":"/orders/o1/total","value":-1000' in as_json.output
    assert runner.invoke(app, ["diff-runs", a, c, "--ignore", "ts"]).exit_code == 3


class Handshakes:
    """A target that keeps the handshake of every connection it accepts, and echoes."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    async def handler(self, ws: Any) -> None:
        request = ws.request
        self.seen.append(
            {
                "path": request.path,
                "headers": list(request.headers.raw_items()),
                "subprotocol": ws.subprotocol,
            }
        )
        async for message in ws:
            await ws.send(message)

    def header(self, n: int, name: str) -> list[str]:
        return [v for k, v in self.seen[n]["headers"] if k.lower() == name.lower()]


async def _serve_handshakes(target: Handshakes, *, chat: bool = True, **kw: Any) -> Any:
    """Serve ``target``; with ``chat`` it speaks (and requires) the subprotocol ``chat.v1``."""
    protocols = ["chat.v1"] if chat else None
    server = await serve(target.handler, "127.0.0.1", 0, subprotocols=protocols, **kw)
    server.port = server.sockets[0].getsockname()[1]
    return server


@contextlib.contextmanager
def _serving_in_a_thread(target: Handshakes, **kw: Any) -> Iterator[int]:
    """Serve ``target`` on a loop of its own (the CLI runs its loop in the main thread)."""
    loop = asyncio.new_event_loop()
    box: dict[str, Any] = {}
    started = threading.Event()

    def run() -> None:
        server = loop.run_until_complete(_serve_handshakes(target, **kw))
        box["port"] = server.port
        started.set()
        loop.run_forever()
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield box["port"]
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


SECRETS = ("hdr-SECRET-1", "qry-SECRET-2", "auth-SECRET-3", "cookie-SECRET-4")


async def _record_with_handshake(log: str) -> Handshakes:
    """One connection recorded through a real recorder with a rich handshake."""
    first = Handshakes()
    server = await _serve_handshakes(first)
    settings = settings_for(
        server.port, log, control=None, redact_headers=("X-Api-Key",), redact_query=("token",)
    )
    handle = await start_recorder(settings)
    try:
        async with connect(
            handle.url + f"room/7?token={SECRETS[1]}&lang=en",
            proxy=None,
            origin="https://app.example",
            user_agent_header="shop-app/2.1",
            subprotocols=["chat.v2", "chat.v1"],
            additional_headers=[
                ("X-Api-Key", SECRETS[0]),
                ("Authorization", SECRETS[2]),
                ("Cookie", SECRETS[3]),
                ("X-Tenant", "acme"),
                ("X-Tenant", "beta"),
            ],
        ) as ws:
            await ws.send('{"type":"hello"}')
            await ws.recv()
    finally:
        await handle.close()
        server.close()
    return first


def test_the_recorded_handshake_is_resent_without_what_must_not_be(tmp_path: Path):
    source, new = str(tmp_path / "a.rdtlog"), str(tmp_path / "b.rdtlog")
    recorded = asyncio.run(_record_with_handshake(source))
    target = Handshakes()

    async def replay() -> Any:
        server = await _serve_handshakes(target)
        try:
            return await _replay(source, server.port, new, "replies").run()
        finally:
            server.close()

    result = asyncio.run(replay())
    assert result.problems == () and result.received == 1
    (got,) = target.seen
    assert got["path"] == "/room/7?lang=en"  # the redacted query parameter is left out
    assert got["subprotocol"] == "chat.v1"
    assert target.header(0, "Sec-WebSocket-Protocol") == ["chat.v2, chat.v1"]
    assert target.header(0, "Origin") == ["https://app.example"]
    assert target.header(0, "User-Agent") == ["shop-app/2.1"]
    assert target.header(0, "X-Tenant") == ["acme", "beta"]
    assert "permessage-deflate" in target.header(0, "Sec-WebSocket-Extensions")[0]
    for name in ("X-Api-Key", "Authorization", "Cookie"):  # redacted by the recording
        assert target.header(0, name) == []
    (own,) = target.header(0, "X-Rdt-Connection")  # the replay's own, not the recorded one
    assert own != recorded.header(0, "X-Rdt-Connection")[0]
    with Log.open(new) as log:
        (conn,) = log.reader().connections()
    assert conn.path == "/room/7"
    assert conn.handshake["target"] == "/room/7?lang=en"
    assert conn.handshake["subprotocols"] == ["chat.v2", "chat.v1"]
    assert ["X-Tenant", "acme"] in conn.handshake["headers"]


def test_header_option_adds_credentials_and_the_new_log_never_stores_them(tmp_path: Path):
    source, new = str(tmp_path / "a.rdtlog"), str(tmp_path / "b.rdtlog")
    asyncio.run(_record_with_handshake(source))
    target = Handshakes()
    secret = "Bearer option-SECRET-5"

    with _serving_in_a_thread(target) as port:
        result = runner.invoke(
            app,
            [
                "replay-traffic",
                source,
                "--target",
                f"ws://127.0.0.1:{port}",
                "--log",
                new,
                "--header",
                f"Authorization: {secret}",
            ],
        )
    assert result.exit_code == 0, result.output
    assert target.header(0, "Authorization") == [secret]
    said = " ".join(result.output.split())
    assert "headers not resent: Cookie (redacted), X-Api-Key (redacted)" in said
    raw = b"".join(
        Path(new + suffix).read_bytes() for suffix in ("", "-wal") if Path(new + suffix).exists()
    )
    for value in (*SECRETS, secret):
        assert value.encode() not in raw
    bad = runner.invoke(
        app, ["replay-traffic", source, "--target", "ws://x:1", "--header", "Host: y"]
    )
    assert bad.exit_code == 3 and "cannot be set" in bad.output


def _write_log(path: str, handshake: dict | None, *, gaps_ns: int = 1000, frames: int = 1) -> None:
    """A one-connection log written directly (as another tool or an import would)."""
    with Log.open(path, create=True) as log:
        writer = log.writer(name="direct", started_ns=1)
        writer.add_connection(Connection(1, "p", "/direct", opened_ns=1, handshake=handshake))
        rows = []
        for i in range(frames):
            payload = b'{"type":"t","i":%d}' % i
            t = 10 + i * gaps_ns
            rows += [
                Message(2 * i + 1, 1, "in", t, "t", payload),
                Message(2 * i + 2, 1, "out", t + 1, "t", payload),
            ]
        writer.add_messages(rows)
        end = 10 + frames * gaps_ns
        writer.close_connection(1, closed_ns=end, code=1000, reason=None)
        writer.close(ended_ns=end + 1)


async def test_unredacted_credentials_in_a_log_are_resent_and_no_offer_means_no_deflate(
    tmp_path: Path,
):
    source = str(tmp_path / "a.rdtlog")
    facts = {
        "target": "/direct?x=1",
        "subprotocols": [],
        "extensions": None,
        "headers": [["Cookie", "sid=kept"], ["Authorization", "Basic a2VwdA=="]],
    }
    _write_log(source, facts)
    target = Handshakes()
    server = await _serve_handshakes(target, chat=False)
    try:
        result = await _replay(source, server.port, str(tmp_path / "b.rdtlog"), "replies").run()
    finally:
        server.close()
    assert result.problems == ()
    assert target.seen[0]["path"] == "/direct?x=1"
    assert target.header(0, "Cookie") == ["sid=kept"]
    assert target.header(0, "Authorization") == ["Basic a2VwdA=="]
    assert target.header(0, "Sec-WebSocket-Extensions") == []
    assert target.seen[0]["subprotocol"] is None


async def test_a_target_that_pings_gets_its_pongs(tmp_path: Path):
    """Without pongs a websockets server closes the connection (1011) after ping_timeout."""
    source = str(tmp_path / "a.rdtlog")
    _write_log(source, None, gaps_ns=200_000_000, frames=4)  # 0.6 s of recorded gaps
    target = Handshakes()
    server = await _serve_handshakes(target, chat=False, ping_interval=0.05, ping_timeout=0.15)
    try:
        result = await _replay(source, server.port, str(tmp_path / "b.rdtlog"), "original").run()
    finally:
        server.close()
    assert result.problems == ()
    assert result.received == 4
    with Log.open(str(tmp_path / "b.rdtlog")) as log:
        (conn,) = log.reader().connections()
    assert conn.close_code == 1000


async def test_a_target_answering_with_an_http_error_is_refused(tmp_path: Path):
    source = str(tmp_path / "a.rdtlog")
    _write_log(source, None)

    def forbid(connection: Any, request: Any) -> Any:
        return connection.respond(403, "no\n")

    target = Handshakes()
    server = await _serve_handshakes(target, chat=False, process_request=forbid)
    try:
        result = await _replay(source, server.port, str(tmp_path / "b.rdtlog"), "replies").run()
    finally:
        server.close()
    (problem,) = result.problems
    assert problem.kind == "refused" and "HTTP 403" in problem.detail


async def test_a_greeting_sent_with_the_handshake_is_recorded_on_its_connection(tmp_path: Path):
    """The replay's client may get a frame in the same chunk as the 101; it is recorded after
    its connection is (and counted as a reply)."""
    source, new = str(tmp_path / "a.rdtlog"), str(tmp_path / "b.rdtlog")
    with Log.open(source, create=True) as log:
        writer = log.writer(name="greeting", started_ns=1)
        writer.add_connection(Connection(1, "p", "/g", opened_ns=1))
        writer.add_messages(
            [
                Message(1, 1, "out", 2, "hello", b'{"type":"hello"}'),
                Message(2, 1, "in", 3, "t", b'{"type":"t"}'),
                Message(3, 1, "out", 4, "t", b'{"type":"t"}'),
            ]
        )
        writer.close_connection(1, closed_ns=5, code=1000, reason=None)
        writer.close(ended_ns=6)

    async def greet(ws: Any) -> None:
        await ws.send('{"type":"hello"}')
        async for message in ws:
            await ws.send(message)

    server = await serve(greet, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        result = await _replay(source, port, new, "replies").run()
    finally:
        server.close()
    assert result.problems == () and result.received == 2
    with Log.open(new) as log:
        reader = log.reader()
        (conn,) = reader.connections()
        messages = list(reader.messages())
    assert [(m.direction, m.type) for m in messages] == [
        ("out", "hello"),
        ("in", "t"),
        ("out", "t"),
    ]
    assert conn.opened_ns <= messages[0].t_ns


async def test_stopping_a_replay_keeps_what_was_recorded(tmp_path: Path):
    """What Ctrl-C does (the command's signal handler calls stop())."""
    source, new = str(tmp_path / "a.rdtlog"), str(tmp_path / "b.rdtlog")
    _write_log(source, None, gaps_ns=300_000_000, frames=10)  # 3 s of recorded gaps
    target = Checking()
    server = await _serve(target.handler)
    try:
        replay = _replay(source, server.port, new, "original")
        running = spawn(replay.run(), "test-replay")
        async with asyncio.timeout(10):
            while len(target.arrived) < 2:
                await asyncio.sleep(0.01)
        replay.stop()
        result = await asyncio.wait_for(running, 10)
    finally:
        server.close()
    assert result.interrupted and result.problems == ()
    assert 2 <= result.sent < 10
    with Log.open(new) as log:
        reader = log.reader()
        (conn,) = reader.connections()
        sent = [m.payload for m in reader.messages(direction="in")]
    assert len(sent) == result.sent
    assert conn.closed_ns is not None and conn.close_code == 1001


def test_a_new_log_that_cannot_be_created_stops_the_replay_with_exit_3(tmp_path: Path):
    source = str(tmp_path / "a.rdtlog")
    _write_log(source, None, frames=3)
    with _serving_in_a_thread(Handshakes(), chat=False) as port:
        result = runner.invoke(
            app,
            [
                "replay-traffic",
                source,
                "--target",
                f"ws://127.0.0.1:{port}",
                "--log",
                str(tmp_path / "no" / "such" / "dir" / "b.rdtlog"),
            ],
        )
    assert result.exit_code == 3, result.output
    assert "cannot create" in result.output and "Traceback" not in result.output
