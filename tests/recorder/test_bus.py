"""`rdt record --bus`: the recorder as one more consumer of a real NATS JetStream stream.

Until the sample bus workers exist, the tests publish the workers' envelopes themselves
(``{"event": …, "cause": …}`` on ``STREAM.events``, the stream sequence being ``v``).
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import replace

import pytest
import websockets
from typer.testing import CliRunner

from devtools import jsonutil, protocol
from devtools.cli import app
from devtools.store import Log
from devtools.tasks import spawn
from devtools.tokens import bearer_header
from recorder.app import start_recorder
from tests.cluster import BUG_TRAFFIC, BUG_V, start_cluster
from tests.recorder.conftest import TOKEN, settings_for

pytestmark = pytest.mark.timeout(60)


async def publish(url: str, stream: str, bodies: list) -> None:
    """Publish envelopes (creating the stream, as a first worker would)."""
    import nats

    client = await nats.connect(url)
    try:
        js = client.jetstream()
        try:
            await js.stream_info(stream)
        except nats.js.errors.NotFoundError:
            await js.add_stream(name=stream, subjects=[f"{stream}.events"])
        for body in bodies:
            data = body if isinstance(body, bytes) else jsonutil.dumps(body)
            await js.publish(f"{stream}.events", data)
    finally:
        await client.close()


def envelope(v: int, cause=None, **fields) -> dict:
    event = {"type": "counter/added", "by": v, "v": v, "ts": 1_795_420_800_000_000_000 + v}
    return {"event": {**event, **fields}, "cause": cause}


async def wait_for(predicate, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_the_stream_is_the_event_log_from_its_first_message(nats_stream, sqlite_log):
    url, stream = nats_stream
    await publish(url, stream, [envelope(v) for v in (1, 2, 3)])  # before the recorder starts
    settings = settings_for(1, sqlite_log, upstream=None, bus=url, stream=stream)
    handle = await start_recorder(settings)
    try:
        await publish(url, stream, [envelope(4), b"not an envelope", envelope(6)])
        await wait_for(lambda: handle.bus.last_v >= 6)
        await handle.flush()
    finally:
        await handle.close()
    with Log.open(sqlite_log) as log:
        reader = log.reader()
        events = list(reader.events())
        gaps = reader.gaps()
        server = reader.recording.server
    assert [(e.v, e.event["by"]) for e in events] == [(1, 1), (2, 2), (3, 3), (4, 4), (6, 6)]
    assert [(g.kind, g.start, g.end) for g in gaps] == [("events", 5, 5)]
    assert server["bus"] == {"url": url, "stream": stream}


async def consumers(url: str, stream: str) -> list[str]:
    import nats

    client = await nats.connect(url)
    try:
        return [c.name for c in await client.jetstream().consumers_info(stream)]
    finally:
        await client.close()


async def test_what_the_stream_got_just_before_the_stop_is_in_the_log_and_no_consumer_is_left(
    nats_stream, sqlite_log
):
    url, stream = nats_stream
    settings = settings_for(1, sqlite_log, upstream=None, bus=url, stream=stream)
    handle = await start_recorder(settings)
    try:
        assert len(await consumers(url, stream)) == 1  # the recorder's, while it runs
        await publish(url, stream, [envelope(v) for v in range(1, 41)])
    finally:
        await handle.close()  # at once: the recorder reads what the stream holds first
    with Log.open(sqlite_log) as log:
        assert [e.v for e in log.reader().events()] == list(range(1, 41))
    assert await consumers(url, stream) == []


async def test_a_consumer_deleted_under_the_recorder_is_made_again_and_nothing_is_missed(
    nats_stream, sqlite_log
):
    import nats

    url, stream = nats_stream
    settings = settings_for(1, sqlite_log, upstream=None, bus=url, stream=stream)
    handle = await start_recorder(settings)
    try:
        await publish(url, stream, [envelope(v) for v in (1, 2, 3)])
        await wait_for(lambda: handle.bus.last_v >= 3)
        client = await nats.connect(url)
        try:
            (name,) = [c.name for c in await client.jetstream().consumers_info(stream)]
            await client.jetstream().delete_consumer(stream, name)
        finally:
            await client.close()
        await publish(url, stream, [envelope(v) for v in (4, 5, 6)])
        await wait_for(lambda: handle.bus.last_v >= 6)
        await handle.flush()
    finally:
        await handle.close()
    with Log.open(sqlite_log) as log:
        reader = log.reader()
        assert [e.v for e in reader.events()] == [1, 2, 3, 4, 5, 6]
        assert reader.gaps() == []


async def test_an_event_deleted_from_the_stream_is_a_gap_and_reading_goes_on(
    nats_stream, sqlite_log
):
    import nats

    url, stream = nats_stream
    await publish(url, stream, [envelope(v) for v in range(1, 6)])
    client = await nats.connect(url)
    try:
        await client.jetstream().delete_msg(stream, 3)
    finally:
        await client.close()
    settings = settings_for(1, sqlite_log, upstream=None, bus=url, stream=stream)
    handle = await start_recorder(settings)
    try:
        await publish(url, stream, [envelope(6)])
        await wait_for(lambda: handle.bus.last_v >= 6)
        await handle.flush()
    finally:
        await handle.close()
    with Log.open(sqlite_log) as log:
        reader = log.reader()
        assert [e.v for e in reader.events()] == [1, 2, 4, 5, 6]
        ((kind, start, end, reason),) = [(g.kind, g.start, g.end, g.reason) for g in reader.gaps()]
    assert (kind, start, end) == ("events", 3, 3) and "no longer in the stream" in reason


async def test_a_bus_event_s_cause_maps_to_the_recorded_client_message(
    nats_stream, echo_server, sqlite_log
):
    url, stream = nats_stream
    settings = settings_for(echo_server.port, sqlite_log, bus=url, stream=stream, run_id="r1")
    handle = await start_recorder(settings)
    try:
        async with websockets.connect(handle.url, proxy=None) as ws:
            await ws.send('{"type":"counter/add","by":1}')
            await ws.recv()
        await publish(url, stream, [envelope(1, {"connection": "r1-1", "n": 1})])
        await wait_for(lambda: handle.session.events >= 1)
        await handle.flush()
    finally:
        await handle.close()
    with Log.open(sqlite_log) as log:
        reader = log.reader()
        (event,) = list(reader.events())
        cause = reader.message(event.cause_seq)
    assert cause.direction == "in" and cause.type == "counter/add"


async def collect_events(devtools_url: str, events: list) -> None:
    """A devtools client of one worker: every event it reports, as the bus would carry it."""
    async with websockets.connect(
        devtools_url, additional_headers=bearer_header(TOKEN), proxy=None
    ) as ws:
        await ws.send(jsonutil.dumps(protocol.subscribe_request()).decode())
        async for frame in ws:
            message = jsonutil.loads(frame)
            if message.get("type") == protocol.SNAPSHOT:
                events.append("joined")
            elif message.get("type") == protocol.EVENT:
                events.append({"event": message["event"], "cause": message["cause"]})


async def test_with_a_bus_and_links_the_bus_gives_the_events_and_the_links_the_hashes(
    nats_stream, log_target
):
    url, stream = nats_stream
    cluster = await start_cluster(log_target, bus=url, stream=stream)
    published: list = []
    collector = spawn(collect_events(cluster.handles[0].devtools_url, published), "collector")
    try:
        await wait_for(lambda: published == ["joined"])
        published.clear()
        await cluster.send(BUG_TRAFFIC)
        await wait_for(lambda: len(published) == len(BUG_TRAFFIC))
        await publish(url, stream, published)  # the links have reported: they wait for the bus
        await cluster.settle(len(BUG_TRAFFIC))
        (divergence,) = cluster.recorder.merge.divergences
    finally:
        collector.cancel()
        await cluster.close()
    assert (divergence.v, divergence.worker.index) == (BUG_V, 3)
    with Log.open(log_target) as log:
        reader = log.reader()
        events = list(reader.events())
        hashes = {(h.v, h.worker): h.hash for h in reader.worker_hashes()}
    assert [e.event for e in events] == [p["event"] for p in published]
    assert all(e.hash == hashes[e.v, 1] for e in events)  # worker 1's hash, from its link


runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bus", "nats://127.0.0.1:4222"], "--bus and --stream go together"),
        (["--stream", "s"], "--bus and --stream go together"),
        (["--bus", "http://x", "--stream", "s"], "expected a nats/tls/ws/wss:// URL"),
        (["--bus", "nats://x:4222", "--stream", "a.b"], "--stream 'a.b'"),
        (["--devtools", "ws://127.0.0.1:1/devtools?token=secret"], "keep tokens"),
        (["--devtools", "ws://user:pw@127.0.0.1:1/devtools"], "keep tokens"),
        (["--devtools", "http://127.0.0.1:1/devtools"], "ws:// or wss://"),
        (["--devtools-path", "/devtools", "--bus", "nats://h:1", "--stream", "s"], "--upstream"),
        ([], "give --upstream"),
    ],
)
def test_bad_worker_options_are_one_line_and_exit_3(args, message, tmp_path):
    result = runner.invoke(app, ["record", "--token", "t", "--log", str(tmp_path / "x"), *args])
    assert result.exit_code == 3, result.output
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_without_nats_py_the_bus_says_so_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "nats", None)  # import nats → ImportError
    args = ["record", "--bus", "nats://127.0.0.1:4222", "--stream", "s", "--token", "t"]
    result = runner.invoke(app, [*args, "--log", str(tmp_path / "x")])
    assert result.exit_code == 3
    assert result.stderr.strip() == (
        "rdt: --bus needs nats-py: pip install 'reducer-devtools[bus]' (or pip install nats-py)"
    )


async def test_an_unreachable_bus_stops_the_recorder_at_start_without_a_log(tmp_path):
    pytest.importorskip("nats", reason="nats-py is not installed (pip install -e '.[bus]')")
    from devtools.errors import BadInput

    log = tmp_path / "never.rdtlog"
    settings = replace(
        settings_for(1, str(log), upstream=None), bus="nats://127.0.0.1:9", stream="s"
    )
    with pytest.raises(BadInput, match="cannot reach it"):
        await start_recorder(settings)
    assert not log.exists()


async def test_workers_that_send_events_in_batches_are_recorded_event_by_event(
    nats_stream, sqlite_log, monkeypatch
):
    """The recorder's links subscribe with ``batch``: what a worker folds within its send delay
    comes as one ``@@devtools/events`` message, and each event and hash in it is recorded."""
    from devtools import server as server_module
    from tests.bus_support import TOKEN as BUS_TOKEN
    from tests.bus_support import hammer, worker

    monkeypatch.setattr(server_module, "SEND_AFTER", 0.05)  # wide enough to hold several
    url, stream = nats_stream
    a, b = [await worker(url, stream, w) for w in ("A", "B")]
    settings = settings_for(
        a.port,
        sqlite_log,
        token=BUS_TOKEN,
        devtools_path="/devtools",
        devtools_urls=(b.devtools_url,),
    )
    recorder = await start_recorder(settings)
    try:
        await recorder.wait_joined()
        assert [peer.batch for h in (a, b) for peer in h.app._subscribers.values()] == [True] * 2
        assert not await hammer(a.url, [f"c{i}" for i in range(12)])
        assert not await hammer(b.url, [f"d{i}" for i in range(12)])
        async with asyncio.timeout(20):
            while recorder.merge.reported_to(24) < 2:
                await asyncio.sleep(0.01)
        await recorder.flush()
    finally:
        await recorder.close()
        await a.close()
        await b.close()
    with Log.open(sqlite_log) as log:
        reader = log.reader()
        events = list(reader.events())
        hashes = {(h.v, h.worker): h.hash for h in reader.worker_hashes()}
    assert [e.v for e in events] == list(range(1, 25))
    assert all(hashes[e.v, 1] == hashes[e.v, 2] == e.hash is not None for e in events)
