"""Retention bench: drop a big recording while another is being written; batches vs one DELETE.

Writes a recording of N events and N messages (default 1,000,000 each) and a second, live
recording, then drops the big one two ways on fresh copies: ``rdt drop``'s batched deletes
(``LogDb.delete_recording``: 5,000 rows a transaction) and one ``DELETE`` per table in a single
transaction (the way before). Meanwhile a writer thread flushes 200 events to the live recording
every 10 ms; the longest flush is how long the drop made the other recording wait.

    .venv/bin/python bench/drop.py [--events 1000000] [--store sqlite|postgresql]

Prints the drop's time, rows/s, and the live writer's worst flush in each mode.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import sqlalchemy as sa

from devtools import schema
from devtools.model import Event, Message
from devtools.store import Log

T0 = 1_795_420_800_000_000_000
PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def pg_database(url: str, name: str, *, drop: bool = False) -> str:
    base = sa.engine.make_url(url)
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        if not drop:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def fill(target: str, n: int) -> tuple[int, int]:
    with Log.open(target, create=True) as log:
        writer = log.writer(name="big", started_ns=T0)
        for lo in range(1, n + 1, 20_000):
            hi = min(n, lo + 19_999)
            writer.add_events(
                [
                    Event(v, "counter/added", {"type": "counter/added", "by": v}, v, None, T0 + v)
                    for v in range(lo, hi + 1)
                ]
            )
            writer.add_messages(
                [
                    Message(s, 1, "in", T0 + s, "counter/add", b'{"type":"counter/add","by":1}')
                    for s in range(lo, hi + 1)
                ]
            )
            writer.flush()
        writer.close()
        live = log.writer(name="live")
        live.close()
        return writer.recording_id, live.recording_id


def single_delete(log: Log, rid: int) -> int:
    deleted = 0
    with log.db.connect(write=True) as conn:
        for table in reversed(schema.metadata.sorted_tables):
            if "recording_id" in table.c:
                deleted += conn.execute(table.delete().where(table.c.recording_id == rid)).rowcount
        r = schema.recordings
        deleted += conn.execute(r.delete().where(r.c.id == rid)).rowcount
        conn.commit()
    return deleted


def run(target: str, big: int, live_id: int, mode: str) -> None:
    stop = threading.Event()
    worst = [0.0]
    flushes = [0]

    def write() -> None:
        with Log.open(target) as log:
            from devtools.log_writer import LogWriter

            writer = LogWriter(log, log.recording(live_id))
            v = 10_000_000 * (1 + (mode == "single"))
            while not stop.is_set():
                writer.add_events(
                    [Event(v + i, "x", {"type": "x"}, None, None, T0) for i in range(200)]
                )
                v += 200
                started = time.perf_counter()
                writer.flush()
                worst[0] = max(worst[0], time.perf_counter() - started)
                flushes[0] += 1
                time.sleep(0.01)
            writer.close(mark_end=False)

    thread = threading.Thread(target=write)
    thread.start()
    time.sleep(0.5)
    with Log.open(target) as log:
        started = time.perf_counter()
        rows = log.delete_recording(big) if mode == "batched" else single_delete(log, big)
        took = time.perf_counter() - started
    time.sleep(0.2)
    stop.set()
    thread.join()
    print(
        f"{mode:8s}: dropped {rows:,} rows in {took:.1f} s ({rows / took:,.0f} rows/s); "
        f"live writer: {flushes[0]} flushes, worst {worst[0] * 1000:.0f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-url", default=os.environ.get("RDT_TEST_POSTGRES", PG_DEFAULT))
    args = parser.parse_args()
    made: list[str] = []
    with tempfile.TemporaryDirectory(prefix="rdt-bench-drop-") as folder:
        try:
            for mode in ("batched", "single"):
                if args.store == "sqlite":
                    target = str(Path(folder) / f"{mode}.rdtlog")
                else:
                    made.append(f"rdt_bench_{os.getpid()}_drop_{mode}")
                    target = pg_database(args.pg_url, made[-1])
                started = time.perf_counter()
                big, live = fill(target, args.events)
                print(
                    f"{args.store}: wrote {args.events:,} events + {args.events:,} messages "
                    f"in {time.perf_counter() - started:.1f} s"
                )
                run(target, big, live, mode)
        finally:
            for name in made:
                pg_database(args.pg_url, name, drop=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
