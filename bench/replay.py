"""Replay speed, seek time, bisect cost and memory, against a hand-written loop, same run.

Generates a sales-order-like log of N events (default 1,000,000) in a temporary SQLite file
with the store's writer, then measures:

* replay events/s of ``Replay.build()`` (the first pass, which also writes the checkpoints)
  against a hand loop: raw ``sqlite3`` cursor over the events table + ``orjson.loads`` + the
  same reducer, interleaved over a few rounds (alternating which goes first); prints the ratio
  per round (wall and CPU time) and their median;
* the same comparison in shared-core rounds: both loops at once, two processes pinned to one
  core, CPU time compared (a shared machine's speed drifts by tens of percent between
  sequential runs; time-sliced on one core, both see the same moments). The bar (0.9×) is on
  the median of these rounds (on the sequential rounds' median with ``--shared 0``);
* the median time of ``state_at(v)`` at random ``v`` after reopening (checkpoints persisted;
  bar: 100 ms);
* bisect time and the checkpoints it evaluated;
* peak traced memory (tracemalloc) of the replay pass at N/4 and at N events (flat is good).

Exits 1 when the replay ratio or the seek bar is missed.

With ``--store postgresql`` the log is a fresh PostgreSQL database (``rdt_bench_<pid>`` on the
server of ``--pg-url``, default ``$RDT_TEST_POSTGRES``, dropped afterwards) and the hand loop is a
psycopg server-side cursor over the same rows (1,000 a page) + ``orjson.loads`` + the reducer.
The log is read right after it is written (the writer's own ``ANALYZE`` only): the replay
must not depend on the statistics being fresh. ``--quarter 0`` skips the memory pass.

Usage: python bench/replay.py [--events N] [--every K] [--seeks 50] [--rounds 5] [--shared 4]
       [--store sqlite|postgresql] [--pg-url URL] [--quarter 1]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import orjson
import sqlalchemy as sa
from orders import T0, reducer  # bench/orders.py (this folder is on sys.path)

from devtools.model import Event
from devtools.store import Log
from replayer.engine import Replay

OPEN_ORDERS = 500
BUG_EXPR = "state['refunds_negative'] > 0"


PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def is_url(target: str | Path) -> bool:
    return "://" in str(target)


def pg_database(url: str, name: str, *, drop: bool = False) -> str:
    """Create (or with ``drop``, drop) database ``name`` on ``url``'s server; its URL."""
    base = sa.engine.make_url(url)
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        if not drop:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def _psycopg_dsn(url: str) -> str:
    u = sa.engine.make_url(url)
    parts = [f"dbname={u.database}", f"host={u.host or '127.0.0.1'}", f"port={u.port or 5432}"]
    parts += [f"user={u.username}"] if u.username else []
    parts += [f"password={u.password}"] if u.password else []
    return " ".join(parts)


def generate(path: Path | str, count: int, bug_at: int) -> None:
    """Write ``count`` events; one order submitted at ``bug_at`` has a negative total."""
    rng = random.Random(1)
    open_orders: list[str] = []
    next_id = 0
    batch: list[Event] = []
    with Log.open(path, create=True) as log:
        writer = log.writer(name="bench", started_ns=T0)
        for v in range(1, count + 1):
            ts = T0 + v * 1000
            if v == bug_at - 2:
                body = {"type": "order/created", "id": "bug", "customer": "ACME"}
                open_orders.append("bug")
            elif v == bug_at - 1:
                body = {"type": "order/line-added", "order": "bug", "sku": "R", "qty": -1}
                body["price"] = 700
            elif v == bug_at:
                open_orders.remove("bug")
                body = {"type": "order/submitted", "order": "bug"}
            else:
                roll = rng.random()
                if len(open_orders) < OPEN_ORDERS // 2 or (
                    roll < 0.15 and len(open_orders) < OPEN_ORDERS
                ):
                    next_id += 1
                    oid = f"o{next_id}"
                    open_orders.append(oid)
                    body = {"type": "order/created", "id": oid, "customer": f"c{rng.randrange(90)}"}
                elif roll < 0.85:
                    body = {
                        "type": "order/line-added",
                        "order": open_orders[rng.randrange(len(open_orders))],
                        "sku": f"sku-{rng.randrange(40)}",
                        "qty": rng.randrange(1, 6),
                        "price": rng.randrange(100, 5000),
                    }
                else:
                    oid = open_orders.pop(rng.randrange(len(open_orders)))
                    body = {"type": "order/submitted", "order": oid}
            body.update(v=v, ts=ts, sender=f"c{v % 8}")
            batch.append(Event(v=v, type=body["type"], event=body, t_ns=ts))
            if len(batch) >= 10_000:
                writer.add_events(batch)
                writer.flush()
                batch = []
        writer.add_events(batch)
        writer.close(ended_ns=T0 + count * 1000)


