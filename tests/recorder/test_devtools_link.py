"""The devtools channel against the reference server: snapshot, events, cause → seq, rejoin."""

from __future__ import annotations

import asyncio
from functools import partial

import pytest
import websockets

from devtools.store import Log
from recorder.app import start_recorder
from recorder.devtools_link import _DirectConnection
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


async def test_a_resting_channel_hands_over_what_it_already_received_when_asked():
    """A worker's link rests after a read that emptied the socket; a flush asks it to read now,
    so what the worker already sent is not left waiting for the rest to end."""
    send_b = asyncio.Event()
    sent_b = asyncio.Event()

    async def worker(ws):
        await ws.send(b"a")
        await send_b.wait()
        await ws.send(b"b")
        while ws.transport.get_write_buffer_size():  # in the kernel: on loopback, at the peer
            await asyncio.sleep(0.001)
        sent_b.set()
        await ws.wait_closed()

    got: list[bytes] = []
    async with websockets.serve(worker, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        connection = partial(
            _DirectConnection, on_message=got.append, waiting=lambda: False, rest=30.0
        )
        async with websockets.connect(
            f"ws://127.0.0.1:{port}", proxy=None, create_connection=connection
        ) as ws:
            await wait_for(lambda: got == [b"a"])
            send_b.set()
            await sent_b.wait()
            await asyncio.sleep(0.1)
            assert got == [b"a"]  # resting: "b" waits in the socket
            ws.read_now()
            await wait_for(lambda: got == [b"a", b"b"], timeout=2.0)


async def test_the_channel_is_not_compressed_so_the_server_spends_no_cpu_deflating_events(
    sales_server, sqlite_log
):
    settings = settings_for(sales_server.port, sqlite_log, devtools_path="/devtools")
    handle = await start_recorder(settings)
    try:
        await handle.wait_joined()
        (subscriber,) = sales_server.app._subscribers.values()
        assert subscriber.ws.protocol.extensions == []
    finally:
        await handle.close()
