"""What the bus tests share: workers (in-process and ``rdt sample --bus`` children), devtools
watchers that keep each worker's hash per ``v``, clients that hammer a worker, and a reader of
the raw stream. Real NATS only (the ``nats_stream`` fixture of tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from devtools import jsonutil, protocol
from devtools.server import ServerHandle
from devtools.tasks import spawn
from devtools.tokens import bearer_header
from samples import sales_order

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bus-token"
AUTH = bearer_header(TOKEN)


async def worker(
    url: str, stream: str, worker_id: str, *, module: ModuleType = sales_order, **kw: Any
) -> ServerHandle:
    """An in-process worker of sample ``module`` on the bus, listening on an ephemeral port."""
    from devtools.bus import NatsBus

    bus = NatsBus([url], stream, worker_id=worker_id)
    return await module.make_server(token=TOKEN, bus=bus, **kw).serve("127.0.0.1", 0)


@dataclass
class SampleWorker:
    """A ``rdt sample NAME --bus …`` child process and what it printed."""

    process: asyncio.subprocess.Process
    lines: dict[str, str]

    @property
    def url(self) -> str:
        return self.lines["clients"]

    @property
    def devtools_url(self) -> str:
        return self.lines["devtools"]

    async def kill(self) -> None:
        """SIGKILL: no goodbye to NATS, no cleanup."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
        await self.process.wait()


