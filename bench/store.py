"""Store bench: the LogWriter against raw ``sqlite3`` executemany, same rows, same run.

Baseline: a raw ``sqlite3`` connection (WAL, synchronous=NORMAL) inserting the same message rows
into the same ``messages`` table (same indexes) with ``executemany`` in batches of 1,000, one
transaction per batch. Candidate: ``LogWriter.add_messages`` + ``flush`` every 1,000 messages.
Each side writes into its own fresh log; the best of ``--repeat`` runs counts.

    .venv/bin/python bench/store.py [--rows 200000] [--repeat 3] [--store sqlite|postgresql]

With ``--store postgresql`` each side writes into its own fresh database (``rdt_bench_<pid>_…``
on the server of ``--pg-url``, default ``$RDT_TEST_POSTGRES``, dropped afterwards) and the
baseline is the faster of two hand-written psycopg loops over the same rows in batches of
1,000, one transaction each: ``COPY messages (…) FROM STDIN`` (``write_row`` per row) and
``executemany`` (psycopg's pipeline mode); both are printed.

Prints rows/s of both and the ratio; exits 1 when the ratio is below the bar (0.8).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from devtools import schema
from devtools.jsonutil import dumps
from devtools.model import Message
from devtools.store import Log

BAR = 0.8
BATCH = 1000
T0 = 1_795_420_800_000_000_000


def make_messages(count: int) -> list[Message]:
    out = []
    for seq in range(1, count + 1):
        body = {"type": "order/add-line", "order": f"o{seq % 97}", "sku": f"sku-{seq}", "qty": 3}
        out.append(
            Message(
                seq=seq,
                connection=1 + seq % 4,
                direction="in" if seq % 2 else "out",
                t_ns=T0 + seq * 1000,
                type="order/add-line",
                payload=dumps(body),
            )
        )
    return out


def bench_raw(path: Path, messages: list[Message], recording_id: int) -> float:
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=NORMAL")
    names = ", ".join(f'"{c}"' for c in schema.MESSAGE_COLUMNS)
    sql = f"INSERT INTO messages ({names}) VALUES ({', '.join('?' * len(schema.MESSAGE_COLUMNS))})"
    start = time.perf_counter()
    for i in range(0, len(messages), BATCH):
        rows = [
            (
                recording_id,
                m.seq,
                m.connection,
                m.direction,
                m.t_ns,
                m.type,
                m.payload,
                m.binary,
                m.flag,
                m.size,
            )
            for m in messages[i : i + BATCH]
        ]
        raw.execute("BEGIN IMMEDIATE")
        raw.executemany(sql, rows)
        raw.execute("COMMIT")
    elapsed = time.perf_counter() - start
    raw.close()
    return len(messages) / elapsed


def _rows(messages: list[Message], recording_id: int) -> list[tuple]:
    return [
        (rid, m.seq, m.connection, m.direction, m.t_ns, m.type, m.payload, m.binary, m.flag, m.size)
        for rid, m in ((recording_id, m) for m in messages)
    ]


def bench_pg(url: str, messages: list[Message], recording_id: int, how: str) -> float:
    """The hand-written psycopg baseline: ``how`` = ``copy`` or ``executemany``."""
    import psycopg

    u = sa.engine.make_url(url)
    conn = psycopg.connect(
        dbname=u.database, host=u.host, port=u.port or 5432, user=u.username, password=u.password
    )
    names = ", ".join(f'"{c}"' for c in schema.MESSAGE_COLUMNS)
    insert = f"INSERT INTO messages ({names}) VALUES ({', '.join(['%s'] * 10)})"
    start = time.perf_counter()
    for i in range(0, len(messages), BATCH):
        rows = _rows(messages[i : i + BATCH], recording_id)
        with conn.transaction(), conn.cursor() as cur:
            if how == "copy":
                with cur.copy(f"COPY messages ({names}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                cur.executemany(insert, rows)
    elapsed = time.perf_counter() - start
    conn.close()
    return len(messages) / elapsed


def pg_database(url: str, name: str, *, drop: bool = False) -> str:
    base = sa.engine.make_url(url)
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        if not drop:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


def main_pg(args: argparse.Namespace, messages: list[Message]) -> int:
    best = {"copy": 0.0, "executemany": 0.0, "writer": 0.0}
    made: list[str] = []
    try:
        for run in range(args.repeat):
            for how in ("copy", "executemany", "writer"):  # interleaved: noise hits all alike
                made.append(f"rdt_bench_{os.getpid()}_{how}{run}")
                url = pg_database(args.pg_url, made[-1])
                with Log.open(url, create=True) as log:
                    if how == "writer":
                        rate = bench_writer(log, messages)
                    else:
                        rid = log.writer(name="raw").recording_id
                        rate = bench_pg(url, messages, rid, how)
                best[how] = max(best[how], rate)
                pg_database(args.pg_url, made.pop(), drop=True)
    finally:
        for name in made:
            pg_database(args.pg_url, name, drop=True)
    raw = max(best["copy"], best["executemany"])
    ratio = best["writer"] / raw
    print(f"rows: {args.rows}, batch {BATCH}, best of {args.repeat}, PostgreSQL")
    print(f"psycopg COPY:        {best['copy']:,.0f} rows/s")
    print(f"psycopg executemany: {best['executemany']:,.0f} rows/s")
    print(f"LogWriter:           {best['writer']:,.0f} rows/s")
    print(f"ratio to the faster: {ratio:.2f}x (bar {BAR}x) -> {'PASS' if ratio >= BAR else 'FAIL'}")
    return 0 if ratio >= BAR else 1


def bench_writer(log: Log, messages: list[Message]) -> float:
    writer = log.writer(name="bench")
    start = time.perf_counter()
    for i in range(0, len(messages), BATCH):
        writer.add_messages(messages[i : i + BATCH])
        writer.flush()
    elapsed = time.perf_counter() - start
    writer.close()
    return len(messages) / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "RDT_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    messages = make_messages(args.rows)
    if args.store == "postgresql":
        return main_pg(args, messages)
    raw_best = writer_best = 0.0
    with tempfile.TemporaryDirectory() as folder:
        for run in range(args.repeat):
            # Interleave the two so machine noise hits both alike.
            raw_path = Path(folder) / f"raw{run}.rdtlog"
            with Log.open(raw_path, create=True) as log:
                rid = log.writer(name="raw").recording_id
            raw_best = max(raw_best, bench_raw(raw_path, messages, rid))
            with Log.open(Path(folder) / f"writer{run}.rdtlog", create=True) as log:
                writer_best = max(writer_best, bench_writer(log, messages))
    ratio = writer_best / raw_best
    print(f"rows: {args.rows}, batch {BATCH}, best of {args.repeat}")
    print(f"raw sqlite3 executemany: {raw_best:,.0f} rows/s")
    print(f"LogWriter:               {writer_best:,.0f} rows/s")
    print(f"ratio: {ratio:.2f}x (bar {BAR}x) -> {'PASS' if ratio >= BAR else 'FAIL'}")
    return 0 if ratio >= BAR else 1


if __name__ == "__main__":
    sys.exit(main())
