"""TUI benchmark: open time and step latency on a 1,000,000-event log; live-tail rate and the
longest UI stall.

    .venv/bin/python bench/tui.py [--events 1000000] [--rate 10000] [--seconds 5]
        [--store sqlite|postgresql] [--seeks 30]

``--store postgresql``: the three logs are fresh PostgreSQL databases (``rdt_bench_<pid>_…`` on
the server of ``--pg-url``, default ``$RDT_TEST_POSTGRES``, dropped afterwards), read right
after they are written. A seek (``jump_to`` a random ``v``, until the row and its details are
shown) is timed on the big log too (bar: median < 100 ms).

Bars (DESIGN.md §5): open < 1 s, step < 50 ms, live tail >= 5,000 events/s without freezing
(the longest event-loop stall stays under 250 ms; an idle loop's own stall is printed beside
it, since on a shared machine the load alone stalls a loop). Baselines measured in the same
run: the same app over an empty log (the floor of opening any Textual screen here) and a step
on a 100-event log (a step must not depend on the log's size); for the live tail, the rate
offered.

The live feed comes from a small websocket server in this script (a separate process) that
streams PROTOCOL.md §4
event records at a fixed rate over loopback, as a recorder's control endpoint does: it measures
the TUI's side (receive, batch, draw) without the recorder's own cost on this 2-core machine.
Exits 1 when a bar is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import websockets  # noqa: E402

from devtools.jsonutil import dumps  # noqa: E402
from devtools.model import Event  # noqa: E402
from devtools.store import Log  # noqa: E402

T0 = 1_795_420_800_000_000_000
SIZE = (120, 40)


def pg_database(url: str, name: str, *, drop: bool = False) -> str:
    """Create (or with ``drop``, drop) database ``name`` on ``url``'s server; its URL."""
    import sqlalchemy as sa

    base = sa.engine.make_url(url)
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        if not drop:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def write_log(path: str, events: int) -> float:
    """Write ``events`` small events through the store's writer; returns seconds taken."""
    started = time.perf_counter()
    with Log.open(path, create=True) as log:
        writer = log.writer(name="bench", started_ns=T0)
        batch: list[Event] = []
        for v in range(1, events + 1):
            ts = T0 + 1000 * v
            body = {"type": "counter/added", "v": v, "ts": ts, "sender": f"c{v % 7}", "by": v % 10}
            batch.append(Event(v, "counter/added", body, v, None, ts))
            if len(batch) == 20_000:
                writer.add_events(batch)
                writer.flush()
                batch = []
        writer.add_events(batch)
        writer.close(ended_ns=T0 + 1000 * (events + 1))
    return time.perf_counter() - started


SEEKS: list[float] = []
"""Seek latencies (s) of the last :func:`open_and_step` run with ``seeks``."""


