"""`rdt record --protocol logux|auto`: Logux's array messages typed, sync actions as events.

The pure part (typing, absolute ids, resends counted once) is tested without sockets; the
recorder part runs a minimal Logux-protocol server in Python on loopback (`connect` →
`connected`, `sync` → `synced` plus a `logux/processed` sync back per action, `ping` → `pong`),
so a 12,000-action offline backlog goes through the real proxy in a few seconds.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from typer.testing import CliRunner
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

from devtools.cli import app
from devtools.store import Log
from recorder.app import start_recorder
from recorder.protocols import protocol_for
from recorder.protocols.logux import LoguxProtocol, absolute_meta, looks_like_connect, parse_logux
from recorder.settings import parse_size
from replayer.engine import Replay
from tests.recorder.conftest import settings_for

runner = CliRunner()
BASE = 1_700_000_000_000
"""The server's clock at ``connected`` (ms), the connection's ``baseTime``."""


def raw(value: Any) -> bytes:
    return json.dumps(value).encode()


# --------------------------------------------------------------------------- pure


def test_logux_messages_are_typed_by_their_first_element():
    cases = {
        "connect": ["connect", 4, "10:client", 0],
        "connected": ["connected", 4, "server:x", [BASE - 5, BASE]],
        "headers": ["headers", {"lang": "en"}],
        "sync": ["sync", 1, {"type": "a"}, {"id": 1, "time": 0}],
        "synced": ["synced", 1],
        "ping": ["ping", 3],
        "pong": ["pong", 3],
        "error": ["error", "wrong-format", "x"],
        "debug": ["debug", "error", "boom"],
    }
    for kind, message in cases.items():
        parsed = parse_logux(raw(message))
        assert (parsed.type, parsed.flag, parsed.value) == (kind, None, message)
    # a JSON object keeps the plain typing
    assert parse_logux(b'{"type": "x"}').type == "x"


def test_malformed_logux_arrays_are_flagged_never_raised():
    assert parse_logux(b'["hello", 1]').flag == "not-logux"
    assert parse_logux(b"[]").flag == "not-logux"
    assert parse_logux(b"[1, 2]").flag == "not-logux"
    assert parse_logux(b'["sync", "x"]').flag == "bad-logux"
    assert parse_logux(b'["sync", 1, {"type": "a"}]').flag == "bad-logux"  # no meta
    assert parse_logux(b'["sync", 1, {"type": "a"}, {"id": "x", "time": 0}]').flag == "bad-logux"
    assert parse_logux(b'["ping"]').flag == "bad-logux"
    assert parse_logux(b"not json").flag == "not-json"
    assert parse_logux(b"\x00", binary=True).flag == "binary"
    assert LoguxProtocol().events_from(parse_logux(b'["sync", "x"]'), 1, 0) == []


def test_ids_and_times_become_absolute_as_the_receiving_node_stores_them():
    assert absolute_meta({"id": 5, "time": 3}, BASE, "10:c")["id"] == f"{BASE + 5} 10:c 0"
    assert absolute_meta({"id": [5, 2], "time": 3}, BASE, "10:c")["id"] == f"{BASE + 5} 10:c 2"
    other = absolute_meta({"id": [5, "20:d", 7], "time": 3, "reasons": ["x"]}, BASE, "10:c")
    assert other == {"id": f"{BASE + 5} 20:d 7", "time": BASE + 3, "reasons": ["x"]}


def test_each_sync_action_is_one_event_the_first_time_its_id_is_seen():
    logux = LoguxProtocol()
    assert logux.events_from(parse_logux(raw(["connect", 4, "10:a", 0])), 1, 0, "in") == []
    connected = ["connected", 4, "server:s", [BASE, BASE]]
    assert logux.events_from(parse_logux(raw(connected)), 1, 0, "out") == []
    sync = ["sync", 2, {"type": "counter/add", "by": 1}, {"id": 1, "time": 1}]
    sync += [{"type": "counter/add", "by": 2}, {"id": [2, 1], "time": 2}]
    events = logux.events_from(parse_logux(raw(sync)), 1, 99, "in")
    assert events == [
        {
            "type": "counter/add",
            "by": 1,
            "meta": {"id": f"{BASE + 1} 10:a 0", "time": BASE + 1},
            "ts": 99,
            "sender": 1,
        },
        {
            "type": "counter/add",
            "by": 2,
            "meta": {"id": f"{BASE + 2} 10:a 1", "time": BASE + 2},
            "ts": 99,
            "sender": 1,
        },
    ]
    # the server resends the first action to another client (its own base time, full id)
    logux.events_from(parse_logux(raw(["connected", 4, "server:s", [0, BASE + 100]])), 2, 0, "out")
    resend = ["sync", 9, {"type": "counter/add", "by": 1}, {"id": [-99, "10:a", 0], "time": -99}]
    assert logux.events_from(parse_logux(raw(resend)), 2, 0, "out") == []


def test_a_sync_before_connected_waits_for_its_base_time():
    """A sync the client sends before the server's `connected` (or even before its own
    `connect`) was kept with relative ids: now it is held and derived when `connected` brings
    the base time, as the server itself reads it (it queues messages until authenticated)."""
    logux = LoguxProtocol()
    sync = ["sync", 1, {"type": "counter/add", "by": 3}, {"id": [4, 1], "time": 4}]
    early = ["sync", 2, {"type": "counter/add", "by": 1}, {"id": 2, "time": 2}]
    assert logux.derive(parse_logux(raw(early)), 1, 10, "in", seq=1) == []
    assert logux.derive(parse_logux(raw(["connect", 5, "10:a", 0])), 1, 11, "in", seq=2) == []
    assert logux.derive(parse_logux(raw(sync)), 1, 12, "in", seq=3) == []
    connected = ["connected", 5, "server:s", [BASE - 3, BASE]]
    derived = logux.derive(parse_logux(raw(connected)), 1, 13, "out", seq=4)
    seen = [(d.seq, d.body["meta"]["id"], d.body["meta"]["time"], d.body["ts"]) for d in derived]
    assert seen == [
        (1, f"{BASE + 2} 10:a 0", BASE + 2, 10),
        (3, f"{BASE + 4} 10:a 1", BASE + 4, 12),
    ]
    # after connected, a sync is derived at once
    later = ["sync", 3, {"type": "counter/add", "by": 1}, {"id": [5, 0], "time": 5}]
    assert [d.seq for d in logux.derive(parse_logux(raw(later)), 1, 14, "in", seq=5)] == [5]
    assert logux.dropped == 0


def test_a_connection_that_closes_before_connected_makes_no_events_of_its_syncs():
    """The server never accepted them (no `connected`: refused credentials or protocol)."""
    logux = LoguxProtocol()
    logux.derive(parse_logux(raw(["connect", 5, "10:a", 0])), 1, 0, "in", seq=1)
    sync = ["sync", 2, {"type": "a"}, {"id": 1, "time": 1}, {"type": "b"}, {"id": 2, "time": 2}]
    assert logux.derive(parse_logux(raw(sync)), 1, 0, "in", seq=2) == []
    logux.forget(1)
    assert logux.dropped == 2


def test_the_session_numbers_held_actions_when_connected_arrives():
    """Through the session (no sockets): the events of the early sync get the next v when
    `connected` passes, with the sync as their cause and their read time as `ts`."""
    from recorder.session import Session
    from recorder.settings import RecorderSettings, Upstream

    clock = iter(range(100, 200))
    settings = RecorderSettings(
        upstream=Upstream("127.0.0.1", 1),
        log="unused",
        token="t",
        protocol="logux",
        clock=lambda: next(clock),
    )
    put: list[Any] = []
    session = Session(settings, put.append)
    conn = session.open_connection("peer", "/")
    session.message(conn.id, "in", raw(["connect", 5, "10:a", 0]), False)
    session.message(conn.id, "in", raw(["sync", 1, {"type": "x"}, {"id": 1, "time": 1}]), False)
    assert session.events == 0
    session.message(conn.id, "out", raw(["connected", 5, "s", [BASE, BASE]]), False)
    events = [r for r in put if type(r).__name__ == "Event"]
    assert [(e.v, e.cause_seq, e.event["meta"]["id"]) for e in events] == [
        (1, 2, f"{BASE + 1} 10:a 0")
    ]
    assert events[0].event["ts"] < events[0].t_ns  # read with its sync, made at connected


def test_auto_detects_logux_from_the_first_client_frame():
    assert looks_like_connect(b'["connect",4,"10:a",0]')
    assert looks_like_connect(b' [ "connect" , 4]')
    assert not looks_like_connect(b'{"type": "connect"}')
    assert not looks_like_connect(b'["connected", 4]')
    assert isinstance(protocol_for(None, (), "logux"), LoguxProtocol)
    assert protocol_for(None, (), "plain") is None


def test_sizes_take_bytes_or_binary_suffixes():
    assert parse_size("1048576") == 2**20
    assert parse_size("2MiB") == 2 * 2**20
    assert parse_size("512kib") == 512 * 2**10
    assert parse_size("3M") == 3 * 2**20


# --------------------------------------------------------------------------- through the proxy


class MiniLoguxServer:
    """The Logux protocol's server side, enough for the recorder: counts ``counter/add``."""

    def __init__(self) -> None:
        self.value = 0
        self.processed = 0

    async def handler(self, ws: Any) -> None:
        async for data in ws:
            msg = json.loads(data)
            if not isinstance(msg, list) or not msg:
                await ws.send(json.dumps(["error", "wrong-format", str(data)[:50]]))
                continue
            if msg[0] == "connect":
                await ws.send(json.dumps(["connected", 4, "server:mini", [BASE - 1, BASE]]))
            elif msg[0] == "ping":
                await ws.send(json.dumps(["pong", msg[1]]))
            elif msg[0] == "sync":
                back: list[Any] = ["sync", msg[1]]
                for i in range(2, len(msg), 2):
                    action, meta = msg[i], msg[i + 1]
                    if action["type"] == "counter/add":
                        self.value += action["by"]
                    self.processed += 1
                    ident = f"{BASE + meta['id'][0]} 10:client {meta['id'][1]}"
                    back += [{"type": "logux/processed", "id": ident}, {"id": i, "time": 0}]
                await ws.send(json.dumps(["synced", msg[1]]))
                await ws.send(json.dumps(back))
            else:
                await ws.send(json.dumps(["error", "unknown-message", msg[0]]))


