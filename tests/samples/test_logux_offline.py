"""The Logux issue's headline, with the real packages: @logux/core 0.10's ClientNode
(samples/js/logux_offline_client.mjs) queues 12,000 actions offline, then connects through
`rdt record` to the real @logux/server 0.14 sample (`rdt sample logux-counter`) and syncs its
whole backlog in one frame, while a second client on the `counter` channel gets every action
resent and sends one action the server's `access` refuses.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner
from websockets.asyncio.client import connect

from devtools.cli import app
from devtools.model import Message
from devtools.store import Log
from recorder.app import start_recorder
from tests.recorder.conftest import settings_for
from tests.samples.js_support import JS_DIR, ROOT, requires_logux
from tui.links import log_links

pytestmark = [requires_logux, pytest.mark.timeout(300)]

N = 12_000
RDT = shutil.which("rdt", path=str(Path(sys.executable).parent))


def digest(messages: list[Message]) -> dict[str, Any]:
    """What logux_offline_client.mjs prints for the frames one way: SHA-256 over each frame's
    8-byte big-endian length and its bytes, in order."""
    sha = hashlib.sha256()
    for m in messages:
        sha.update(len(m.payload).to_bytes(8, "big"))
        sha.update(m.payload)
    return {
        "frames": len(messages),
        "bytes": sum(len(m.payload) for m in messages),
        "sha256": sha.hexdigest(),
    }


def start_sample() -> tuple[subprocess.Popen, int]:
    """`rdt sample logux-counter` on a free port (it drains the server's own logging)."""
    assert RDT is not None
    child = subprocess.Popen(
        [RDT, "sample", "logux-counter", "--port", "0", "--duration", "280"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    for line in child.stdout:
        found = re.match(r"clients:\s+ws://127\.0\.0\.1:(\d+)/", line)
        if found:
            return child, int(found.group(1))
    child.wait(10)
    raise AssertionError("rdt sample logux-counter did not start")


async def malformed(url: str) -> list[str]:
    """Connect as a Logux client and send a sync of the wrong shape; the server's answers."""
    answers: list[str] = []
    async with connect(url) as ws:
        await ws.send(json.dumps(["connect", 5, "30:bad", 0, {"subprotocol": 1}]))
        while not answers or not answers[-1].startswith('["connected"'):
            answers.append(await asyncio.wait_for(ws.recv(), 10))
        await ws.send('["sync", "x", {"type": "counter/add"}]')
        while not answers[-1].startswith('["error"'):
            answers.append(await asyncio.wait_for(ws.recv(), 10))
    return answers


async def test_an_offline_backlog_of_12000_actions_through_the_recorder(tmp_path) -> None:
    log = str(tmp_path / "logux.rdtlog")
    sample, port = start_sample()
    try:
        handle = await start_recorder(settings_for(port, log, protocol="auto"))
        try:
            client = await asyncio.create_subprocess_exec(
                "node",
                str(JS_DIR / "logux_offline_client.mjs"),
                handle.url,
                *("--actions", str(N), "--refused", "--watchers", "1"),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(client.communicate(), 240)
            assert client.returncode == 0, err.decode()
            bad_answers = await malformed(handle.url)
        finally:
            await handle.close()
    finally:
        sample.terminate()
        sample.wait(15)
    summary = json.loads(out)

    # all processed by the server: its own counter is the backlog's sum
    assert (summary["processed"], summary["undone"]) == (N, 0)
    assert summary["state"] == summary["expected"] and summary["state"]["count"] == N
    assert summary["resent"] == [N] and summary["refused"]["answer"] == "logux/undo"

    with Log.open(log) as opened:
        reader = opened.reader()
        messages = list(reader.messages())
        events = list(reader.events())
        by_node = {
            json.loads(m.payload)[2]: m.connection
            for m in messages
            if m.type == "connect" and m.direction == "in"
        }
        # every frame each client sent and got is stored byte for byte, in order
        for client_summary in summary["clients"]:
            conn = by_node[client_summary["node"]]
            for way, direction in (("sent", "in"), ("received", "out")):
                mine = [m for m in messages if m.connection == conn and m.direction == direction]
                assert digest(mine) == client_summary[way], (client_summary["node"], way)
        offline = by_node["10:offline"]
        watcher = by_node["w1:watcher"]

        # the backlog is one sync frame, stored whole
        syncs = [m for m in messages if m.connection == offline and m.type == "sync"]
        backlog = max(syncs, key=lambda m: len(m.payload))
        assert backlog.flag is None and len(json.loads(backlog.payload)) == 2 + 2 * N

        # 12,000 events with absolute Logux ids, the server's resends counted once
        actions = [e for e in events if e.cause_seq == backlog.seq]
        assert len(actions) == N and {e.type for e in actions} == {"counter/add"}
        ids = sorted(e.event["meta"]["id"] for e in actions)
        assert all(re.fullmatch(r"\d{13} 10:offline \d+", i) for i in ids)
        assert summary["ids"]["first"] in ids and summary["ids"]["last"] in ids
        assert hashlib.sha256("\n".join(ids).encode()).hexdigest() == summary["ids"]["sha256"]
        resends = [m for m in messages if m.connection == watcher and m.type == "sync"]
        assert len(resends) >= N  # the watcher got every action again …
        adds = [e for e in events if e.type == "counter/add"]
        assert len(adds) == N + 1  # … as no new event (N backlog + the refused one)
        answered = {e.event["id"] for e in events if e.type == "logux/processed"}
        assert set(ids) <= answered

        # the refused action's undo is linked to it, both ways; a backlog action to its answer
        refused = next(e for e in adds if e.event["meta"]["id"] == summary["refused"]["id"])
        undo = next(e for e in events if e.type == "logux/undo")
        assert undo.event["id"] == refused.event["meta"]["id"]
        assert [(ln.label, ln.record.v) for ln in log_links(reader, undo)] == [
            ("answers", refused.v)
        ]
        assert [(ln.label, ln.record.v) for ln in log_links(reader, refused)] == [
            ("answered by", undo.v)
        ]
        first = actions[0]
        [link] = log_links(reader, first)
        assert link.label == "answered by" and link.record.type == "logux/processed"
        assert link.record.event["id"] == first.event["meta"]["id"]

        # a malformed Logux array: flagged, forwarded (the server answered it), no crash
        bad = [m for m in messages if m.flag == "bad-logux"]
        assert len(bad) == 1 and bad[0].payload == b'["sync", "x", {"type": "counter/add"}]'
        assert bad_answers[-1].startswith('["error","wrong-format"')

    # a JS reducer (and its Python twin) replays them to the server's own counter
    for ref in ("samples/js/logux_counter.mjs:reducer", "samples.logux_counter:reducer"):
        state = CliRunner().invoke(app, ["state", log, "--reducer", ref, "--json"])
        assert state.exit_code == 0, state.output
        assert json.loads(state.output)["state"] == summary["state"], ref
