"""Workers on a real NATS JetStream bus (devtools/bus.py, PROTOCOL.md §9), in-process.

Several :class:`ReducerServer` workers share one fresh stream (the ``nats_stream`` fixture);
what they agree on is read back from their devtools channels and from the raw stream.
"""

from __future__ import annotations

import asyncio

import pytest

from devtools import jsonutil
from devtools import server as server_module
from devtools.bus import NatsBus
from devtools.canonical import state_hash
from devtools.errors import BusError
from devtools.server import ReducerServer
from devtools.server_context import Context, Next
from samples import sales_order
from tests.bus_support import (
    TOKEN,
    command,
    hammer,
    nats_call,
    stream_bodies,
    watch,
    worker,
)

pytestmark = pytest.mark.timeout(90)


def barrier_middleware(barrier: asyncio.Barrier, seen: list[tuple[str, int]], tag: str):
    """Hold a message whose middleware sees v=0 until the other worker's does too."""

    async def hold(ctx: Context, message: dict, next: Next) -> None:
        seen.append((tag, ctx.v))
        if ctx.v == 0:
            await barrier.wait()
        await next(message)

    return hold


async def test_two_workers_publishing_at_once_keep_one_total_order(nats_stream):
    """Both run their middleware against v=0 and publish expecting v=0: one is refused by the
    stream, folds the other's event, runs its middleware again and gets the next id."""
    url, stream = nats_stream
    barrier, seen = asyncio.Barrier(2), []
    handles = []
    for tag in ("A", "B"):
        app = ReducerServer(
            sales_order.reducer,
            [barrier_middleware(barrier, seen, tag), *sales_order.MIDDLEWARE],
            name=sales_order.NAME,
            version=sales_order.VERSION,
            token=TOKEN,
            bus=NatsBus([url], stream, worker_id=tag),
        )
        handles.append(await app.serve("127.0.0.1", 0))
    a, b = handles
    try:
        first, second = await asyncio.gather(
            command(a.url, {"type": "order/create", "customer": "from A"}),
            command(b.url, {"type": "order/create", "customer": "from B"}),
        )
        assert {first["id"], second["id"]} == {"o1", "o2"}  # not o1 twice
        assert sorted([first["v"], second["v"]]) == [1, 2]
        assert a.app.conflicts + b.app.conflicts == 1
        loser = "A" if a.app.conflicts else "B"
        assert sorted(seen) == sorted([("A", 0), ("B", 0), (loser, 1)])
        bodies = await stream_bodies(url, stream)
        assert [seq for seq, _ in bodies] == [1, 2]
        assert [body["event"]["v"] for _, body in bodies] == [1, 2]
        assert a.app.state_hash() == b.app.state_hash()
        assert a.app.state["count"] == 2
    finally:
        for h in handles:
            await h.close()


async def test_clients_hammering_two_workers_get_events_1_to_n(nats_stream):
    """Many clients on two workers at once: every command becomes exactly one event, the
    stream holds v = 1..N with no gap and no repeat, every worker ends in the same state."""
    url, stream = nats_stream
    a = await worker(url, stream, "A")
    b = await worker(url, stream, "B")
    try:
        watches = [await watch(a.devtools_url), await watch(b.devtools_url)]
        batches = [[f"{w}{c}-{i}" for i in range(25)] for w in ("a", "b") for c in range(3)]
        targets = [a.url] * 3 + [b.url] * 3
        runs = (hammer(t, c) for t, c in zip(targets, batches, strict=True))
        errors = await asyncio.gather(*runs)
        assert errors == [[]] * 6
        total = sum(len(c) for c in batches)
        bodies = await stream_bodies(url, stream)
        assert [seq for seq, _ in bodies] == list(range(1, total + 1))
        assert [body["event"]["v"] for _, body in bodies] == list(range(1, total + 1))
        customers = [body["event"]["customer"] for _, body in bodies]
        assert sorted(customers) == sorted(c for batch in batches for c in batch)
        ids = [body["event"]["id"] for _, body in bodies]
        assert ids == [f"o{v}" for v in range(1, total + 1)]
        for w in watches:
            await w.until(total)
            assert w.order == list(range(1, total + 1))
        assert watches[0].hashes == watches[1].hashes
        assert a.app.state == b.app.state and a.app.state["count"] == total
        for w in watches:
            await w.close()
    finally:
        await a.close()
        await b.close()