async def sample_worker(
    name: str, url: str, stream: str, worker_id: str, *extra: str
) -> SampleWorker:
    """Start ``rdt sample NAME --bus URL --stream S --worker-id ID --port 0`` and wait until it
    prints its devtools URL (it has joined and caught up by then)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "devtools",
        "sample",
        name,
        "--bus",
        url,
        "--stream",
        stream,
        "--worker-id",
        worker_id,
        "--port",
        "0",
        "--token",
        TOKEN,
        *extra,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    lines: dict[str, str] = {}
    assert process.stdout is not None and process.stderr is not None
    try:
        async with asyncio.timeout(30):
            while "devtools" not in lines:
                line = (await process.stdout.readline()).decode()
                if not line:
                    raise AssertionError((await process.stderr.read()).decode())
                key, _, value = line.partition(":")
                lines[key.strip()] = value.strip()
    except BaseException:
        if process.returncode is None:
            process.kill()
        await process.wait()
        raise
    return SampleWorker(process, lines)


@dataclass
class Watch:
    """A devtools subscriber on one worker: its hello, join snapshot and every event after."""

    ws: ClientConnection
    hello: dict[str, Any]
    snapshot: dict[str, Any]
    events: dict[int, dict[str, Any]] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)
    """How many events each ``@@devtools/events`` message held (a subscriber with batch)."""
    pairs: list[list[Any]] = field(default_factory=list)
    """Every ``[v, hash]`` of ``@@devtools/hashes`` messages (a subscriber with hashes_only)."""
    hash_messages: int = 0
    answers: dict[Any, tuple[dict[str, Any], int]] = field(default_factory=dict)
    """Request id → the answer, and the last ``v`` this subscriber had been sent before it."""
    reader: asyncio.Task[Any] | None = None

    @property
    def hashes(self) -> dict[int, str | None]:
        """``v`` → the state hash the worker reported after it (the join snapshot's too)."""
        found = {self.snapshot["v"]: self.snapshot["hash"]}
        found.update({v: e.get("hash") for v, e in self.events.items()})
        return found

    @property
    def last(self) -> int:
        if self.pairs:
            return self.pairs[-1][0]
        return self.order[-1] if self.order else self.snapshot["v"]

    async def until(self, v: int, timeout: float = 20) -> None:
        async with asyncio.timeout(timeout):
            while self.last < v:
                await asyncio.sleep(0.01)

    async def get_state(self) -> tuple[dict[str, Any], int]:
        """Ask for the state now: the answer, and the last ``v`` sent before it."""
        request_id = f"get-{len(self.answers) + 1}"
        await self.ws.send(jsonutil.dumps(protocol.get_state_request(request_id)).decode())
        async with asyncio.timeout(10):
            while request_id not in self.answers:
                await asyncio.sleep(0.01)
        return self.answers[request_id]

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
        await self.ws.close()


async def watch(devtools_url: str, *, batch: bool = False, hashes_only: bool = False) -> Watch:
    """Join a worker's devtools channel (PROTOCOL.md §2) and keep reading it (``batch``: ask
    for several events in one message; ``hashes_only``: for the hashes without the events)."""
    ws = await connect(devtools_url, additional_headers=AUTH)
    hello = jsonutil.loads(await ws.recv())
    subscribe = protocol.subscribe_request(batch=batch, hashes_only=hashes_only)
    await ws.send(jsonutil.dumps(subscribe).decode())
    snapshot = jsonutil.loads(await ws.recv())
    assert snapshot["type"] == "@@devtools/snapshot", snapshot
    watcher = Watch(ws, hello, snapshot)

    async def read() -> None:
        async for frame in ws:
            message = jsonutil.loads(frame)
            if message.get("id") is not None:
                watcher.answers[message["id"]] = (message, watcher.last)
                continue
            if message["type"] == "@@devtools/hashes":
                watcher.pairs.extend(message["hashes"])
                watcher.hash_messages += 1
                continue
            events = [message]
            if message["type"] == "@@devtools/events":
                events = message["events"]
                watcher.batches.append(len(events))
            for event in events:
                if event["type"] == "@@devtools/event":
                    watcher.events[event["v"]] = event
                    watcher.order.append(event["v"])

    watcher.reader = spawn(read(), "bus test watcher")
    return watcher


async def hammer(url: str, customers: Sequence[str], **headers: str) -> list[dict[str, Any]]:
    """Send one ``order/create`` per customer, pipelined, then ``order/list``; return every
    error reply (the list's answer comes after every earlier message was done)."""
    errors = []
    # max_queue=None: this client reads only at the end, and must not push back on the server
    async with connect(url, additional_headers=headers or None, max_queue=None) as ws:
        for customer in customers:
            await ws.send(jsonutil.dumps({"type": "order/create", "customer": customer}).decode())
        await ws.send(jsonutil.dumps({"type": "order/list"}).decode())
        async with asyncio.timeout(60):
            while True:
                message = jsonutil.loads(await ws.recv())
                if message["type"] == "error":
                    errors.append(message)
                elif message["type"] == "order/list":
                    return errors


async def command(url: str, message: dict[str, Any], **headers: str) -> dict[str, Any]:
    """Send one command on a new connection; return the first frame that answers it: an error,
    or a frame that is not another worker's broadcast (one with the command's ``customer``,
    when it has one)."""
    async with connect(url, additional_headers=headers or None) as ws:
        await ws.send(jsonutil.dumps(message).decode())
        async with asyncio.timeout(20):
            while True:
                frame = jsonutil.loads(await ws.recv())
                if frame.get("customer", message.get("customer")) == message.get("customer"):
                    return frame
                if frame["type"] == "error":
                    return frame


async def stream_bodies(url: str, stream: str) -> list[tuple[int, dict[str, Any]]]:
    """Every message of ``STREAM.events`` as ``(stream seq, decoded body)``, read raw."""
    import nats
    from nats.js.api import ConsumerConfig, DeliverPolicy

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        last = (await js.stream_info(stream)).state.last_seq
        sub = await js.subscribe(
            f"{stream}.events",
            stream=stream,
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
        )
        out = []
        while len(out) < last:
            msg = await sub.next_msg(timeout=10)
            out.append((msg.metadata.sequence.stream, jsonutil.loads(msg.data)))
        await sub.unsubscribe()
        return out
    finally:
        await nc.close()


async def nats_call(url: str, coro_of_js: Any) -> Any:
    """Run ``coro_of_js(js)`` on a fresh connection (stream admin in tests)."""
    import nats

    nc = await nats.connect(url)
    try:
        return await coro_of_js(nc.jetstream())
    finally:
        await nc.close()
