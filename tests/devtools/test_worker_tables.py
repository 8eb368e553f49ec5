"""The tables of a recording of several workers: written, read, exported, imported, dropped,
and created on a log an older rdt wrote (SQLite and PostgreSQL)."""

from __future__ import annotations

import sqlalchemy as sa

from devtools.jsonl import export_lines, import_lines
from devtools.model import Worker, WorkerHash, WorkerSnapshot
from devtools.store import Log
from tests.factories import T0, counter_events, write_log

WORKERS = [
    Worker(1, "ws://10.0.0.1:9000/devtools", "w-a", "orders", "1.0", {"name": "orders"}),
    Worker(2, "ws://10.0.0.2:9000/devtools", "w-b", "orders", "1.1-buggy", None),
]


def write_workers(target) -> int:
    with Log.open(target, create=True) as log:
        writer = log.writer(name="cluster", started_ns=T0)
        writer.add_events(counter_events(3))
        for worker in WORKERS:
            writer.add_worker(Worker(worker.index, worker.url))  # before its hello …
            writer.add_worker(worker)  # … and after: the latest row wins
        writer.add_worker_hashes(
            [
                WorkerHash(w, v, f"h{v}" if w == 1 or v < 3 else f"x{v}")
                for v in (1, 2, 3)
                for w in (1, 2)
            ]
            + [WorkerHash(2, 2, "h2", {"type": "counter/added", "by": 99})]  # a repeat: ignored
        )
        writer.add_worker_snapshot(WorkerSnapshot(2, 3, {"count": -1}, "x3", T0))
        writer.fill_events([(2, "h2", None)])
        writer.close()
        return writer.recording_id


def test_workers_their_hashes_and_snapshots_are_stored_and_read_back(log_target):
    write_workers(log_target)
    with Log.open(log_target) as log:
        reader = log.reader()
        assert reader.workers() == WORKERS
        hashes = list(reader.worker_hashes())
        assert [(h.v, h.worker, h.hash) for h in hashes] == [
            (1, 1, "h1"),
            (1, 2, "h1"),
            (2, 1, "h2"),
            (2, 2, "h2"),
            (3, 1, "h3"),
            (3, 2, "x3"),
        ]
        assert list(reader.worker_hashes(3, 3))[1].hash == "x3"
        assert reader.worker_snapshots(2) == [WorkerSnapshot(2, 3, {"count": -1}, "x3", T0)]
        assert reader.event(2).hash == "h2" and reader.event(1).hash is None


def test_worker_hashes_page_by_v_and_worker(log_target):
    with Log.open(log_target, create=True) as log:
        writer = log.writer(name="many")
        writer.add_worker_hashes(
            [WorkerHash(w, v, f"{w}:{v}") for v in range(1, 40) for w in (1, 2, 3)]
        )
        writer.close()
        reader = log.reader()
        reader.page_size = 7  # pages that end inside one v's reports
        got = [(h.v, h.worker) for h in reader.worker_hashes()]
    assert got == [(v, w) for v in range(1, 40) for w in (1, 2, 3)]


def test_export_then_import_carries_the_workers(tmp_path):
    source, copy = tmp_path / "a.rdtlog", tmp_path / "b.rdtlog"
    write_workers(source)
    with Log.open(source) as log:
        lines = list(export_lines(log.reader()))
    kinds = [line.split(b'"kind":"')[1].split(b'"')[0].decode() for line in lines]
    assert {"worker", "worker_hash", "worker_snapshot"} <= set(kinds)
    with Log.open(copy, create=True) as log:
        import_lines(lines, log)
        again = list(export_lines(log.reader()))
    assert again == lines


def test_dropping_a_recording_removes_its_worker_rows(log_target):
    rid = write_workers(log_target)
    write_log(log_target, name="other")
    with Log.open(log_target) as log:
        log.delete_recording(rid)
        with log.engine.connect() as conn:
            for table in ("workers", "worker_hashes", "worker_snapshots"):
                assert conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar() == 0
        assert [s.recording.name for s in log.recordings()] == ["other"]


def test_a_log_written_before_the_worker_tables_opens_and_gains_them(log_target):
    """A log of an older rdt has no worker tables: it opens, reads as having no workers, and
    can be written to (the tables are created empty)."""
    write_log(log_target, name="old")
    engine = sa.create_engine(log_target if "://" in log_target else f"sqlite:///{log_target}")
    with engine.begin() as conn:
        for table in ("worker_snapshots", "worker_hashes", "workers"):
            conn.exec_driver_sql(f"DROP TABLE {table}")
    engine.dispose()
    with Log.open(log_target) as log:
        reader = log.reader()
        assert reader.workers() == [] and list(reader.worker_hashes()) == []
        assert len(list(reader.events())) == 10
    assert write_workers(log_target) == 2
