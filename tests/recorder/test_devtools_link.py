"""The devtools channel against the reference server: snapshot, events, cause → seq, rejoin."""

from __future__ import annotations

import asyncio

import pytest
import websockets

from devtools.store import Log
from recorder.app import start_recorder
from samples.sales_order import make_server
from tests.recorder.conftest import TOKEN, settings_for

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def sales_server():
    handle = await make_server(token=TOKEN).serve("127.0.0.1", 0)
    try:
        yield handle
    finally:
        await handle.close()


async def wait_for(predicate, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_events_snapshot_and_hashes_are_recorded_with_their_cause(sales_server, sqlite_log):
    settings = settings_for(sales_server.port, sqlite_log, devtools_path="/devtools")
    handle = await start_recorder(settings)
    await handle.wait_joined()
    async with websockets.connect(handle.url, proxy=None) as ws:
        await ws.send('{"type":"order/list"}')
        await ws.recv()
        await ws.send('{"type":"order/create","customer":"ACME"}')
        await ws.recv()
        await wait_for(lambda: handle.session.events >= 1)
    await handle.close()
    with Log.open(sqlite_log) as log:
        reader = log.reader()
        (snapshot,) = list(reader.snapshots())
        (event,) = list(reader.events())
        cause = reader.message(event.cause_seq)
        recording = reader.recording
    assert snapshot.v == 0 and snapshot.hash.startswith("sha256:")
    assert event.type == "order/created" and event.hash.startswith("sha256:")
    assert cause.direction == "in" and cause.type == "order/create"
    assert recording.server == {"name": "sales-order", "version": "1.0"}


async def test_a_dropped_channel_rejoins_and_records_a_gap_for_missed_events(
    sales_server, sqlite_log
):
    settings = settings_for(sales_server.port, sqlite_log, devtools_path="/devtools")
    handle = await start_recorder(settings)
    await handle.wait_joined()
    link = handle.link
    link.retry = 0.3
    await link._ws.close()  # the channel drops …
    await wait_for(lambda: not link.joined.is_set())
    async with websockets.connect(sales_server.url, proxy=None) as ws:  # … events happen meanwhile
        await ws.send('{"type":"order/create","customer":"missed"}')
        await ws.recv()
    await handle.wait_joined()
    async with websockets.connect(handle.url, proxy=None) as ws:
        await ws.send('{"type":"order/create","customer":"seen"}')
        await ws.recv()
        await wait_for(lambda: handle.session.events >= 1)
    await handle.close()
    with Log.open(sqlite_log) as log:
        reader = log.reader()
        gaps = reader.gaps()
        events = list(reader.events())
        snapshots = [s.v for s in reader.snapshots()]
    assert [(g.kind, g.start, g.end) for g in gaps] == [("events", 1, 1)]
    assert [e.v for e in events] == [2] and snapshots == [0, 1]
