"""`rdt inject --via logux`: the control endpoint sends the action as a Logux client would,
through the recorder, to the real @logux/server sample (samples/js/logux_server.mjs)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.control_client import ControlClient
from devtools.protocol import INJECTED, inject_request
from devtools.store import Log
from recorder.app import start_recorder
from recorder.control import _logux_answer, _logux_retry, _LoguxRefused
from tests.recorder.conftest import TOKEN, settings_for

JS = Path(__file__).resolve().parents[2] / "samples" / "js"
RDT = shutil.which("rdt", path=str(Path(sys.executable).parent))


def test_a_refused_connect_is_retried_with_the_servers_own_version_or_subprotocol():
    assert _logux_retry(_LoguxRefused("wrong-protocol", {"supported": 5, "used": 4}), 4, None) == (
        5,
        None,
    )
    assert _logux_retry(_LoguxRefused("wrong-subprotocol", {"supported": 1}), 5, None) == (5, 1)
    assert _logux_retry(_LoguxRefused("wrong-subprotocol", {"supported": 1}), 5, 1) is None
    assert _logux_retry(_LoguxRefused("wrong-credentials", None), 5, None) is None
    mine = {"type": "logux/processed", "id": "17 rdt:inject:ab 0"}
    other = {"type": "logux/processed", "id": "17 10:a 0"}
    assert _logux_answer(["sync", 0, other, {}, mine, {}], " rdt:inject:ab 0") == mine
    assert _logux_answer(["sync", 0, other, {}], " rdt:inject:ab 0") is None
    assert _logux_answer(["synced", 1], " rdt:inject:ab 0") is None


@pytest.mark.skipif(
    shutil.which("node") is None or not (JS / "node_modules" / "@logux" / "server").is_dir(),
    reason="node or samples/js/node_modules (npm ci --prefix samples/js) is missing",
)
async def test_inject_via_logux_reaches_the_real_logux_server_through_the_recorder(sqlite_log):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    node = subprocess.Popen(
        ["node", "logux_server.mjs", str(port)],
        cwd=JS,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert node.stdout is not None
        for line in node.stdout:
            if line.startswith("listening"):
                break
        handle = await start_recorder(settings_for(port, sqlite_log, protocol="auto"))
        try:
            # ids of their own: the recorder dedupes injects by id across all control clients,
            # and every `rdt inject` process sends id 1 (see the report; not changed here)
            async with ControlClient(handle.control_url, TOKEN) as client:
                add = {"type": "counter/add", "by": 3}
                good = await client.request(inject_request("t-good", add, via="logux"), INJECTED)
                add = {"type": "counter/add", "by": -1}
                bad = await client.request(inject_request("t-bad", add, via="logux"), INJECTED)
            assert RDT is not None
            cli = await asyncio.to_thread(
                subprocess.run,
                [RDT, "inject", '{"type":"counter/add","by":4}', "--via", "logux"]
                + ["--control", handle.control_url, "--token", TOKEN],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        finally:
            await handle.close()
    finally:
        node.terminate()
        node.wait(10)
    assert good["ok"] is True and good["error"] is None, good
    assert good["logux"]["type"] == "logux/processed"
    assert bad["ok"] is False and bad["error"] == "logux/undo: denied", bad
    assert bad["logux"]["type"] == "logux/undo"
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert cli.stdout.startswith("ok; seq ")
    assert '"type":"logux/processed"' in cli.stdout.replace(" ", "")
    with Log.open(sqlite_log) as opened:
        reader = opened.reader()
        connections = list(reader.connections())
        messages = {m.seq: m for m in reader.messages()}
        events = list(reader.events())
    # the first connect has no subprotocol, is refused and retried with the server's; the
    # recorder keeps what was accepted, so the next injects connect once
    assert [c.origin for c in connections] == ["injected"] * 4
    adds = [e for e in events if e.type == "counter/add"]
    assert [e.event["by"] for e in adds] == [3, -1, 4]
    # the answer's seq is the recorded sync; its action is the event the answer names
    assert messages[good["seq"]].type == "sync" and messages[good["seq"]].direction == "in"
    assert adds[0].cause_seq == good["seq"] and adds[0].v in good["events"]
    assert adds[0].event["meta"]["id"] == good["logux"]["id"]
    assert adds[1].event["meta"]["id"] == bad["logux"]["id"]
    undo = [e for e in events if e.type == "logux/undo"]
    assert undo and undo[0].v in bad["events"]