async def open_and_step(path: str, steps: int, seeks: int = 0) -> tuple[float, list[float]]:
    """Seconds from launch to the first row selected, and per-step latencies (s)."""
    from tui.launch import replay_app
    from tui.widgets.event_list import EventList

    started = time.perf_counter()
    app, log = replay_app(path)
    try:
        async with app.run_test(size=SIZE) as pilot:
            lst = app.query_one(EventList)
            while lst.row is None and len(lst.source):
                await asyncio.sleep(0.001)
            opened = time.perf_counter() - started
            latencies = []
            presses = []
            for i in range(steps):
                # A step: the key's action, the details of the new row computed (worker
                # thread) and the visible tab filled, then the frame Textual draws for it (its
                # per-frame update: layout if needed, then the changed regions).
                t = time.perf_counter()
                if i % 50 == 49:
                    lst.action_page_down()
                else:
                    lst.action_cursor_down()
                while lst.row is None or app.details is None or app.details.row is not lst.row \
                        or app._active_tab() not in app._rendered:  # fmt: skip
                    # Poll, not spin: sleep(0) would keep the GIL from the worker thread
                    # that computes the details, measuring the bench instead of the app.
                    await asyncio.sleep(0.0005)
                app.screen._on_timer_update()
                latencies.append(time.perf_counter() - t)
                if i % 10 == 0:  # the harness's own round trip (key event + wait for screen)
                    t = time.perf_counter()
                    await pilot.press("j")
                    presses.append(time.perf_counter() - t)
            rng = __import__("random").Random(7)
            SEEKS.clear()
            for _ in range(seeks if len(lst.source) else 0):
                v = rng.randrange(1, len(lst.source) + 1)
                t = time.perf_counter()
                app.jump_to(v)
                while lst.row is None or lst.row.key != v or app.details is None \
                        or app.details.row is not lst.row \
                        or app._active_tab() not in app._rendered:  # fmt: skip
                    await asyncio.sleep(0.0005)
                app.screen._on_timer_update()
                SEEKS.append(time.perf_counter() - t)
            if len(lst.source):
                await pilot.press("G")
                while lst.row is None:
                    await asyncio.sleep(0.001)
                assert lst.row.key == len(lst.source)
    finally:
        log.close()
    if presses:
        print(
            f"  (pilot.press round trip incl. test-harness waits: median "
            f"{statistics.median(presses) * 1000:.0f} ms)"
        )
    return opened, latencies


def feed_process(rate: int, seconds: float, ready: Any) -> None:
    """Run :func:`feed_server` in its own process (so its sending costs the TUI nothing)."""

    async def serve() -> None:
        server, port = await feed_server(rate, seconds)
        ready.put(port)
        await asyncio.sleep(seconds + 30)
        server.close()

    asyncio.run(serve())


