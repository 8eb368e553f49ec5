"""One store, several users: recorders writing at once, recordings dropped while others live.

Writers run as real processes (``python -c`` over the store's ``LogWriter``, as ``rdt record``'s
writer thread uses it), on SQLite and PostgreSQL; on PostgreSQL the test watches
``pg_stat_activity`` for any backend of theirs waiting on a lock.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from devtools import schema
from devtools.cli import app
from devtools.store import Log
from tests import factories as f

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]

WRITER = r"""
import json, sys, time
from devtools.model import Event, Message
from devtools.store import Log
target, name, count, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
T0 = 1_795_420_800_000_000_000
with Log.open(target, create=True) as log:
    writer = log.writer(name=name, started_ns=T0)
    print(json.dumps({"id": writer.recording_id}), flush=True)
    sys.stdin.readline()  # go
    worst = 0.0
    for lo in range(1, count + 1, batch):
        hi = min(count, lo + batch - 1)
        writer.add_messages([
            Message(seq=s, connection=1, direction="in", t_ns=T0 + s, type="counter/add",
                    payload=b'{"type":"counter/add","by":1}')
            for s in range(lo, hi + 1)
        ])
        writer.add_events([
            Event(v=v, type="counter/added", event={"type": "counter/added", "by": 1},
                  cause_seq=v, t_ns=T0 + v)
            for v in range(lo, hi + 1)
        ])
        started = time.perf_counter()
        writer.flush()
        worst = max(worst, time.perf_counter() - started)
    writer.close()
    print(json.dumps({"worst_flush": worst}), flush=True)
