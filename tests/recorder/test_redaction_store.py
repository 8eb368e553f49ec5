"""`--redact`: the secret's bytes reach no file of the database; the same recorder on PostgreSQL."""

from __future__ import annotations

from glob import glob
from pathlib import Path

import pytest
import websockets

from recorder.app import start_recorder
from tests.recorder.conftest import read_messages, settings_for

pytestmark = pytest.mark.timeout(60)

SECRET = "hunter2-Zq8sEcReT"


async def test_redacted_secret_is_nowhere_in_the_database_files(echo_server, sqlite_log, tmp_path):
    settings = settings_for(echo_server.port, sqlite_log, redact=("/password", "/auth/token"))
    frames = [
        f'{{"type":"login","user":"ann","password":"{SECRET}"}}',
        f'{{"type":"a","auth":{{"token":"{SECRET}"}},"password":1,"password":"{SECRET}"}}',
        f'{{"type":"broken","password":"{SECRET}"',  # not JSON: stored as length + flag only
    ]
    async with await start_recorder(settings) as handle:
        async with websockets.connect(handle.url, proxy=None) as ws:
            for frame in frames:
                await ws.send(frame)
                assert await ws.recv() == frame  # forwarded bytes untouched
        await handle.flush()
        files = glob(str(tmp_path / "test.rdtlog*"))
        assert any(f.endswith("-wal") for f in files)
        for path in files:  # while open, the WAL holds the rows too
            with open(path, "rb") as f:
                assert SECRET.encode() not in f.read(), path
    for path in glob(str(tmp_path / "test.rdtlog*")):
        with open(path, "rb") as f:
            assert SECRET.encode() not in f.read(), path
    messages = read_messages(sqlite_log)
    assert [m.type for m in messages] == ["login", "login", "a", "a", None, None]
    assert messages[0].payload == b'{"type":"login","user":"ann"}'
    assert messages[4].flag == "not-json" and messages[4].payload == b""


async def test_the_same_recorder_records_into_postgresql(echo_server, postgres_log):
    settings = settings_for(echo_server.port, postgres_log, redact=("/password",))
    handle = await start_recorder(settings)
    async with handle, websockets.connect(handle.url, proxy=None) as ws:
        for i in range(100):
            await ws.send(f'{{"type":"t","i":{i},"password":"{SECRET}"}}')
            await ws.recv()
        await ws.send(b"\x00\x1b")
        await ws.recv()
    messages = read_messages(postgres_log)
    assert [m.seq for m in messages] == list(range(1, 203))
    assert messages[0].payload == b'{"type":"t","i":0}'
    assert messages[-1].binary and messages[-1].flag == "binary" and messages[-1].payload == b""


async def test_redact_reaches_the_join_snapshot_events_and_out_frames(sqlite_log, tmp_path):
    """Orders made before the recorder joined are in its join snapshot; `--redact /customer`
    keeps every customer (at any depth) out of the database files, and `rdt verify` says the
    replay failed on a redacted field."""
    import asyncio
    import subprocess
    import sys

    from devtools.model import REDACTED
    from devtools.store import Log
    from samples.sales_order import make_server
    from tests.recorder.conftest import TOKEN

    server = await make_server(token=TOKEN).serve("127.0.0.1", 0)
    try:
        async with websockets.connect(f"ws://127.0.0.1:{server.port}/", proxy=None) as ws:
            await ws.send(f'{{"type":"order/create","customer":"{SECRET}-before"}}')
            await ws.recv()
        settings = settings_for(
            server.port, sqlite_log, devtools_path="/devtools", redact=("/customer",)
        )
        async with await start_recorder(settings) as handle:
            await handle.wait_joined()
            async with websockets.connect(handle.url, proxy=None) as ws:
                await ws.send(f'{{"type":"order/create","customer":"{SECRET}-after"}}')
                reply = await ws.recv()
                assert SECRET in reply  # forwarded untouched
                async with asyncio.timeout(5):
                    while handle.session.events < 1:
                        await asyncio.sleep(0.01)
            await handle.flush()
            files = glob(str(tmp_path / "test.rdtlog*"))
            assert any(f.endswith("-wal") for f in files)
            for path in files:
                with open(path, "rb") as f:
                    assert SECRET.encode() not in f.read(), path
    finally:
        await server.close()
    for path in glob(str(tmp_path / "test.rdtlog*")):
        with open(path, "rb") as f:
            assert SECRET.encode() not in f.read(), path
    with Log.open(sqlite_log) as log:
        reader = log.reader()
        (snapshot,) = list(reader.snapshots())
        (order,) = snapshot.state["orders"].values()
        assert "customer" not in order and order["status"] == "open"
        assert reader.recording.server[REDACTED] == ["/customer"]
        assert reader.recording.server["name"] == "sales-order"
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("rdt")),
            "verify",
            sqlite_log,
            "--reducer",
            "samples.sales_order:reducer",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "recorded with --redact /customer" in done.stdout