async def feed_server(rate: int, seconds: float) -> tuple[Any, int]:
    """A websocket server streaming event records at ``rate``/s for ``seconds`` per client."""

    async def handler(ws) -> None:
        await ws.recv()  # the subscribe request
        v = 0
        started = time.perf_counter()
        tick = 0.01
        per_tick = max(1, int(rate * tick))
        while time.perf_counter() - started < seconds:
            due = int((time.perf_counter() - started) * rate)
            while v < due:
                for _ in range(min(per_tick, due - v)):
                    v += 1
                    ts = T0 + v
                    event = {"type": "counter/added", "v": v, "ts": ts, "sender": "c1", "by": 1}
                    await ws.send(
                        dumps(
                            {
                                "kind": "event",
                                "v": v,
                                "type": "counter/added",
                                "event": event,
                                "cause_seq": None,
                                "hash": None,
                            }
                        ).decode()  # fmt: skip
                    )
            await asyncio.sleep(tick)
        await asyncio.sleep(0.5)

    server = await websockets.serve(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def idle_stall(seconds: float) -> float:
    """The longest stall (ms) of the same 10 ms sampling loop with no app running: what this
    machine's load alone costs (the baseline for the live tail's stall)."""
    stall = 0.0
    last = time.perf_counter()
    end = last + seconds
    while time.perf_counter() < end:
        await asyncio.sleep(0.01)
        now = time.perf_counter()
        stall = max(stall, now - last - 0.01)
        last = now
    return stall * 1000


async def live_tail(rate: int, seconds: float) -> tuple[float, float, int]:
    """Events/s delivered to the list, the longest event-loop stall (ms) and events shown."""
    from tui.launch import live_app
    from tui.widgets.event_list import EventList

    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Queue()
    feeder = ctx.Process(target=feed_process, args=(rate, seconds + 1, ready), daemon=True)
    feeder.start()
    port = await asyncio.to_thread(ready.get, True, 30)
    app = live_app(f"ws://127.0.0.1:{port}/", token="bench")
    stall = 0.0
    try:
        async with app.run_test(size=SIZE) as pilot:
            lst = app.query_one(EventList)
            while app.applied == 0:
                await asyncio.sleep(0.005)
            started = time.perf_counter()
            first = app.applied
            last_tick = time.perf_counter()
            end = started + seconds - 0.2
            while time.perf_counter() < end:
                await asyncio.sleep(0.01)
                now = time.perf_counter()
                stall = max(stall, now - last_tick - 0.01)
                last_tick = now
            delivered = app.applied - first
            elapsed = time.perf_counter() - started
            await pilot.press("k", "k")  # still navigable
            assert not app.following
            shown = len(lst.source)
    finally:
        feeder.terminate()
        feeder.join(10)
    return delivered / elapsed, stall * 1000, shown


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rate", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--seeks", type=int, default=30)
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "RDT_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--no-live", action="store_true", help="skip the live-tail part")
    args = parser.parse_args()
    failed = []
    load = f"{os.getloadavg()[0]:.2f}"
    databases: list[str] = []

    def target(folder: str, stem: str) -> str:
        if args.store == "sqlite":
            return str(Path(folder) / f"{stem}.rdtlog")
        databases.append(f"rdt_bench_{os.getpid()}_{stem}")
        return pg_database(args.pg_url, databases[-1])

    with tempfile.TemporaryDirectory(prefix="rdt-bench-tui-") as folder:
        try:
            big, small, empty = (target(folder, s) for s in ("big", "small", "empty"))
            took = write_log(big, args.events)
            write_log(small, 100)
            write_log(empty, 0)
            print(
                f"wrote {args.events:,} events in {took:.1f} s ({args.events / took:,.0f}/s) "
                f"into {args.store}"
            )
            floor, _ = asyncio.run(open_and_step(empty, 0))
            opened, steps = asyncio.run(open_and_step(big, args.steps, args.seeks))
            seeks = list(SEEKS)
            _, small_steps = asyncio.run(open_and_step(small, min(args.steps, 90)))
        finally:
            for name in databases:
                pg_database(args.pg_url, name, drop=True)
    med, p95, worst = (
        statistics.median(steps),
        sorted(steps)[int(0.95 * len(steps))],
        max(steps),
    )
    small_med = statistics.median(small_steps)
    print(
        f"open {args.events:,}-event log: {opened * 1000:.0f} ms "
        f"(empty-log baseline {floor * 1000:.0f} ms, ratio {opened / floor:.2f}x; bar 1000 ms)"
    )
    print(
        f"step: median {med * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, max {worst * 1000:.1f} ms "
        f"(100-event-log median {small_med * 1000:.1f} ms, ratio {med / small_med:.2f}x; "
        "bar 50 ms median)"
    )
    if seeks:
        seek_med = statistics.median(seeks)
        print(
            f"seek (jump to a random v, row and details shown): median {seek_med * 1000:.1f} ms, "
            f"max {max(seeks) * 1000:.1f} ms over {len(seeks)} (bar 100 ms median)"
        )
        if seek_med >= 0.1:
            failed.append("seek")
    if opened >= 1.0:
        failed.append("open")
    if med >= 0.05:
        failed.append("step")

    if args.no_live:
        print(f"load average before/after: {load} / {os.getloadavg()[0]:.2f}")
        print("FAILED: " + ", ".join(failed) if failed else "open/step/seek bars met")
        return 1 if failed else 0
    idle_ms = asyncio.run(idle_stall(args.seconds))
    rate, stall_ms, shown = asyncio.run(live_tail(args.rate, args.seconds))
    print(
        f"live tail: {rate:,.0f} events/s delivered to the list of {args.rate:,}/s offered "
        f"(ratio {rate / args.rate:.2f}), longest UI stall {stall_ms:.0f} ms "
        f"(idle-loop baseline {idle_ms:.0f} ms), {shown:,} rows "
        "(bar >= 5,000/s, stall < 250 ms)"
    )
    print(f"load average before/after: {load} / {os.getloadavg()[0]:.2f}")
    if rate < 5000:
        failed.append("live rate")
    if stall_ms >= 250:
        failed.append("live stall")
    if failed:
        print("FAILED: " + ", ".join(failed))
        return 1
    print("all TUI bars met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
