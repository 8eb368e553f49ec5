"""Workers and the recorder ride out a NATS restart: a private ``nats-server`` (JetStream on
disk in tmp_path) is stopped and started again on the same port under two workers and a
recorder of both; events before and after it stay one total order with no gap and no repeat,
both workers agree at the end, and the recorder's log has every event and every hash."""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from devtools.store import Log
from recorder.app import start_recorder
from tests.bus_support import TOKEN, command, stream_bodies, watch, worker
from tests.recorder.conftest import settings_for

NATS_SERVER = shutil.which("nats-server") or (
    "/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists() else None
)

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(
        NATS_SERVER is None, reason="needs the nats-server binary to run a private server"
    ),
]

STREAM = "RESTART"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateNats:
    """A nats-server of this test's own, with JetStream stored under ``store``."""

    def __init__(self, port: int, store: Path) -> None:
        self.port = port
        self.store = store
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    async def start(self) -> None:
        assert NATS_SERVER is not None
        self.process = await asyncio.create_subprocess_exec(
            NATS_SERVER, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        async with asyncio.timeout(10):
            while True:
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                except OSError:
                    await asyncio.sleep(0.05)
                    continue
                writer.close()
                return

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()


@pytest.fixture
async def nats_server(tmp_path: Path) -> AsyncIterator[PrivateNats]:
    server = PrivateNats(free_port(), tmp_path / "jetstream")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def create(url: str, customer: str, timeout: float = 30) -> None:
    """``order/create`` until it is accepted (while NATS is back but the worker not yet)."""
    async with asyncio.timeout(timeout):
        while True:
            reply = await command(url, {"type": "order/create", "customer": customer})
            if reply["type"] != "error":
                return
            await asyncio.sleep(0.2)


async def test_two_workers_and_a_recorder_ride_out_a_nats_restart(nats_server, tmp_path):
    first = await worker(nats_server.url, STREAM, "w1")
    second = await worker(nats_server.url, STREAM, "w2")
    watches = [await watch(first.devtools_url), await watch(second.devtools_url)]
    log = str(tmp_path / "bus.rdtlog")
    settings = settings_for(
        1,
        log,
        upstream=None,
        bus=nats_server.url,
        stream=STREAM,
        devtools_urls=(first.devtools_url, second.devtools_url),
        token=TOKEN,
    )
    recorder = await start_recorder(settings)
    try:
        for n in range(3):
            await create(first.url, f"before-{n}")
        for watcher in watches:
            await watcher.until(3)

        await nats_server.stop()
        await nats_server.start()

        for n in range(3):
            await create(second.url if n % 2 else first.url, f"after-{n}")
        for watcher in watches:
            await watcher.until(6, timeout=30)
        bodies = await stream_bodies(nats_server.url, STREAM)
        async with asyncio.timeout(30):
            while recorder.bus.last_v < 6 or recorder.merge.reported_to(6) < 2:
                await asyncio.sleep(0.05)
        await recorder.flush()
    finally:
        await recorder.close()
        for watcher in watches:
            await watcher.close()
        await first.close()
        await second.close()
    assert [seq for seq, _ in bodies] == [1, 2, 3, 4, 5, 6]
    customers = [body["event"]["customer"] for _, body in bodies]
    assert customers[:3] == ["before-0", "before-1", "before-2"]
    assert sorted(customers[3:]) == ["after-0", "after-1", "after-2"]
    assert [w.order for w in watches] == [[1, 2, 3, 4, 5, 6]] * 2
    assert watches[0].hashes[6] == watches[1].hashes[6] is not None
    with Log.open(log) as opened:
        reader = opened.reader()
        events = [e.v for e in reader.events()]
        gaps = reader.gaps()
        hashes = {(h.v, h.worker) for h in reader.worker_hashes() if h.v >= 1}
    assert events == [1, 2, 3, 4, 5, 6] and gaps == []
    assert hashes == {(v, w) for v in range(1, 7) for w in (1, 2)}