async def test_the_stream_holds_the_envelope_and_every_worker_reports_the_cause(nats_stream):
    url, stream = nats_stream
    a = await worker(url, stream, "A")
    b = await worker(url, stream, "B")
    try:
        on_b = await watch(b.devtools_url)
        assert on_b.hello["server"] == {
            "name": "sales-order",
            "version": "1.0",
            "worker": "B",
        }
        created = await command(
            a.url, {"type": "order/create", "customer": "ACME"}, **{"X-Rdt-Connection": "p7"}
        )
        [(seq, body)] = await stream_bodies(url, stream)
        assert seq == 1
        assert body == {"event": created, "cause": {"connection": "p7", "n": 1}}
        assert created["sender"] == "A/c1" and isinstance(created["ts"], int)
        await on_b.until(1)
        assert on_b.events[1]["event"] == created
        assert on_b.events[1]["cause"] == {"connection": "p7", "n": 1}
        assert on_b.events[1]["hash"] == a.app.state_hash()
        await on_b.close()
    finally:
        await a.close()
        await b.close()


async def test_every_running_worker_answers_the_snapshot_subject(nats_stream):
    url, stream = nats_stream
    a = await worker(url, stream, "A")
    b = await worker(url, stream, "B")
    try:
        await command(a.url, {"type": "order/create", "customer": "ACME"})
        await asyncio.wait_for(b.app.bus.wait_folded(1), 10)
        import nats

        from devtools.jsonutil import loads

        nc = await nats.connect(url)
        try:
            inbox = nc.new_inbox()
            sub = await nc.subscribe(inbox)
            await nc.publish(f"_rdt.{stream}.snapshot", b"{}", reply=inbox)
            answers = [loads((await sub.next_msg(timeout=5)).data) for _ in range(2)]
        finally:
            await nc.close()
        assert sorted(answer["worker"] for answer in answers) == ["A", "B"]
        for answer in answers:
            assert answer["v"] == 1
            assert answer["state"] == a.app.state
            assert answer["hash"] == state_hash(a.app.state)
    finally:
        await a.close()
        await b.close()


async def test_a_late_worker_starts_from_the_best_snapshot(nats_stream):
    url, stream = nats_stream
    a = await worker(url, stream, "A")
    try:
        assert a.app.bus.joined.offer is None and a.app.bus.joined.v == 0
        errors = await hammer(a.url, [f"c{i}" for i in range(10)])
        assert errors == []
        late = await worker(url, stream, "L")
        try:
            assert late.app.bus.joined.v == 10
            assert late.app.bus.joined.offer.worker == "A"
            assert late.app.state == a.app.state
            await command(late.url, {"type": "order/create", "customer": "late"})
            await asyncio.wait_for(a.app.bus.wait_folded(11), 10)
            assert late.app.state_hash() == a.app.state_hash()
        finally:
            await late.close()
    finally:
        await a.close()


async def test_a_late_worker_copies_a_state_larger_than_a_nats_message_in_parts(nats_stream):
    url, stream = nats_stream
    a = await worker(url, stream, "A")
    try:
        # 24 customers of 64 kB: a 1.5 MB state, past NATS's 1 MiB max_payload
        for i in range(24):  # one at a time: the answer to order/list would pass 1 MiB too
            reply = await command(
                a.url, {"type": "order/create", "customer": f"{i}" + "x" * 65_536}
            )
            assert reply["type"] != "error", reply
        assert len(jsonutil.dumps(a.app.state)) > a.app.bus._nc.max_payload
        late = await worker(url, stream, "L")
        try:
            assert late.app.bus.joined.offer is not None  # a snapshot, not the stream from 0
            assert late.app.bus.joined.offer.worker == "A" and late.app.bus.joined.v == 24
            assert late.app.state_hash() == a.app.state_hash()
        finally:
            await late.close()
    finally:
        await a.close()


async def test_a_broadcast_reaches_the_clients_of_every_worker(nats_stream):
    url, stream = nats_stream
    a = await worker(url, stream, "A")
    b = await worker(url, stream, "B")
    try:
        from websockets.asyncio.client import connect

        from devtools.jsonutil import loads

        async with connect(b.url) as on_b:
            await asyncio.sleep(0)  # the connection is registered before the event
            created = await command(a.url, {"type": "order/create", "customer": "ACME"})
            pushed = loads(await asyncio.wait_for(on_b.recv(), 10))
        assert pushed == created
    finally:
        await a.close()
        await b.close()


def pair_counter(state: dict | None, event: dict) -> dict:
    state = {"n": 0} if state is None else state
    return {"n": state["n"] + 1} if event["type"] == "tick" else state


async def two_ticks(ctx: Context, message: dict, next: Next) -> None:
    first = ctx.emit({"type": "tick", "k": 1})
    second = ctx.emit({"type": "tick", "k": 2})
    ctx.reply({"type": "ticked", "vs": [first["v"], second["v"]]})