"""


def _tagged(target: str, tag: str) -> str:
    """``target`` with an ``application_name`` (PostgreSQL) to find its backends by."""
    if "://" not in target:
        return target
    return f"{target}{'&' if '?' in target else '?'}application_name={tag}"


def _start_writer(target: str, name: str, count: int, batch: int = 500) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, target, name, str(count), str(batch)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    json.loads(proc.stdout.readline())
    return proc


def _finish(proc: subprocess.Popen) -> dict:
    out, _ = proc.communicate(timeout=150)
    assert proc.returncode == 0
    return json.loads(out.strip().splitlines()[-1])


class LockWatch:
    """Samples ``pg_stat_activity`` for backends named ``tag…`` waiting on a lock.

    ``waits``: waits on another session's rows, transactions or tables (what would make one
    recorder wait for another's transaction). ``extends``: waits for the relation extension
    lock, the one thing two writers into one table share: held while the table's file grows
    by a few pages (microseconds), counted apart and reported, not a wait on the other's work.
    """

    def __init__(self, target: str, tag: str) -> None:
        self.engine = sa.create_engine(target) if "://" in target else None
        self.tag = tag
        self.waits: list[tuple] = []
        self.extends = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        assert self.engine is not None
        with self.engine.connect() as conn:
            while not self._stop.is_set():
                rows = conn.exec_driver_sql(
                    "SELECT application_name, wait_event, left(query, 80) FROM pg_stat_activity "
                    "WHERE application_name LIKE %s AND wait_event_type = 'Lock'",
                    (self.tag + "%",),
                ).all()
                conn.rollback()
                self.extends += sum(1 for r in rows if r[1] == "extend")
                self.waits.extend(tuple(r) for r in rows if r[1] != "extend")
                self.samples += 1
                time.sleep(0.005)

    def __enter__(self) -> LockWatch:
        if self.engine is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self.engine is not None:
            self._thread.join()
            self.engine.dispose()


def test_two_recorders_write_one_store_at_once(log_target):
    """Two writer processes, each its own recording, at once; no lock waits; ls shows both."""
    tag = f"rdt_t_{uuid.uuid4().hex[:8]}_"
    f.write_log(log_target, name="before", events=3)  # the tables exist before both start
    count = 20_000
    procs = [_start_writer(_tagged(log_target, tag + n), n, count) for n in ("gw-a", "gw-b")]
    with LockWatch(log_target, tag) as watch:
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = [_finish(proc) for proc in procs]
    assert "://" not in log_target or watch.samples > 10
    assert watch.waits == []
    print(f"lock samples {watch.samples}, extension-lock waits seen {watch.extends}")
    with Log.open(log_target) as log:
        summaries = {s.recording.name: s for s in log.recordings()}
        for name in ("gw-a", "gw-b"):
            assert summaries[name].events == count and summaries[name].messages == count
            assert [v for v, _ in log.reader(name).event_payloads()] == list(range(1, count + 1))
    listed = CliRunner().invoke(app, ["ls", log_target, "--json"])
    assert listed.exit_code == 0, listed.output
    names = [r["name"] for r in json.loads(listed.stdout)]
    assert names == ["before", "gw-a", "gw-b"]
    assert all(r["worst_flush"] < 5 for r in results)


def _rows_of(log: Log, rid: int) -> dict[str, int]:
    counts = {}
    with log.engine.connect() as conn:
        for table in schema.metadata.sorted_tables:
            if "recording_id" in table.c:
                counts[table.name] = conn.execute(
                    sa.select(sa.func.count()).where(table.c.recording_id == rid)
                ).scalar_one()
    return counts


def test_drop_removes_every_row_of_one_recording_in_batches(log_target):
    keep = f.write_log(log_target, name="keep", events=40, marks=(2,), gaps=((3, 4),))
    gone = f.write_log(
        log_target, name="gone", events=1_234, messages=777, marks=(5,), gaps=((7, 8),)
    )
    with Log.open(log_target) as log:
        log.reader(gone.id).checkpoint_store().save("k", [(v, b"{}", "h") for v in range(1, 30)])
        before_keep = _rows_of(log, keep.id)
        deleted = log.db.delete_recording(gone.id, batch=100)  # many batches per table
        assert deleted == 777 + 1_234 + 1 + 2 + 1 + 1 + 29 + 1  # + snapshot, conns, mark, gap, rec
        assert set(_rows_of(log, gone.id).values()) == {0}
        assert _rows_of(log, keep.id) == before_keep
        assert [s.recording.name for s in log.recordings()] == ["keep"]
        assert len(list(log.reader("keep").events())) == 40


def test_rdt_drop_by_recording_and_by_age(log_target):
    runner = CliRunner()
    f.write_log(log_target, name="old", events=5)  # ended at T0 + 2 s: long ago
    with Log.open(log_target) as log:  # a recording being written now, never ended
        live = log.writer(name="live")
        live.add_events(f.counter_events(3))
        live.flush()
        keep = log.writer(name="keep", started_ns=time.time_ns())
        keep.close()
    dropped = runner.invoke(app, ["drop", log_target, "--older-than", "1h", "--json"])
    assert dropped.exit_code == 0, dropped.output
    assert [r["name"] for r in json.loads(dropped.stdout)] == ["old"]
    dropped = runner.invoke(app, ["drop", log_target, "--recording", "keep"])
    assert dropped.exit_code == 0 and "dropped recording" in dropped.stdout
    with Log.open(log_target) as log:
        assert [s.recording.name for s in log.recordings()] == ["live"]
        assert log.reader("live").last_v() == 3
    live.close()
    for args, text in (
        (["--older-than", "soon"], "give a duration"),
        ([], "give --recording REF or --older-than"),
        (["--recording", "nope"], "no recording 'nope'"),
    ):
        bad = runner.invoke(app, ["drop", log_target, *args])
        assert bad.exit_code == 3 and text in bad.stderr, bad.output
        assert "Traceback" not in bad.output


def test_drop_while_another_recording_is_written_and_read(log_target):
    """The drop goes in short batches: the writer keeps flushing, the reader keeps paging,
    and on PostgreSQL neither ever waits on a lock."""
    big = 60_000
    with Log.open(log_target, create=True) as log:
        writer = log.writer(name="doomed")
        events = f.counter_events(big)
        for i in range(0, big, 10_000):
            writer.add_events(events[i : i + 10_000])
            writer.add_messages([f.message(s) for s in range(i + 1, i + 10_001)])
            writer.flush()
        writer.close()
        doomed = writer.recording_id
        reader_rec = f.write_log(log_target, name="read", events=5_000, messages=0)
    tag = f"rdt_t_{uuid.uuid4().hex[:8]}_"
    proc = _start_writer(_tagged(log_target, tag + "w"), "written", 30_000, batch=200)
    stop = threading.Event()
    reads: list[int] = []

    def read() -> None:
        with Log.open(_tagged(log_target, tag + "r")) as log:
            reader = log.reader(reader_rec.id)
            while not stop.is_set():
                reads.append(sum(len(p) for p in reader.event_payload_pages()))

    thread = threading.Thread(target=read)
    with LockWatch(log_target, tag) as watch:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
        thread.start()
        with Log.open(_tagged(log_target, tag + "d")) as log:
            started = time.perf_counter()
            deleted = log.delete_recording(doomed)
            took = time.perf_counter() - started
        stop.set()
        thread.join()
        result = _finish(proc)
    assert deleted == 2 * big + 1
    assert reads and set(reads) == {5_000}  # every read whole, during the drop
    assert watch.waits == []
    # SQLite: one write lock for all; each batch holds it for milliseconds, not the whole drop
    assert result["worst_flush"] < max(1.0, took / 4), (result, took)
    with Log.open(log_target) as log:
        names = [s.recording.name for s in log.recordings()]
        assert names == ["read", "written"]
        assert log.reader("written").last_v() == 30_000
