"""The writer's queue is bounded in bytes: past ``max_queue_bytes`` messages become gap records
with counts, every seq is stored or covered by a gap, and the forwarded traffic never waits."""

from __future__ import annotations

import time

import pytest
import websockets
from websockets.asyncio.server import serve

from devtools.store import Log
from recorder.app import start_recorder
from tests.recorder.conftest import settings_for

pytestmark = pytest.mark.timeout(90)

N = 3000
BODY = "x" * 4000


async def chatty(ws) -> None:
    """Answers the first message with N messages of ~4 kB, as fast as the socket takes them."""
    await ws.recv()
    for i in range(N):
        await ws.send(f'{{"type":"tick","i":{i},"pad":"{BODY}"}}')
    async for _ in ws:
        pass


async def test_a_full_byte_bound_turns_messages_into_counted_gaps_without_slowing_traffic(
    sqlite_log,
):
    limit = 256 * 1024
    async with serve(chatty, "127.0.0.1", 0, max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        # a 3 s flush interval: the queue only drains after the traffic is through
        settings = settings_for(port, sqlite_log, max_queue_bytes=limit, flush_interval=3.0)
        async with await start_recorder(settings) as handle:
            started = time.monotonic()
            async with websockets.connect(handle.url, proxy=None, max_size=None) as ws:
                await ws.send('{"type":"go"}')
                got = [await ws.recv() for _ in range(N)]
            elapsed = time.monotonic() - started
            assert got[-1].startswith(f'{{"type":"tick","i":{N - 1},')  # forwarded, in order
            assert elapsed < 3.0, elapsed  # never waited for the store
            # only the records always kept (connections, closes, gaps) may go past it
            assert limit - 8192 < handle.writer.peak_bytes <= limit + 4096
            assert handle.writer.lost > 0
    with Log.open(sqlite_log) as log:
        reader = log.reader()
        seqs = {m.seq for m in reader.messages()}
        gaps = [g for g in reader.gaps() if g.kind == "messages"]
    covered = set().union(*(range(g.start, g.end + 1) for g in gaps))
    assert gaps and all("recorder queue full: " in g.reason for g in gaps)
    assert sum(int(g.reason.split(": ")[1].split()[0]) for g in gaps) == len(covered)
    assert seqs | covered == set(range(1, N + 2)) and not seqs & covered
    # what was stored is within the bound: the bytes of the messages stored in the first batch
    assert len(seqs) * len(BODY) < 2 * limit + N * 300
