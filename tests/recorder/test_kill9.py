"""kill -9 of ``rdt record`` under pipelined load (issue 12 item 3): the log opens, and every
message whose echo came back more than 100 ms before the kill is in it."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time

import pytest
import websockets

from devtools.store import Log
from devtools.tasks import spawn
from tests.recorder.test_commands import spawn_recorder

pytestmark = pytest.mark.timeout(120)
WINDOW = 0.1  # the flush promise, in seconds
PIPELINE = 64  # messages in flight at once


async def pipelined_until_killed(url: str, pid: int, kill_after: float) -> tuple[dict, float]:
    """Pipeline messages through the recorder; kill -9 it after ``kill_after`` seconds.

    Returns when each message's echo came back (monotonic seconds, by message number) and
    the moment of the kill.
    """
    acked: dict[int, float] = {}
    slots = asyncio.Semaphore(PIPELINE)
    async with websockets.connect(url, proxy=None, compression=None) as ws:

        async def send() -> None:
            i = 0
            while True:
                await slots.acquire()
                await ws.send(f'{{"type":"k9","i":{i}}}')
                i += 1

        async def receive() -> None:
            async for echo in ws:
                acked[int(echo.rsplit(":", 1)[1].rstrip("}"))] = time.monotonic()
                slots.release()

        tasks = [spawn(send(), "k9-send"), spawn(receive(), "k9-receive")]
        await asyncio.sleep(kill_after)
        killed_at = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        await asyncio.wait(tasks, timeout=5, return_when=asyncio.FIRST_EXCEPTION)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return acked, killed_at


@pytest.mark.parametrize("round_", range(3))
async def test_kill9_keeps_every_message_acknowledged_100ms_before_the_kill(
    round_, echo_server, tmp_path
):
    log = str(tmp_path / f"kill9-{round_}.rdtlog")
    proc, url, _control = spawn_recorder(echo_server.port, log)
    try:
        acked, killed_at = await pipelined_until_killed(url, proc.pid, random.uniform(0.3, 1.2))
    finally:
        proc.kill()
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    old = {i for i, t in acked.items() if t < killed_at - WINDOW}
    assert len(old) > 50, "too little traffic before the kill to say anything"
    with Log.open(log) as opened:  # the log opens after kill -9
        stored = {
            int(m.payload.rsplit(b":", 1)[1].rstrip(b"}"))
            for m in opened.reader().messages(direction="in")
            if m.type == "k9"
        }
    lost = old - stored
    assert not lost, (
        f"{len(lost)} of {len(old)} acknowledged messages lost, the oldest acknowledged "
        f"{killed_at - min(acked[i] for i in lost):.3f} s before the kill"
    )
