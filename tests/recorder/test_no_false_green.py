"""No false green: a recorder that fails to start adds no recording and creates no file; a failed
import leaves no new log; the recorder says once when the upstream fails or refuses, then
counts."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys

import pytest
import websockets
from typer.testing import CliRunner
from websockets.asyncio.server import serve

from devtools.cli import app
from devtools.store import Log
from recorder.app import start_recorder
from tests import factories
from tests.recorder.conftest import TOKEN, echo, settings_for

pytestmark = pytest.mark.timeout(60)
runner = CliRunner()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def record_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from devtools.cli import main; main()", "record", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize("taken", ["--listen", "--control"])
def test_a_recorder_that_cannot_listen_creates_no_file(tmp_path, taken):
    log = tmp_path / "new.rdtlog"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        other = "--control" if taken == "--listen" else "--listen"
        result = record_cli(
            "--upstream", "ws://127.0.0.1:9", taken, f"127.0.0.1:{port}",
            other, "127.0.0.1:0", "--log", str(log), "--token", TOKEN,
        )  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert "cannot listen" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []  # no log, no -wal, no -shm


def test_a_recorder_that_cannot_listen_adds_no_recording_to_an_existing_log(tmp_path):
    log = str(tmp_path / "old.rdtlog")
    factories.write_log(log, events=3)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = record_cli(
            "--upstream", "ws://127.0.0.1:9", "--listen", f"127.0.0.1:{port}",
            "--control", "127.0.0.1:0", "--log", log, "--token", TOKEN,
        )  # fmt: skip
    assert result.returncode == 3
    with Log.open(log) as opened:
        assert [r.recording.name for r in opened.recordings()] == ["test"]
    # so the latest recording is still the real one: verify checks its 3 events
    with Log.open(log) as opened:
        assert opened.reader().counts().events == 3


def test_a_failed_import_leaves_no_new_log(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind":"recording","id":1,"name":"x"}\nnot json\n')
    log = tmp_path / "new.rdtlog"
    result = runner.invoke(app, ["import", str(bad), "--log", str(log)])
    assert result.exit_code == 3 and "not valid JSON" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl"]


def test_a_failed_import_into_an_existing_log_keeps_it_and_adds_nothing(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("garbage\n")
    log = str(tmp_path / "old.rdtlog")
    factories.write_log(log, events=2)
    result = runner.invoke(app, ["import", str(bad), "--log", log])
    assert result.exit_code == 3
    with Log.open(log) as opened:
        assert len(opened.recordings()) == 1


async def raw_upgrade(url: str) -> int:
    """The HTTP status the recorder answers a client's upgrade with."""
    try:
        async with websockets.connect(url, proxy=None, open_timeout=5):
            return 101
    except websockets.InvalidStatus as refused:
        return refused.response.status_code


async def test_upstream_down_is_said_once_then_counted_and_its_return_too(sqlite_log):
    port = free_port()  # nothing listens there yet
    lines: list[str] = []
    handle = await start_recorder(settings_for(port, sqlite_log, stderr=lines.append))
    try:
        await asyncio.sleep(0.2)  # the start-up probe
        statuses = [await raw_upgrade(handle.url) for _ in range(5)]
        assert statuses == [502] * 5
        down = [line for line in lines if "upstream unavailable" in line]
        assert len(down) == 1 and "clients get 502" in down[0], lines
        assert handle.proxy.health.unavailable == 5
        async with serve(echo, "127.0.0.1", port):
            assert await raw_upgrade(handle.url) == 101
        assert any("is back; 5 client connections got 502" in line for line in lines), lines
        assert len(lines) == 2, lines
        assert (
            handle.proxy.health.summary() == "client connections: 5 got 502 (upstream unavailable)"
        )
    finally:
        await handle.close()


async def test_an_upstream_refusing_upgrades_is_said_once(sqlite_log):
    def refuse(connection, request):
        return connection.respond(403, "no\n")

    lines: list[str] = []
    async with serve(echo, "127.0.0.1", 0, process_request=refuse) as server:
        port = server.sockets[0].getsockname()[1]
        handle = await start_recorder(settings_for(port, sqlite_log, stderr=lines.append))
        try:
            assert [await raw_upgrade(handle.url) for _ in range(4)] == [403] * 4
        finally:
            await handle.close()
    refused = [line for line in lines if "refused an upgrade: HTTP 403" in line]
    assert len(refused) == 1 and len(lines) == 1, lines
    assert handle.proxy.health.summary() == "client connections: 4 refused by the upstream"
