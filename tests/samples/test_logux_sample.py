"""`rdt sample logux-counter`: the real @logux/server sample (samples/js/logux_server.mjs) as a
child process — it answers a Logux client, and without node or its packages it is one line, exit 3.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from tests.samples.js_support import ROOT, requires_logux

RDT = shutil.which("rdt", path=str(Path(sys.executable).parent))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def logux_add(url: str, by: int) -> list:
    """Connect as a Logux client, sync one ``counter/add``, return the server's answer action."""
    async with connect(url) as ws:
        await ws.send(json.dumps(["connect", 5, "10:test:a", 0, {"subprotocol": 1}]))
        while not (await asyncio.wait_for(ws.recv(), 5)).startswith('["connected"'):
            pass
        await ws.send(
            json.dumps(["sync", 1, {"type": "counter/add", "by": by}, {"id": 1, "time": 0}])
        )
        while True:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if msg[0] == "sync":
                return msg[2]


@requires_logux
async def test_rdt_sample_logux_counter_serves_a_logux_client():
    port = free_port()
    assert RDT is not None
    child = subprocess.Popen(
        [RDT, "sample", "logux-counter", "--port", str(port), "--duration", "30"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        lines = [child.stdout.readline() for _ in range(3)]
        assert lines[0].startswith("sample:   logux-counter (node, pid ")
        assert lines[1].strip() == f"clients:  ws://127.0.0.1:{port}/"
        assert "logux" in lines[2]
        good = await logux_add(f"ws://127.0.0.1:{port}/", 2)
        bad = await logux_add(f"ws://127.0.0.1:{port}/", -1)
        assert good["type"] == "logux/processed" and good["id"].endswith(" 10:test:a 0")
        assert bad["type"] == "logux/undo" and bad["reason"] == "denied"
    finally:
        child.terminate()
        child.wait(15)
    # SIGTERM stops the Node server too (it was left running, orphaned)
    node = int(re.search(r"pid (\d+)", lines[0]).group(1))  # type: ignore[union-attr]
    with pytest.raises(ProcessLookupError):
        os.kill(node, 0)


@requires_logux
def test_rdt_sample_logux_counter_port_zero_and_port_in_use():
    assert RDT is not None
    done = subprocess.run(
        [RDT, "sample", "logux-counter", "--port", "0", "--duration", "0.2"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"^clients:\s+ws://127\.0\.0\.1:[1-9]\d*/$", done.stdout, re.M)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [RDT, "sample", "logux-counter", "--port", str(port), "--duration", "0.2"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 3
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"rdt: logux-counter could not start: FATAL Port {port} already")


def test_rdt_sample_logux_counter_takes_no_traffic():
    assert RDT is not None
    done = subprocess.run(
        [RDT, "sample", "logux-counter", "--traffic", "3"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3 and done.stderr.count("\n") == 1 and "--traffic" in done.stderr


def test_the_python_counter_takes_back_an_action_the_server_undid():
    """Like its JS twin (samples/js/test/samples.test.mjs): a logux/undo carries the refused
    action, and the reducer takes it back, so a replay ends at the server's own counter."""
    from samples.logux_counter import reducer

    add = {"type": "counter/add", "by": -1, "meta": {"id": "5 10:a 0", "time": 5}}
    undo = {"type": "logux/undo", "id": "5 10:a 0", "action": {"type": "counter/add", "by": -1}}
    state = None
    for event in ({"type": "counter/add", "by": 3}, add, {"type": "logux/processed"}, undo):
        state = reducer(state, event)
    assert state == {"value": 3, "count": 1}
    assert reducer(None, {"type": "counter/add", "by": True}) == {"value": 0, "count": 0}
