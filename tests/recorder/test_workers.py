"""Recording several workers: one copy of the events, every worker's hashes, the drifted worker
caught at the exact v — in the log and live on the control feed (real servers on loopback)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
import websockets

from devtools import jsonutil, protocol
from devtools.control_client import connect
from devtools.store import Log
from devtools.workers import disagreements
from tests.cluster import ALL_GOOD, BUG_TRAFFIC, BUG_V, GOOD_GOOD_BUGGY, Spec, start_cluster
from tests.recorder.conftest import TOKEN

pytestmark = pytest.mark.timeout(60)

EVENTS = len(BUG_TRAFFIC)


async def test_three_workers_one_drifted_every_hash_stored_and_the_drift_caught_at_its_v(
    log_target,
):
    cluster = await start_cluster(log_target)
    try:
        await cluster.send(BUG_TRAFFIC)
        await cluster.settle(EVENTS)
        (divergence,) = cluster.recorder.merge.divergences
    finally:
        await cluster.close()
    assert divergence.describe() == (
        f"worker 3 (w-c, sales-order 1.0-buggy) disagrees with worker 1 (w-a, sales-order 1.0) "
        f"at v={BUG_V} (state hash)"
    )
    with Log.open(log_target) as log:
        reader = log.reader()
        workers = reader.workers()
        hashes = list(reader.worker_hashes())
        events = list(reader.events())
        snapshots = reader.worker_snapshots()
        server = reader.recording.server
    assert [(w.index, w.id, w.version) for w in workers] == [
        (1, "w-a", "1.0"),
        (2, "w-b", "1.0.1"),
        (3, "w-c", "1.0-buggy"),
    ]
    assert workers[1].url.endswith("/devtools") and server["version"] == "1.0"
    # one copy of each event; every worker's hash after each (and at the join, v=0)
    assert [e.v for e in events] == list(range(1, EVENTS + 1))
    assert sorted((h.v, h.worker) for h in hashes) == [
        (v, w) for v in range(0, EVENTS + 1) for w in (1, 2, 3)
    ]
    by = {(h.v, h.worker): h.hash for h in hashes}
    assert all(by[v, 1] == by[v, 2] for v in range(EVENTS + 1))
    assert [v for v in range(EVENTS + 1) if by[v, 3] != by[v, 1]] == list(range(BUG_V, EVENTS + 1))
    # the stored event carries worker 1's hash, and its cause (worker 1 is behind the proxy)
    assert all(e.hash == by[e.v, 1] and e.cause_seq is not None for e in events)
    # the drifted worker and its reference were asked for their states when it was seen
    asked = [(s.worker, s.v) for s in snapshots if s.v > 0]
    assert sorted(w for w, _v in asked) == [1, 3] and all(v >= BUG_V for _w, v in asked)


async def test_workers_that_agree_give_no_divergence(sqlite_log):
    cluster = await start_cluster(sqlite_log, ALL_GOOD)
    try:
        await cluster.send(BUG_TRAFFIC)
        await cluster.settle(EVENTS)
        assert cluster.recorder.merge.divergences == []
    finally:
        await cluster.close()
    with Log.open(sqlite_log) as log:
        reader = log.reader()
        assert len(list(reader.worker_hashes())) == 3 * (EVENTS + 1)
        assert all(s.v == 0 for s in reader.worker_snapshots())  # join snapshots only


async def test_the_control_feed_says_when_a_worker_disagrees_the_moment_it_does(sqlite_log):
    cluster = await start_cluster(sqlite_log)
    records: list[dict] = []
    try:
        ws = await connect(cluster.recorder.control_url, TOKEN)
        kinds = ["divergence", "worker_snapshot"]
        await ws.send(jsonutil.dumps(protocol.subscribe_request(kinds=kinds)).decode())
        await cluster.send(BUG_TRAFFIC[:BUG_V])  # up to the event the drift shows at
        async with asyncio.timeout(10):
            while sum(r["kind"] == "worker_snapshot" for r in records) < 2:
                records.append(jsonutil.loads(await ws.recv()))
        await ws.close()
    finally:
        await cluster.close()
    divergence = records[0]
    assert divergence["kind"] == "divergence" and divergence["v"] == BUG_V
    assert divergence["worker"]["index"] == 3 and divergence["worker"]["version"] == "1.0-buggy"
    assert divergence["reference"]["index"] == 1 and divergence["differs"] == "hash"
    assert divergence["hashes"]["1"] == divergence["hashes"]["2"] != divergence["hashes"]["3"]
    states = {r["worker"]: r for r in records if r["kind"] == "worker_snapshot"}
    assert states[1]["v"] == states[3]["v"] == BUG_V
    assert states[1]["state"]["orders"]["o1"]["total"] == 0
    assert states[3]["state"]["orders"]["o1"]["total"] == -1000


async def test_a_subscriber_that_comes_later_gets_the_divergence_from_the_log(sqlite_log):
    cluster = await start_cluster(sqlite_log)
    try:
        await cluster.send(BUG_TRAFFIC)
        await cluster.settle(EVENTS)
        ws = await connect(cluster.recorder.control_url, TOKEN)
        request = protocol.subscribe_request(from_seq=1, kinds=["divergence", "worker"])
        await ws.send(jsonutil.dumps(request).decode())
        got = []
        async with asyncio.timeout(10):
            while not any(r["kind"] == "divergence" for r in got):
                got.append(jsonutil.loads(await ws.recv()))
        await ws.close()
    finally:
        await cluster.close()
    assert [r["index"] for r in got if r["kind"] == "worker"] == [1, 2, 3]
    (divergence,) = [r for r in got if r["kind"] == "divergence"]
    assert (divergence["v"], divergence["worker"]["index"]) == (BUG_V, 3)


async def test_a_worker_reporting_another_event_object_disagrees_at_that_v(sqlite_log):
    """Worker 2's clock runs ahead, so its events' ts differ from the stored copy's."""
    specs = (ALL_GOOD[0], replace(ALL_GOOD[1], skew=7), ALL_GOOD[2])
    cluster = await start_cluster(sqlite_log, specs)
    try:
        await cluster.send(BUG_TRAFFIC[:2])
        await cluster.settle(2)
        (divergence,) = cluster.recorder.merge.divergences
    finally:
        await cluster.close()
    found = divergence.disagreement
    assert (found.v, found.worker, found.kind) == (1, 2, "event")
    with Log.open(sqlite_log) as log:
        reader = log.reader()
        differing = [h for h in reader.worker_hashes() if h.event is not None and h.v == 1]
        stored = reader.event(1).event
        logged = disagreements(reader.worker_hashes())
    # the log keeps each report that differed from the stored copy (whoever reported first) …
    assert differing and all(h.event["ts"] != stored["ts"] for h in differing)
    # … and decides again what the live feed said
    assert [(d.v, d.worker, d.kind) for d in logged] == [(1, 2, "event")]


