"""``rdt sample NAME --bus …``: sample workers on a real NATS JetStream stream.

In-process workers and ``rdt sample --bus`` child processes share a fresh stream; their
devtools channels' hashes are compared per ``v``.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from devtools.cli import app
from devtools.tasks import spawn
from samples.traffic import run_traffic
from tests.bus_support import (
    ROOT,
    command,
    hammer,
    nats_call,
    sample_worker,
    stream_bodies,
    watch,
    worker,
)

pytestmark = pytest.mark.timeout(120)


def agree_from(late, others, since: int) -> None:
    """``late``'s hashes from ``since`` on equal every other worker's, v for v."""
    late_hashes = late.hashes
    assert min(late_hashes) == since
    for v, digest in late_hashes.items():
        assert digest is not None
        for other in others:
            assert other.hashes[v] == digest, f"hashes differ at v={v}"


async def test_three_workers_one_started_mid_stream_agree_hash_for_hash(nats_stream):
    url, stream = nats_stream
    a = await worker(url, stream, "A")
    b = await worker(url, stream, "B")
    c = None
    watches = []
    try:
        watches = [await watch(a.devtools_url), await watch(b.devtools_url)]
        early = [
            spawn(run_traffic(a.url, clients=3, messages=40, seed=1), "traffic A"),
            spawn(run_traffic(b.url, clients=3, messages=40, seed=2), "traffic B"),
        ]
        await watches[0].until(30)
        c = await sample_worker("sales-order", url, stream, "C")  # while traffic flows
        joined_at = int(c.lines["joined"].split()[0].removeprefix("v="))
        assert joined_at >= 30 and "snapshot of worker" in c.lines["joined"]
        assert c.lines["worker"] == "C"
        on_c = await watch(c.devtools_url)
        watches.append(on_c)
        assert on_c.hello["server"]["worker"] == "C"
        late = spawn(run_traffic(c.url, clients=2, messages=30, seed=3), "traffic C")
        await asyncio.gather(*early, late)
        final = (await nats_call(url, lambda js: js.stream_info(stream))).state.last_seq
        for w in watches:
            await w.until(final)
        agree_from(on_c, watches[:2], on_c.snapshot["v"])
        assert on_c.order == list(range(on_c.snapshot["v"] + 1, final + 1))
        assert watches[0].hashes == watches[1].hashes
        assert [seq for seq, _ in await stream_bodies(url, stream)] == list(range(1, final + 1))
    finally:
        for w in watches:
            await w.close()
        if c is not None:
            await c.stop()
        await a.close()
        await b.close()


async def test_a_killed_worker_restarts_from_a_snapshot_and_agrees(nats_stream):
    url, stream = nats_stream
    a = await worker(url, stream, "A")
    c = await sample_worker("sales-order", url, stream, "C")
    try:
        assert c.lines["joined"].startswith("v=0 from the snapshot of worker A")
        assert await hammer(c.url, [f"before-{i}" for i in range(10)]) == []
        await c.kill()
        assert await hammer(a.url, [f"while-dead-{i}" for i in range(10)]) == []
        c = await sample_worker("sales-order", url, stream, "C")
        assert c.lines["joined"].startswith("v=20 from the snapshot of worker A")
        on_a, on_c = await watch(a.devtools_url), await watch(c.devtools_url)
        assert on_c.snapshot["v"] == 20 and on_c.snapshot["hash"] == on_a.snapshot["hash"]
        await asyncio.gather(
            hammer(a.url, [f"after-a-{i}" for i in range(10)]),
            hammer(c.url, [f"after-c-{i}" for i in range(10)]),
        )
        await on_a.until(40)
        await on_c.until(40)
        agree_from(on_c, [on_a], 20)
        assert on_c.snapshot["state"]["count"] == 20
        bodies = await stream_bodies(url, stream)
        assert [seq for seq, _ in bodies] == list(range(1, 41))
        customers = [body["event"]["customer"] for _, body in bodies]
        assert len(set(customers)) == 40  # nothing lost, nothing twice
        await on_a.close()
        await on_c.close()
    finally:
        await c.stop()
        await a.close()


async def test_two_worker_processes_hammered_at_once_keep_events_1_to_n(nats_stream):
    url, stream = nats_stream
    workers = [await sample_worker("sales-order", url, stream, w) for w in ("P", "Q")]
    try:
        watches = [await watch(w.devtools_url) for w in workers]
        batches = [
            (w.url, [f"{i}-{c}-{k}" for k in range(60)])
            for i, w in enumerate(workers)
            for c in range(3)
        ]
        errors = await asyncio.gather(*(hammer(target, batch) for target, batch in batches))
        assert errors == [[]] * len(batches)
        total = sum(len(batch) for _, batch in batches)
        bodies = await stream_bodies(url, stream)
        assert [body["event"]["v"] for _, body in bodies] == list(range(1, total + 1))
        customers = [body["event"]["customer"] for _, body in bodies]
        assert sorted(customers) == sorted(c for _, batch in batches for c in batch)
        for w in watches:
            await w.until(total)
            assert w.order == list(range(1, total + 1))
        assert watches[0].hashes == watches[1].hashes
        for w in watches:
            await w.close()
    finally:
        for w in workers:
            await w.stop()


async def test_the_buggy_worker_differs_at_the_exact_v_its_reducer_drifts(nats_stream):
    """The planted bug of samples/sales_order_buggy.py: the 4th event of this sequence."""
    url, stream = nats_stream
    a = await worker(url, stream, "A")
    buggy = await sample_worker("sales-order-buggy", url, stream, "B")
    try:
        on_a, on_b = await watch(a.devtools_url), await watch(buggy.devtools_url)
        assert on_b.hello["server"] == {
            "name": "sales-order-buggy",
            "version": "1.0-buggy",
            "worker": "B",
        }
        line = {"type": "order/add-line", "order": "o1", "sku": "A", "qty": 1, "price": 500}
        for message in [
            {"type": "order/create", "customer": "ACME"},
            line,
            line,
            {"type": "order/remove-line", "order": "o1", "sku": "A"},
        ]:
            answer = await command(a.url, message)
            assert answer["type"] != "error", answer
        await on_a.until(4)
        await on_b.until(4)
        assert [on_a.hashes[v] == on_b.hashes[v] for v in range(0, 5)] == [True] * 4 + [False]
        assert on_b.events[4]["event"] == on_a.events[4]["event"]  # same event, other state
        await on_a.close()
        await on_b.close()
    finally:
        await buggy.stop()
        await a.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def invoke(*args: str):
    return CliRunner().invoke(app, ["sample", *args])


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--bus", "http://127.0.0.1:4222", "--stream", "s"], "expected a nats"),
        (["--bus", "nats://", "--stream", "s"], "has no host"),
        (["--bus", "nats://127.0.0.1:4222"], "--bus needs --stream"),
        (["--bus", "nats://127.0.0.1:4222", "--stream", "a.b"], "--stream 'a.b'"),
        (["--stream", "s"], "--stream and --worker-id go with --bus"),
    ],
)
def test_bad_bus_options_are_one_line_exit_3(args, words):
    result = invoke("sales-order", *args)
    assert result.exit_code == 3, result.output
    assert words in result.output and len(result.output.strip().splitlines()) == 1


def test_bus_is_for_the_python_samples():
    result = invoke("node-sales-order", "--bus", "nats://127.0.0.1:4222", "--stream", "s")
    assert result.exit_code == 3 and "Python samples only" in result.output


def test_unreachable_nats_is_one_line_exit_3():
    pytest.importorskip("nats", reason="nats-py is not installed (pip install -e '.[bus]')")
    port = free_port()
    result = invoke("sales-order", "--bus", f"nats://127.0.0.1:{port}", "--stream", "s")
    assert result.exit_code == 3
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"rdt: cannot connect to NATS at nats://127.0.0.1:{port}: ")


def test_without_nats_py_bus_fails_in_one_line():
    """nats-py is optional: hidden from the interpreter, --bus says how to install it."""
    code = (
        "import sys; sys.modules['nats'] = None; sys.argv = ['rdt', 'sample', 'sales-order', "
        "'--bus', 'nats://127.0.0.1:4222', '--stream', 's']\n"
        "from devtools.cli import main; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 3, done.stderr
    assert done.stderr.strip().splitlines() == [
        "rdt: --bus needs nats-py: pip install 'reducer-devtools[bus]' (in a checkout: pip "
        "install -e '.[bus]')"
    ]


async def test_a_trimmed_stream_without_workers_is_refused_by_the_cli(nats_stream):
    url, stream = nats_stream
    a = await worker(url, stream, "A")
    try:
        assert await hammer(a.url, ["x", "y"]) == []
    finally:
        await a.close()
    await nats_call(url, lambda js: js.purge_stream(stream))
    result = await asyncio.to_thread(invoke, "sales-order", "--bus", url, "--stream", stream)
    assert result.exit_code == 3
    [line] = result.output.strip().splitlines()
    assert f"stream {stream} starts at seq 3" in line and "retention" in line
