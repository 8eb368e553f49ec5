"""`rdt record` and `rdt inject`: options, errors, and the recorder as a real process."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import websockets
from typer.testing import CliRunner

from devtools.cli import app
from devtools.jsonutil import loads
from devtools.store import Log
from tests.recorder.conftest import TOKEN

pytestmark = pytest.mark.timeout(60)
runner = CliRunner()


@pytest.mark.parametrize("command", ["record", "inject"])
def test_help_has_an_example(command):
    result = runner.invoke(app, [command, "--help"])
    assert (
        result.exit_code == 0 and "Example:" in result.output and f"rdt {command}" in result.output
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["inject", "{not json"], "ACTION_JSON is not valid JSON"),
        (["inject", "[1, 2]"], "string 'type'"),
        (["inject", '{"type":"a"}', "--via", "carrier-pigeon"], "--via"),
        (
            ["inject", '{"type":"a"}', "--control", "ws://127.0.0.1:9/", "--token", "t"],
            "cannot reach",
        ),
        (["record", "--upstream", "http://x:1"], "ws:// URL"),
        (["record", "--upstream", "ws://127.0.0.1:1", "--listen", "nope:port"], "--listen"),
        (["record", "--upstream", "ws://127.0.0.1:1", "--redact", "password"], "JSON pointer"),
    ],
)
def test_bad_input_is_one_line_and_exit_3(args, message, monkeypatch):
    monkeypatch.delenv("RDT_TOKEN", raising=False)
    result = runner.invoke(app, args)
    assert result.exit_code == 3, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_inject_without_a_token_is_refused(monkeypatch):
    monkeypatch.delenv("RDT_TOKEN", raising=False)
    result = runner.invoke(app, ["inject", '{"type":"a"}'])
    assert result.exit_code == 3 and "no token" in result.stderr


def spawn_recorder(upstream_port: int, log: str, *extra: str) -> tuple[subprocess.Popen, str, str]:
    """`rdt record` as a real process; returns it, its client URL and control URL."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from devtools.cli import main; main()",
            "record",
            "--upstream",
            f"ws://127.0.0.1:{upstream_port}",
            "--listen",
            "127.0.0.1:0",
            "--control",
            "127.0.0.1:0",
            "--log",
            log,
            "--token",
            TOKEN,
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = control = ""
    for line in proc.stdout:
        if line.startswith("listening on "):
            url = line.split()[-1]
        if line.startswith("control endpoint "):
            control = line.split()[-1]
            break
    assert url and control, proc.stderr.read()
    return proc, url, control


async def test_sigterm_flushes_closes_clients_with_1001_and_inject_reaches_the_server(
    sqlite_log, echo_server
):
    proc, url, control = spawn_recorder(echo_server.port, sqlite_log)
    try:
        async with websockets.connect(url, proxy=None) as ws:
            for i in range(50):
                await ws.send(f'{{"type":"t","i":{i}}}')
                await ws.recv()
            result = await asyncio.to_thread(
                runner.invoke,
                app,
                [
                    "inject",
                    '{"type":"x"}',
                    "--via",
                    "client",
                    "--control",
                    control,
                    "--token",
                    TOKEN,
                ],
            )
            assert result.exit_code == 0, result.output
            assert result.output.startswith("ok; seq 101") and 'reply {"type":"x"}' in result.output
            proc.send_signal(signal.SIGTERM)
            with pytest.raises(websockets.ConnectionClosed) as info:
                await asyncio.wait_for(ws.recv(), 10)
        assert info.value.rcvd.code == 1001
        assert await asyncio.to_thread(proc.wait, 20) == 0
    finally:
        proc.kill()
    with Log.open(sqlite_log) as log:
        reader = log.reader()
        assert reader.counts().messages == 102
        assert reader.recording.ended_ns is not None


async def test_kill_9_mid_traffic_leaves_a_sound_log_with_everything_flushed(
    sqlite_log, echo_server
):
    """Everything forwarded longer ago than the flush window is in the log, once; the log
    opens and SQLite's integrity check passes."""
    proc, url, _ = spawn_recorder(echo_server.port, sqlite_log)
    done: list[tuple[float, int]] = []
    try:
        async with websockets.connect(url, proxy=None) as ws:
            deadline = time.monotonic() + 1.5
            i = 0
            while time.monotonic() < deadline:
                await ws.send(f'{{"type":"t","i":{i}}}')
                await ws.recv()
                done.append((time.monotonic(), i))
                i += 1
            killed_at = time.monotonic()
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
    finally:
        proc.kill()
    margin = 0.5  # the flush window is 50 ms; the rest absorbs a loaded CI machine
    settled = {i for t, i in done if t < killed_at - margin}
    assert len(settled) > 10
    with sqlite3.connect(sqlite_log) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with Log.open(sqlite_log) as log:
        messages = list(log.reader().messages())
    seqs = [m.seq for m in messages]
    assert seqs == list(range(1, len(seqs) + 1))  # nothing doubled, nothing skipped
    got = [m.payload for m in messages if m.direction == "in"]
    assert len(got) == len(set(got))
    recorded = {int(p.split(b'"i":')[1].rstrip(b"}")) for p in got}
    assert settled <= recorded


@pytest.mark.parametrize("log_target", ["sqlite", "postgresql"], indirect=True)
async def test_two_rdt_record_processes_write_one_store_at_once(log_target, echo_server):
    """Two gateways of one service: two `rdt record` processes into one log, each its own
    recording, every message of both there, and `rdt ls` listing both."""
    first = spawn_recorder(echo_server.port, log_target, "--name", "gateway-a")
    second = spawn_recorder(echo_server.port, log_target, "--name", "gateway-b")
    procs = [first[0], second[0]]

    async def drive(url: str, tag: str) -> None:
        async with websockets.connect(url, proxy=None) as ws:
            for i in range(400):
                await ws.send(f'{{"type":"{tag}","i":{i}}}')
                await ws.recv()

    try:
        await asyncio.gather(
            *(drive(url, tag) for (_, url, _), tag in ((first, "a"), (second, "b")) for _ in "xy")
        )
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            assert await asyncio.to_thread(proc.wait, 30) == 0
    finally:
        for proc in procs:
            proc.kill()
    listed = runner.invoke(app, ["ls", log_target, "--json"])
    assert listed.exit_code == 0, listed.output
    rows = {r["name"]: r for r in loads(listed.stdout) if r["name"] in ("gateway-a", "gateway-b")}
    assert set(rows) == {"gateway-a", "gateway-b"}
    assert all(r["messages"] == 2 * 2 * 400 for r in rows.values()), rows


async def test_two_rdt_inject_runs_get_their_own_answers(sqlite_log, echo_server):
    """Regression: every `rdt inject` numbered its request "rdt-1", and the recorder answers a
    repeated id from its cache, so the second run got the first run's answer without sending."""
    proc, _url, control = spawn_recorder(echo_server.port, sqlite_log)
    try:
        answers = []
        for kind in ("first", "second"):
            result = await asyncio.to_thread(
                runner.invoke,
                app,
                ["inject", f'{{"type":"{kind}"}}', "--via", "client", "--control", control]
                + ["--token", TOKEN],
            )
            assert result.exit_code == 0, result.output
            answers.append(result.output)
        assert 'reply {"type":"first"}' in answers[0]
        assert 'reply {"type":"second"}' in answers[1]
    finally:
        proc.kill()
        proc.wait()