def hand_loop(path: Path | str) -> tuple[float, float, dict]:
    """The baseline: raw ``sqlite3`` cursor + ``orjson.loads`` + the reducer (on PostgreSQL:
    a psycopg server-side cursor fetching 1,000 rows a round trip).

    Returns:
        (wall seconds, CPU seconds, final state).
    """
    if is_url(path):
        return hand_loop_pg(str(path))
    conn = sqlite3.connect(path)
    started, cpu = time.perf_counter(), time.process_time()
    state = reducer(None, {"type": "@@INIT"})
    loads = orjson.loads
    for _v, payload in conn.execute(
        "SELECT v, event FROM events WHERE recording_id = 1 ORDER BY v"
    ):
        state = reducer(state, loads(payload))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    conn.close()
    return elapsed, cpu, state


def hand_loop_pg(url: str) -> tuple[float, float, dict]:
    import psycopg

    conn = psycopg.connect(_psycopg_dsn(url))
    started, cpu = time.perf_counter(), time.process_time()
    state = reducer(None, {"type": "@@INIT"})
    loads = orjson.loads
    with conn.transaction(), conn.cursor(name="hand") as cur:
        cur.itersize = 1000
        cur.execute("SELECT v, event FROM events WHERE recording_id = 1 ORDER BY v")
        while rows := cur.fetchmany(1000):
            for _v, payload in rows:
                state = reducer(state, loads(payload))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    conn.close()
    return elapsed, cpu, state


def clear_checkpoints(path: Path | str) -> None:
    if is_url(path):
        engine = sa.create_engine(str(path))
        with engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM checkpoints")
        engine.dispose()
        return
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM checkpoints")
    conn.close()


def replay_pass(
    path: Path | str, every: int, *, fresh: bool, traced: bool = False
) -> tuple[float, float, dict, int, int]:
    """Time ``Replay.build()`` (or, with ``traced``, measure its peak traced memory).

    The time runs from opening the log until the build has returned, which is after every
    checkpoint it took is written to the log.

    Returns:
        (wall seconds, CPU seconds, final state, peak traced bytes or 0, checkpoints taken).
    """
    if fresh:
        clear_checkpoints(path)
    if traced:
        tracemalloc.start()
    started, cpu = time.perf_counter(), time.process_time()
    with Replay.open(path, reducer=reducer, checkpoint_every=every, persist_after=0) as replay:
        replay.build()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        peak = 0
        if traced:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        final = replay.state_at()
        taken = len(replay.checkpoints)
    return elapsed, cpu, final, peak, taken


def shared_core(path: Path | str, folder: Path, every: int, count: int) -> float:
    """Run both loops at once, in two processes pinned to the same core; compare CPU time.

    Sequential rounds on a shared machine drift by tens of percent from one run to the next;
    two processes time-sliced on one core see the same moments of it, so their CPU times
    compare like for like. The core alternates between rounds. Conservative for the replay: its
    checkpoint-writer thread runs on that same core and its CPU time counts, where a real run
    overlaps it with the replay on another core.

    Returns:
        The median of the rounds' ratios (hand CPU seconds / replay CPU seconds).
    """
    if is_url(path):
        copies = [path, path]  # one database: the hand loop only reads the events
    else:
        copies = [folder / "hand.rdtlog", folder / "ours.rdtlog"]
        for copy in copies:
            shutil.copy(path, copy)
    ratios = []
    for i in range(count):
        core = i % 2
        procs = [
            subprocess.Popen(
                [sys.executable, __file__, "--worker", kind, "--log", str(copy)]
                + ["--core", str(core), "--every", str(every)],
                stdout=subprocess.PIPE,
                text=True,
            )
            for kind, copy in zip(("hand", "ours"), copies, strict=True)
        ]
        hand, ours = (float(proc.communicate()[0]) for proc in procs)
        ratios.append(hand / ours)
        print(
            f"  shared core {core}: hand {hand:.2f} s CPU, replay {ours:.2f} s CPU: "
            f"{ratios[-1]:.2f}x"
        )
    return statistics.median(ratios)