def test_spec_defaults_keep_the_clocks_equal():
    assert all(isinstance(s, Spec) and s.skew == 0 for s in GOOD_GOOD_BUGGY)


async def test_rdt_record_follows_workers_without_an_upstream_and_says_who_drifted(tmp_path):
    """`rdt record --devtools A --devtools B` as a real process: no proxy, the workers'
    channels only; the drift is said on stderr and kept in the log."""
    import signal
    import subprocess
    import sys

    from tests.cluster import start_workers

    log = str(tmp_path / "cli.rdtlog")
    handles = await start_workers(GOOD_GOOD_BUGGY[::2])  # a good worker and the drifted one
    urls = [arg for handle in handles for arg in ("--devtools", handle.devtools_url)]
    proc = subprocess.Popen(
        [sys.executable, "-c", "from devtools.cli import main; main()", "record", *urls]
        + ["--control", "127.0.0.1:0", "--log", log, "--token", TOKEN],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def joined() -> bool:
            try:
                with Log.open(log) as opened:
                    hashes = list(opened.reader().worker_hashes(0, 0))
            except Exception:  # not created yet
                return False
            return len(hashes) == 2

        async with asyncio.timeout(20):
            while not joined():
                await asyncio.sleep(0.05)
        for handle in handles:
            async with websockets.connect(handle.url, proxy=None) as ws:
                for message in BUG_TRAFFIC:
                    await ws.send(jsonutil.dumps(message).decode())
                    await ws.recv()
        async with asyncio.timeout(20):
            while True:
                with Log.open(log) as opened:
                    if len(list(opened.reader().worker_hashes(EVENTS, EVENTS))) == 2:
                        break
                await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.to_thread(proc.communicate, timeout=30)
    finally:
        proc.kill()
        for handle in handles:
            await handle.close()
    assert proc.returncode == 0, err
    assert "worker 1: ws://127.0.0.1:" in out and "listening on" not in out
    assert (
        f"workers disagree: worker 2 (w-c, sales-order 1.0-buggy) disagrees with worker 1 "
        f"(w-a, sales-order 1.0) at v={BUG_V}"
    ) in err
    with Log.open(log) as opened:
        reader = opened.reader()
        assert [w.version for w in reader.workers()] == ["1.0", "1.0-buggy"]
        assert reader.recording.upstream is None
        assert len(list(reader.events())) == EVENTS
