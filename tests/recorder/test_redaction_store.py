"""`--redact`: the secret's bytes reach no file of the database; the same recorder on PostgreSQL."""

from __future__ import annotations

from glob import glob

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
