"""The Node sample server (samples/js/server.mjs on the rdt-devtools package), for real: node,
ws and Redux Toolkit from samples/js's lock, sockets on 127.0.0.1 at ephemeral ports.

Recorded through ``rdt record --devtools-path /devtools`` (the recorder in-process, as the
recorder tests start it), replayed and verified with its own JS reducer, an action injected
through the recorder's control endpoint with ``rdt inject``; the join rule under concurrent
dispatch; the handshake refusals.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from devtools import jsonutil
from devtools.canonical import state_hash
from devtools.store import Log
from devtools.tasks import spawn
from recorder.app import start_recorder
from tests.recorder.conftest import TOKEN, settings_for
from tests.samples.js_support import JS_DIR, ROOT, requires_node

pytestmark = [requires_node, pytest.mark.timeout(120)]

SERVER = JS_DIR / "server.mjs"
WSCAT = JS_DIR / "node_modules" / ".bin" / "wscat"
JS_REDUCER = "samples/js/sales_order.mjs:reducer"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class NodeServer:
    process: asyncio.subprocess.Process
    port: int

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    @property
    def devtools_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/devtools"


def _installed_package_is_current() -> bool:
    installed = JS_DIR / "node_modules" / "rdt-devtools"
    source = ROOT / "node" / "rdt-devtools"
    for path in [source / "index.mjs", *sorted((source / "src").glob("*.mjs"))]:
        copy = installed / path.relative_to(source)
        if not copy.is_file() or copy.read_bytes() != path.read_bytes():
            return False
    return True


@pytest.fixture
async def node_server() -> AsyncIterator[NodeServer]:
    assert _installed_package_is_current(), (
        "samples/js/node_modules/rdt-devtools is older than node/rdt-devtools: "
        "run `npm ci --prefix samples/js`"
    )
    process = await asyncio.create_subprocess_exec(
        "node",
        str(SERVER),
        "--port",
        "0",
        env={**os.environ, "RDT_TOKEN": TOKEN},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        port = None
        async with asyncio.timeout(15):
            while port is None:
                line = (await process.stdout.readline()).decode()
                assert line, (await process.stderr.read()).decode()
                found = re.match(r"clients:\s+ws://127\.0\.0\.1:(\d+)/", line)
                port = int(found.group(1)) if found else None
        yield NodeServer(process, port)
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()


async def wait_for(predicate, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def command(ws, message: dict) -> dict:
    """Send a command and return the first frame that answers it (event or error)."""
    await ws.send(jsonutil.dumps(message).decode())
    return jsonutil.loads(await ws.recv())


def rdt(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("rdt", path=str(Path(sys.executable).parent))
    assert exe is not None
    return subprocess.run(
        [exe, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )


async def test_recorded_verified_and_injected_through_rdt_record(node_server, tmp_path):
    log_path = str(tmp_path / "node.rdtlog")
    settings = settings_for(node_server.port, log_path, devtools_path="/devtools")
    handle = await start_recorder(settings)
    try:
        await handle.wait_joined()
        async with (
            websockets.connect(handle.url, proxy=None) as a,
            websockets.connect(handle.url, proxy=None) as b,
        ):
            created = await command(a, {"type": "order/create", "customer": "ACME"})
            assert created["type"] == "order/created" and created["id"] == "o1"
            assert jsonutil.loads(await b.recv()) == created  # every change goes to every client
            line = {"type": "order/add-line", "order": "o1", "sku": "apple", "qty": 2}
            added = await command(b, {**line, "price": 150})
            assert added["type"] == "order/line-added" and added["sender"] == "c2"
            await a.recv()
            refused = await command(a, {"type": "order/submit", "order": "o9"})
            assert refused == {
                "type": "error",
                "error": 'unknown order "o9"',
                "n": 2,
                "request": "order/submit",
            }
            await command(a, {**line, "sku": "pear", "qty": 1, "price": 99})
            await b.recv()
            await command(b, {"type": "order/submit", "order": "o1"})
            await a.recv()
        if WSCAT.is_file():  # a wscat client through the proxy, as a person would use it
            done = await asyncio.create_subprocess_exec(
                str(WSCAT),
                "-c",
                handle.url,
                "-x",
                '{"type":"order/create","customer":"wscat"}',
                "-w",
                "1",
                stdin=asyncio.subprocess.PIPE,  # wscat quits at once when stdin ends
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out = await asyncio.wait_for(done.stdout.read(), 20)  # until wscat exits
            done.stdin.close()
            err = await done.stderr.read()
            assert await done.wait() == 0, err.decode()
            assert b'"customer":"wscat"' in out
        await wait_for(lambda: handle.session.events >= 5)

        injected = await asyncio.create_subprocess_exec(
            shutil.which("rdt", path=str(Path(sys.executable).parent)),
            "inject",
            '{"type":"order/create","customer":"injected"}',
            "--control",
            handle.control_url,
            "--token",
            TOKEN,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(injected.communicate(), 30)
        assert injected.returncode == 0, out.decode() + err.decode()
        assert re.search(r"^ok; .*events \[6\]", out.decode(), re.M), out.decode()
        await wait_for(lambda: handle.session.events >= 6)
    finally:
        await handle.close()

    with Log.open(log_path) as log:
        reader = log.reader()
        snapshots = list(reader.snapshots())
        events = list(reader.events())
        recording = reader.recording
        causes = [reader.message(e.cause_seq) if e.cause_seq else None for e in events]
    assert recording.server == {"name": "node-sales-order", "version": "1.0"}
    assert snapshots[0].v == 0 and snapshots[0].hash == state_hash(snapshots[0].state)
    assert [e.v for e in events] == [1, 2, 3, 4, 5, 6]
    assert [e.type for e in events] == [
        "order/created",
        "order/line-added",
        "order/line-added",
        "order/submitted",
        "order/created",
        "order/created",
    ]
    assert all(e.hash and e.hash.startswith("sha256:") for e in events)
    assert [e.event["sender"] for e in events] == ["c1", "c2", "c1", "c2", "c3", "devtools"]
    # ts: integer nanoseconds, carried exactly (beyond 2^53), increasing
    stamps = [e.event["ts"] for e in events]
    assert all(isinstance(t, int) and t > 2**53 for t in stamps) and stamps == sorted(stamps)
    # each event's cause maps back to the recorded client message that produced it
    assert [c.type if c else None for c in causes[:5]] == [
        "order/create",
        "order/add-line",
        "order/add-line",
        "order/submit",
        "order/create",
    ]

    verified = rdt("verify", log_path, "--reducer", JS_REDUCER)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    # the recorded hashes are the JS replay's, event by event
    state = rdt("state", log_path, "--reducer", JS_REDUCER, "--at", "6", "--json")
    assert state.returncode == 0, state.stderr
    final = jsonutil.loads(state.stdout)
    final_state = final.get("state", final) if isinstance(final, dict) else final
    assert final_state["count"] == 3
    assert final_state["orders"]["o1"]["status"] == "submitted"
    assert final_state["orders"]["o1"]["total"] == 2 * 150 + 99
    assert state_hash(final_state) == events[-1].hash


async def test_join_rule_under_concurrent_dispatch(node_server):
    """10 clients dispatching at once; a devtools client joins mid-stream: no gap, no repeat."""
    clients, per_client = 10, 30
    total = clients * per_client

    half_sent = [asyncio.Event() for _ in range(clients)]
    joined = asyncio.Event()

    async def client(i: int) -> None:
        async with websockets.connect(node_server.url, proxy=None) as ws:
            for k in range(per_client):
                if k == per_client // 2:  # the second half goes out once the join is done
                    half_sent[i].set()
                    await joined.wait()
                message = {"type": "order/create", "customer": f"c{i}-{k}"}
                await ws.send(jsonutil.dumps(message).decode())
            await ws.send('{"type":"order/list"}')
            async for frame in ws:  # everything before the list answer has been processed
                if jsonutil.loads(frame)["type"] == "order/list":
                    return

    async def devtools() -> tuple[dict, list[dict]]:
        async with websockets.connect(
            node_server.devtools_url, additional_headers=BEARER, proxy=None, max_size=None
        ) as ws:
            hello = jsonutil.loads(await ws.recv())
            assert hello["type"] == "@@devtools/hello"
            for sent in half_sent:
                await sent.wait()
            await ws.send('{"type":"@@devtools/subscribe"}')  # while first halves are in flight
            snapshot = jsonutil.loads(await ws.recv())
            assert snapshot["type"] == "@@devtools/snapshot"
            joined.set()
            events = []
            v = snapshot["v"]
            while v < total:
                message = jsonutil.loads(await ws.recv())
                if message["type"] == "@@devtools/event":
                    events.append(message)
                    v = message["v"]
            return snapshot, events

    async with asyncio.timeout(60):
        watcher = spawn(devtools(), "devtools client")
        await asyncio.gather(*(client(i) for i in range(clients)))
        snapshot, events = await watcher
    assert snapshot["v"] <= total // 2, "the devtools client joined mid-stream"
    assert [e["v"] for e in events] == list(range(snapshot["v"] + 1, total + 1))
    assert [e["event"]["v"] for e in events] == [e["v"] for e in events]
    assert snapshot["state"]["count"] == snapshot["v"]
    # Python's hash of the state the Node server sent is the Node server's hash
    assert state_hash(snapshot["state"]) == snapshot["hash"]
    async with websockets.connect(
        node_server.devtools_url, additional_headers=BEARER, proxy=None
    ) as ws:
        await ws.recv()
        await ws.send('{"type":"@@devtools/get-state","id":"end"}')
        final = jsonutil.loads(await ws.recv())
    assert final["id"] == "end" and final["v"] == total
    assert final["hash"] == events[-1]["hash"] == state_hash(final["state"])


@pytest.mark.parametrize(
    ("headers", "origin", "status"),
    [
        ({}, None, 401),
        ({"Authorization": "Bearer wrong-token"}, None, 401),
        ({"Authorization": f"Basic {TOKEN}"}, None, 401),
        (BEARER, "http://evil.example", 403),
    ],
)
async def test_refused_before_the_upgrade(node_server, headers, origin, status):
    kwargs = {"origin": origin} if origin else {}
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(
            node_server.devtools_url, additional_headers=headers, proxy=None, **kwargs
        ):
            pass
    assert refused.value.response.status_code == status
    # the clients' endpoint is not the channel's: it needs no token
    async with websockets.connect(node_server.url, proxy=None) as ws:
        await ws.send('{"type":"order/list"}')
        assert jsonutil.loads(await ws.recv())["type"] == "order/list"


def test_rdt_sample_starts_the_node_server_and_sends_traffic():
    done = rdt("sample", "node-sales-order", "--port", "0", "--traffic", "5", "--duration", "0.5")
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^clients:\s+ws://127\.0\.0\.1:\d+/$", done.stdout, re.M)
    assert re.search(r"^devtools:\s+ws://127\.0\.0\.1:\d+/devtools$", done.stdout, re.M)
    assert re.search(r"^traffic:\s+\d+ sent, \d+ received", done.stdout, re.M)


def test_rdt_sample_node_port_in_use_is_one_line_exit_3():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = rdt("sample", "node-sales-order", "--port", str(port), "--duration", "0.1")
    assert done.returncode == 3
    assert done.stderr.count("\n") == 1 and "EADDRINUSE" in done.stderr, done.stderr


@pytest.mark.parametrize("name", ["node-sales-order", "logux-counter"])
def test_rdt_sample_without_node_is_one_line_exit_3(name):
    exe = shutil.which("rdt", path=str(Path(sys.executable).parent))
    assert exe is not None
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}  # no node on it
    done = subprocess.run(
        [exe, "sample", name, "--duration", "0.1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3
    assert done.stderr.strip().splitlines() == [
        f"rdt: {name} needs Node.js: no `node` on PATH (install Node.js 18 or later)"
    ]