def worker(kind: str, path: Path | str, core: int, every: int) -> int:
    """One pass for :func:`shared_core`: prints its CPU seconds."""
    os.sched_setaffinity(0, {core})
    if kind == "hand":
        print(hand_loop(path)[1])
    else:
        print(replay_pass(path, every, fresh=True)[1])
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--every", type=int, default=1000)
    parser.add_argument("--seeks", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--shared", type=int, default=4, help="shared-core rounds (0: judge the sequential ones)"
    )
    parser.add_argument("--worker", choices=("hand", "ours"), help=argparse.SUPPRESS)
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-url", default=os.environ.get("RDT_TEST_POSTGRES", PG_DEFAULT))
    parser.add_argument("--quarter", type=int, default=1, help="0: skip the memory pass")
    parser.add_argument("--log", help=argparse.SUPPRESS)
    parser.add_argument("--core", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        log = args.log if is_url(args.log) else Path(args.log)
        return worker(args.worker, log, args.core, args.every)
    n = args.events
    bug_at = int(n * 0.737)
    folder = Path(tempfile.mkdtemp(prefix="rdt-bench-"))
    ok = True
    databases: list[str] = []

    def new_log(stem: str) -> Path | str:
        if args.store == "sqlite":
            return folder / f"{stem}.rdtlog"
        databases.append(f"rdt_bench_{os.getpid()}_{stem}")
        return pg_database(args.pg_url, databases[-1])

    try:
        path = new_log("bench")
        started = time.perf_counter()
        generate(path, n, bug_at)
        print(
            f"generated {n:,} events in {time.perf_counter() - started:.1f} s "
            f"({args.store}{'' if args.store == 'sqlite' else ': ' + databases[-1]})"
        )

        # Interleaved rounds, alternating which loop goes first, so the page cache and the
        # machine's drifting speed treat both alike; wall and CPU time (the machine is shared).
        hand_runs, ours_runs = [], []
        for i in range(args.rounds):
            if i % 2:
                ours_runs.append(replay_pass(path, args.every, fresh=True))
                hand_runs.append(hand_loop(path))
            else:
                hand_runs.append(hand_loop(path))
                ours_runs.append(replay_pass(path, args.every, fresh=True))
        hand_state, our_state = hand_runs[0][2], ours_runs[0][2]
        if orjson.dumps(hand_state) != orjson.dumps(our_state):
            print("replay and hand loop disagree on the final state", file=sys.stderr)
            return 1
        for what, i in (("wall", 0), ("CPU", 1)):
            pairs = [h[i] / o[i] for h, o in zip(hand_runs, ours_runs, strict=True)]
            print(
                f"  {what:4s} ratio per round: "
                + " ".join(f"{r:.2f}" for r in pairs)
                + f"   (median {statistics.median(pairs):.2f})"
            )
        hand = min(h[0] for h in hand_runs)
        ours = min(o[0] for o in ours_runs)
        median = statistics.median(h[0] / o[0] for h, o in zip(hand_runs, ours_runs, strict=True))
        print(
            f"replay (checkpoints every {args.every}, paced: {ours_runs[0][4]} persisted): "
            f"{n / ours:,.0f} events/s   hand loop: {n / hand:,.0f} events/s (best of "
            f"{args.rounds}; best-vs-best {hand / ours:.2f}x)   median of the rounds' wall "
            f"ratios {median:.2f}x"
        )
        if args.shared:
            verdict = shared_core(path, folder, args.every, args.shared)
            what = f"median of {args.shared} shared-core rounds (CPU time)"
        else:
            verdict, what = median, f"median of {args.rounds} sequential rounds (wall time)"
        ok &= verdict >= 0.9
        print(
            f"replay vs hand loop: {verdict:.2f}x, {what} "
            f"(bar 0.9x: {'ok' if verdict >= 0.9 else 'BELOW'})"
        )

        rng = random.Random(5)
        with Replay.open(path, reducer=reducer, checkpoint_every=args.every) as replay:
            loaded = replay.checkpoints.loaded
            seeks = []
            for _ in range(args.seeks):
                v = rng.randrange(1, n + 1)
                t0 = time.perf_counter()
                replay.state_at(v)
                seeks.append(time.perf_counter() - t0)
            median = statistics.median(seeks)
            ok &= median < 0.1
            print(
                f"seek after reopen ({loaded:,} persisted checkpoints): median "
                f"{median * 1000:.1f} ms, max {max(seeks) * 1000:.1f} ms "
                f"over {args.seeks} random v "
                f"(bar 100 ms: {'ok' if median < 0.1 else 'BELOW'})"
            )
            t0 = time.perf_counter()
            result = replay.bisect(BUG_EXPR)
            elapsed = time.perf_counter() - t0
            print(
                f"bisect: v={result.v} (planted at {bug_at}) in {elapsed * 1000:.0f} ms, "
                f"{result.checkpoints_touched} checkpoints evaluated "
                f"(log2 of {len(replay.checkpoints):,} = {len(replay.checkpoints).bit_length()}), "
                f"{result.reductions} events replayed"
            )
            ok &= result.v == bug_at

        if args.quarter:
            quarter = new_log("quarter")
            generate(quarter, n // 4, bug_at // 4)
            peak = replay_pass(path, args.every, fresh=True, traced=True)[3]
            peak_quarter = replay_pass(quarter, args.every, fresh=True, traced=True)[3]
            print(
                f"peak traced memory of the replay pass: {peak_quarter / 2**20:.1f} MiB at "
                f"{n // 4:,} events, {peak / 2**20:.1f} MiB at {n:,} events "
                f"(ratio {peak / peak_quarter:.2f})"
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        for name in databases:
            pg_database(args.pg_url, name, drop=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