async def test_a_message_with_several_events_publishes_them_in_order(nats_stream):
    url, stream = nats_stream
    apps = [
        ReducerServer(
            pair_counter,
            [two_ticks],
            name="pairs",
            version="1",
            token=TOKEN,
            bus=NatsBus([url], stream, worker_id=w),
        )
        for w in ("A", "B")
    ]
    handles = [await app.serve("127.0.0.1", 0) for app in apps]
    try:
        from websockets.asyncio.client import connect

        from devtools import jsonutil

        async def ticks(url: str, n: int) -> list[list[int]]:
            async with connect(url) as ws:
                for _ in range(n):
                    await ws.send('{"type": "go"}')
                return [jsonutil.loads(await ws.recv())["vs"] for _ in range(n)]

        got = await asyncio.gather(*(ticks(h.url, 15) for h in handles))
        pairs = [pair for per_worker in got for pair in per_worker]
        assert all(second == first + 1 for first, second in pairs)  # never torn apart
        assert sorted(v for pair in pairs for v in pair) == list(range(1, 61))
        bodies = await stream_bodies(url, stream)
        assert [body["event"]["k"] for _, body in bodies] == [1, 2] * 30
        assert apps[0].state == apps[1].state == {"n": 60}
    finally:
        for h in handles:
            await h.close()


async def test_a_subscriber_that_takes_batches_gets_the_same_events_in_fewer_messages(
    nats_stream, monkeypatch
):
    """Events a worker folds within its send delay go to a ``batch`` subscriber as one
    ``@@devtools/events`` message; the other subscriber gets the same events one by one."""
    monkeypatch.setattr(server_module, "SEND_AFTER", 0.05)  # wide enough to hold several
    url, stream = nats_stream
    handle = await worker(url, stream, "A")
    batched = await watch(handle.devtools_url, batch=True)
    plain = await watch(handle.devtools_url)
    try:
        assert not await hammer(handle.url, [f"c{i}" for i in range(20)])
        await batched.until(20)
        await plain.until(20)
        assert batched.order == plain.order == list(range(1, 21))
        assert batched.hashes == plain.hashes
        assert all(batched.hashes.values())
        assert max(batched.batches) > 1 and sum(batched.batches) <= 20
        assert plain.batches == []
    finally:
        await batched.close()
        await plain.close()
        await handle.close()


async def test_a_subscriber_that_asks_for_hashes_only_gets_each_v_and_hash_in_few_messages(
    nats_stream,
):
    """What a recorder that reads the events from the bus asks its workers for: ``[v, hash]``
    after every event, the same hashes an event subscriber gets, and no event messages."""
    url, stream = nats_stream
    handle = await worker(url, stream, "A")
    hashes = await watch(handle.devtools_url, batch=True, hashes_only=True)
    plain = await watch(handle.devtools_url)
    try:
        assert not await hammer(handle.url, [f"c{i}" for i in range(30)])
        state, seen = await hashes.get_state()  # at once: hashes still wait to go out
        assert state["v"] == 30 and seen == 30  # they went out first
        await plain.until(30)
        assert [v for v, _ in hashes.pairs] == list(range(1, 31))
        assert {v: h for v, h in hashes.pairs} == {v: plain.hashes[v] for v in range(1, 31)}
        assert all(h for _, h in hashes.pairs) and state["hash"] == plain.hashes[30]
        assert hashes.order == [] and hashes.batches == []
        assert hashes.hash_messages < 30  # sent together (every 50 ms at most)
    finally:
        await hashes.close()
        await plain.close()
        await handle.close()


async def test_a_stream_whose_first_events_are_gone_is_refused(nats_stream):
    url, stream = nats_stream
    a = await worker(url, stream, "A")
    try:
        assert await hammer(a.url, ["x", "y", "z"]) == []
    finally:
        await a.close()
    await nats_call(url, lambda js: js.delete_msg(stream, 1))
    with pytest.raises(BusError, match=r"starts at seq 2 \(earlier events were removed"):
        await worker(url, stream, "B")


async def test_a_stream_with_a_hole_stops_the_worker_in_one_line(nats_stream):
    url, stream = nats_stream
    a = await worker(url, stream, "A")
    try:
        assert await hammer(a.url, ["x", "y", "z"]) == []
    finally:
        await a.close()
    await nats_call(url, lambda js: js.delete_msg(stream, 2))
    with pytest.raises(BusError, match="skips from v=1 to seq 3"):
        await worker(url, stream, "B")


async def test_unreachable_nats_is_one_bus_error():
    pytest.importorskip("nats", reason="nats-py is not installed (pip install -e '.[bus]')")
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    bus = NatsBus([f"nats://127.0.0.1:{port}"], "s", worker_id="A")
    with pytest.raises(BusError, match=f"cannot connect to NATS at nats://127.0.0.1:{port}"):
        await sales_order.make_server(token=TOKEN, bus=bus).serve("127.0.0.1", 0)