def backlog(n: int) -> list[Any]:
    """An offline client's whole queue in one sync: ``n`` actions with relative ids."""
    sync: list[Any] = ["sync", n]
    for i in range(n):
        sync += [
            {"type": "counter/add", "by": i % 7 + 1},
            {"id": [i - 5000, i], "time": i - 5000, "reasons": ["counter"]},
        ]
    return sync


async def test_an_offline_backlog_is_stored_whole_and_replays_to_the_servers_counter(sqlite_log):
    n = 12_000
    server = MiniLoguxServer()
    sync = raw(backlog(n))
    assert len(sync) > 2**20  # past the old 1 MiB default
    async with serve(server.handler, "127.0.0.1", 0, max_size=None) as upstream:
        port = upstream.sockets[0].getsockname()[1]
        handle = await start_recorder(settings_for(port, sqlite_log, max_record_size=2 * 2**20))
        try:
            async with connect(handle.url, max_size=None) as ws:
                await ws.send(json.dumps(["connect", 4, "10:client", 0]))
                assert json.loads(await ws.recv())[0] == "connected"
                await ws.send(sync.decode())
                assert json.loads(await ws.recv()) == ["synced", n]
                processed = json.loads(await ws.recv())
                await ws.send('["ping", 1]')
                assert json.loads(await ws.recv()) == ["pong", 1]
                await ws.send('["hello"]')  # malformed: flagged and forwarded
                assert json.loads(await ws.recv())[0] == "error"
        finally:
            await handle.close()
    assert server.processed == n and len(processed) == 2 + 2 * n
    with Log.open(sqlite_log) as opened:
        reader = opened.reader()
        assert reader.recording.server["protocol"] == "logux"
        messages = list(reader.messages())
        kinds = [(m.direction, m.type, m.flag) for m in messages]
        assert kinds == [
            ("in", "connect", None),
            ("out", "connected", None),
            ("in", "sync", None),
            ("out", "synced", None),
            ("out", "sync", None),
            ("in", "ping", None),
            ("out", "pong", None),
            ("in", None, "not-logux"),
            ("out", "error", None),
        ]
        assert messages[2].payload == sync  # stored whole, byte-identical
        events = list(reader.events())
    actions = [e for e in events if e.type == "counter/add"]
    assert len(actions) == n and len(events) == 2 * n
    assert [e.v for e in events] == list(range(1, 2 * n + 1))
    assert actions[0].event["meta"]["id"] == f"{BASE - 5000} 10:client 0"
    assert actions[-1].event["meta"]["time"] == BASE + n - 1 - 5000
    assert all(e.cause_seq == messages[2].seq for e in actions)
    with Replay.open(sqlite_log, reducer="samples.logux_counter:reducer") as replay:
        assert replay.state_at()["value"] == server.value
    listed = runner.invoke(app, ["log", sqlite_log, "--type", "sync", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [json.loads(line)["seq"] for line in listed.output.splitlines()] == [3, 5]
    state = runner.invoke(
        app, ["state", sqlite_log, "--reducer", "samples.logux_counter:reducer", "--json"]
    )
    assert state.exit_code == 0, state.output
    assert json.loads(state.output) == {"v": 2 * n, "state": {"value": server.value, "count": n}}
    js = runner.invoke(
        app, ["state", sqlite_log, "--reducer", "samples/js/logux_counter.mjs:reducer", "--json"]
    )
    assert js.exit_code == 0, js.output
    assert json.loads(js.output) == {"v": 2 * n, "state": {"value": server.value, "count": n}}


async def test_auto_leaves_plain_json_servers_as_they_were(sqlite_log):
    async def echo(ws: Any) -> None:
        async for data in ws:
            await ws.send(data)

    async with serve(echo, "127.0.0.1", 0) as upstream:
        port = upstream.sockets[0].getsockname()[1]
        handle = await start_recorder(settings_for(port, sqlite_log))
        try:
            async with connect(handle.url) as ws:
                for message in ('{"type": "a"}', '["sync", 1]'):
                    await ws.send(message)
                    await ws.recv()
        finally:
            await handle.close()
    with Log.open(sqlite_log) as opened:
        reader = opened.reader()
        flags = [(m.type, m.flag) for m in reader.messages()]
        assert list(reader.events()) == []
    assert flags == [("a", None), ("a", None), (None, "not-object"), (None, "not-object")]


def test_protocol_logux_with_devtools_path_and_a_bad_size_are_usage_errors():
    for extra in (["--protocol", "logux", "--devtools-path", "/d"], ["--max-frame-size", "2XB"]):
        result = runner.invoke(app, ["record", "--upstream", "ws://127.0.0.1:1", *extra])
        assert result.exit_code == 3, result.output
    bad = runner.invoke(app, ["record", "--upstream", "ws://127.0.0.1:1", "--protocol", "x"])
    assert bad.exit_code == 3 and "--protocol" in bad.stderr


async def test_a_real_logux_server_through_the_recorder(sqlite_log, tmp_path):
    """@logux/server 0.14 (samples/js/logux_server.mjs): ids made absolute by the recorder are
    the ids the server itself answers with in logux/processed; a refused action gets logux/undo."""
    import shutil
    import socket
    import subprocess
    from pathlib import Path

    js = Path(__file__).resolve().parents[2] / "samples" / "js"
    if shutil.which("node") is None or not (js / "node_modules" / "@logux" / "server").is_dir():
        import pytest

        pytest.skip("node or samples/js/node_modules (npm ci --prefix samples/js) is missing")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    node = subprocess.Popen(
        ["node", "logux_server.mjs", str(port)], cwd=js, stdout=subprocess.PIPE, text=True
    )
    try:
        assert node.stdout is not None
        for line in node.stdout:
            if line.startswith("listening"):
                break
        handle = await start_recorder(settings_for(port, sqlite_log, protocol="auto"))
        try:
            async with connect(handle.url) as ws:
                await ws.send(json.dumps(["connect", 5, "10:client:a", 0, {"subprotocol": 1}]))
                while not (await ws.recv()).startswith('["connected"'):
                    pass
                good = [{"type": "counter/add", "by": 2}, {"id": [1, 0], "time": 1}]
                bad = [{"type": "counter/add", "by": -1}, {"id": [2, 1], "time": 2}]
                await ws.send(json.dumps(["sync", 2, *good, *bad]))
                answers: list[str] = []
                while not any("logux/undo" in a for a in answers):
                    answers.append(await asyncio.wait_for(ws.recv(), 5))
        finally:
            await handle.close()
    finally:
        node.terminate()
        node.wait(10)
    with Log.open(sqlite_log) as opened:
        reader = opened.reader()
        types = {m.type for m in reader.messages()}
        events = list(reader.events())
    assert {"connect", "headers", "connected", "sync", "synced"} <= types
    adds = [e for e in events if e.type == "counter/add"]
    processed = [e for e in events if e.type == "logux/processed"]
    undo = [e for e in events if e.type == "logux/undo"]
    assert len(adds) == 2 and len(processed) == 1 and len(undo) == 1
    assert processed[0].event["id"] == adds[0].event["meta"]["id"]
    assert undo[0].event["id"] == adds[1].event["meta"]["id"]
