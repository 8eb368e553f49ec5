"""End to end: real bus workers (``rdt sample … --bus``: two sales-order, one sales-order-buggy)
on a real NATS JetStream stream, recorded by ``rdt record --bus … --devtools …`` — the drifted
worker caught at its exact v, live on the control feed and afterwards by ``rdt verify``."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest
from typer.testing import CliRunner

from devtools import jsonutil, protocol
from devtools.cli import app
from devtools.control_client import connect
from devtools.jsonutil import loads
from tests.bus_support import TOKEN, command, sample_worker
from tests.cluster import BUG_TRAFFIC, BUG_V

pytestmark = pytest.mark.timeout(120)
runner = CliRunner()


async def start_recorder_process(args: list[str]) -> tuple[asyncio.subprocess.Process, str]:
    """`rdt record` as a real process; returns it and its control URL once it printed it."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "devtools",
        "record",
        *args,
        "--control",
        "127.0.0.1:0",
        "--token",
        TOKEN,
        env={**os.environ, "COLUMNS": "300"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    async with asyncio.timeout(30):
        while True:
            line = (await proc.stdout.readline()).decode()
            assert line, "rdt record stopped before its control endpoint was up"
            if line.startswith("control endpoint "):
                return proc, line.split()[-1]


async def test_real_bus_workers_one_drifted_caught_at_its_v_live_and_in_verify(
    nats_stream, tmp_path
):
    url, stream = nats_stream
    log = str(tmp_path / "bus.rdtlog")
    workers = [
        await sample_worker("sales-order", url, stream, "w-a"),
        await sample_worker("sales-order", url, stream, "w-b"),
        await sample_worker("sales-order-buggy", url, stream, "w-c"),
    ]
    links = [arg for w in workers for arg in ("--devtools", w.devtools_url)]
    recorder, control = await start_recorder_process(
        ["--bus", url, "--stream", stream, *links, "--log", log]
    )
    try:
        feed = await connect(control, TOKEN)
        await feed.send(
            jsonutil.dumps(
                protocol.subscribe_request(from_seq=1, kinds=["divergence", "worker", "event"])
            ).decode()
        )
        async with asyncio.timeout(30):  # every worker's channel is joined (its hello came)
            named = set()
            while len(named) < 3:
                record = jsonutil.loads(await feed.recv())
                if record["kind"] == "worker" and record.get("id"):
                    named.add(record["id"])
        divergences = []
        for v, message in enumerate(BUG_TRAFFIC, start=1):  # each command to a worker in turn
            await command(workers[v % 3].url, message)
            async with asyncio.timeout(30):  # its event is recorded before the next is sent
                while True:
                    record = jsonutil.loads(await feed.recv())
                    if record["kind"] == "divergence":
                        divergences.append(record)
                    elif record["kind"] == "event" and record["v"] == v:
                        break
        async with asyncio.timeout(30):
            while not divergences:
                record = jsonutil.loads(await feed.recv())
                if record["kind"] == "divergence":
                    divergences.append(record)
        await feed.close()
        await asyncio.sleep(0.5)  # the states asked for, and the last events, reach the log
        recorder.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(recorder.communicate(), 30)
    finally:
        if recorder.returncode is None:
            recorder.kill()
        for w in workers:
            await w.stop()
    (record,) = divergences
    assert record["v"] == BUG_V and record["differs"] == "hash"
    assert (record["worker"]["id"], record["worker"]["name"]) == ("w-c", "sales-order-buggy")
    assert record["reference"]["id"] == "w-a"
    assert f"at v={BUG_V}" in err.decode()

    result = runner.invoke(
        app, ["verify", log, "--reducer", "samples.sales_order:reducer", "--json"]
    )
    assert result.exit_code == 1, result.output
    doc = loads(result.stdout)
    assert doc["first_divergent_v"] == BUG_V
    (finding,) = doc["findings"]
    assert finding["kind"] == "worker-divergence"
    assert finding["worker"]["id"] == "w-c" and finding["replay_agrees_with"] == [1, 2]
    assert {"op": "replace", "path": "/orders/o1/total", "value": -1000, "from_value": 0} in (
        finding["diff"]
    )
