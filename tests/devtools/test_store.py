"""The log store on SQLite and PostgreSQL: round trips, streaming, counts, errors, concurrency."""

from __future__ import annotations

import sqlite3
import threading

import pytest
import sqlalchemy as sa

from devtools import schema
from devtools.errors import LogError, LogTooNew, NotALog, UnknownRecording
from devtools.model import Recording
from devtools.store import PAYLOAD_PAGE, Log, LogReader
from tests import factories as f

pytestmark = pytest.mark.timeout(60)


def test_round_trip_of_every_record_kind(log_target):
    rec = f.write_log(
        log_target, messages=12, events=5, snapshots=(0, 5), marks=(3,), gaps=((7, 8),)
    )
    with Log.open(log_target) as log:
        reader = log.reader()
        assert reader.recording == rec
        assert reader.recording.server == {"name": "counter", "version": "1.0"}
        assert reader.recording.ended_ns == f.T0 + 2 * 10**9
        conns = reader.connections()
        assert [c.id for c in conns] == [1, 2]
        assert conns[0].closed_ns == f.T0 + 10**9 and conns[0].close_code == 1000
        assert conns[0].close_reason == "bye" and conns[1].closed_ns is None
        msgs = list(reader.messages())
        assert msgs == [
            f.message(s, connection=1 + s % 2, direction="in" if s % 2 else "out")
            for s in range(1, 13)
        ]
        assert list(reader.events()) == f.counter_events(5)
        assert [s.state for s in reader.snapshots()] == [{"count": 0}, {"count": 15}]
        assert reader.marks() == [f.mark(3)]
        assert reader.gaps() == [f.gap(7, 8)]


def test_awkward_payloads_survive_byte_for_byte(log_target):
    big = 2**70 + 1
    odd = [
        f.message(1, payload=b'{"type":"a","x":"\x00nul"}', type="a"),
        f.message(2, payload=bytes(range(256)), binary=True),
        f.message(3, payload=b"\xff\xfe not utf-8", flag="invalid-utf8"),
        f.message(4, payload=b"", flag="not-json"),
        f.message(5, payload='{"type":"ü","n":1e400}'.encode(), flag="nan", size=99),
    ]
    events = [f.event(1, "big", n=big, neg=-big, text="nul\x00 \u202e ü")]
    f.write_log(
        log_target, messages=0, events=0, snapshots=(), extra_messages=odd, extra_events=events
    )
    with Log.open(log_target) as log:
        reader = log.reader()
        assert list(reader.messages()) == odd
        assert reader.message(2).payload == bytes(range(256))
        assert reader.message(5).frame_size == 99
        assert reader.event(1).event["n"] == big
        assert reader.event(1).event["neg"] == -big
        assert reader.event(1).event["text"] == "nul\x00 \u202e ü"
        ((v, raw),) = list(reader.event_payloads())
        assert v == 1 and str(big).encode() in raw


def test_streaming_pages_keep_order_and_bounds(log_target):
    f.write_log(log_target, messages=53, events=41)
    with Log.open(log_target) as log:
        rec = log.recording()
        reader = LogReader(log, rec, page_size=7)
        assert [m.seq for m in reader.messages()] == list(range(1, 54))
        assert [m.seq for m in reader.messages(10, 24)] == list(range(10, 25))
        assert [m.seq for m in reader.messages(50)] == [50, 51, 52, 53]
        assert [m.seq for m in reader.messages(direction="in")] == list(range(1, 54, 2))
        assert [m.seq for m in reader.messages(connection=1)] == list(range(2, 54, 2))
        assert [e.v for e in reader.events(from_v=35)] == list(range(35, 42))
        assert [v for v, _ in reader.event_payloads()] == list(range(1, 42))
        assert [v for v, _ in reader.event_payloads(3, 9)] == list(range(3, 10))
        assert reader.message(999) is None and reader.event(999) is None


def test_event_payload_pages_are_whole_pages_in_order_with_no_empty_tail(log_target):
    f.write_log(log_target, messages=0, events=2 * PAYLOAD_PAGE, snapshots=())
    with Log.open(log_target) as log:
        reader = log.reader()
        pages = list(reader.event_payload_pages())
        assert [len(page) for page in pages] == [PAYLOAD_PAGE, PAYLOAD_PAGE]
        assert [row for page in pages for row in page] == list(reader.event_payloads())
        middle = [v for page in reader.event_payload_pages(990, 1_005) for v, _ in page]
        assert middle == list(range(990, 1_006))
        assert list(reader.event_payload_pages(3_000, 4_000)) == []


def test_type_prefix_narrows_events_and_messages_with_like_wildcards_escaped(log_target):
    types = ["order/_x%1", "order/ax%2", "order/_x%3", "cart/_x%4"]
    f.write_log(
        log_target,
        messages=0,
        events=0,
        extra_events=[f.event(v, kind) for v, kind in enumerate(types, start=1)],
        extra_messages=[f.message(seq, {"type": kind}) for seq, kind in enumerate(types, start=1)],
    )
    with Log.open(log_target) as log:
        reader = log.reader()
        assert [e.v for e in reader.events(type_prefix="order/_x%")] == [1, 3]
        assert [m.seq for m in reader.messages(type_prefix="order/_x%")] == [1, 3]
        assert [e.v for e in reader.events(2, 4, type_prefix="order/")] == [2, 3]
        assert len(list(reader.events(type_prefix=""))) == 4


def test_event_hashes_are_the_recorded_ones_in_range_paged(log_target):
    f.write_log(log_target, messages=0, events=5)  # another recording's events stay out
    with Log.open(log_target, create=True) as log:
        writer = log.writer(name="hashed")
        writer.add_events(
            [f.event(v, "tick", hash=f"sha256:{v:04d}" if v % 3 else None) for v in range(1, 30)]
        )
        writer.close()
    with Log.open(log_target) as log:
        reader = LogReader(log, log.recording("hashed"), page_size=4)
        every = [(v, f"sha256:{v:04d}") for v in range(1, 30) if v % 3]
        assert list(reader.event_hashes()) == every
        assert list(reader.event_hashes(5, 13)) == [(v, h) for v, h in every if 5 <= v <= 13]
        assert list(reader.event_hashes(6, 6)) == [] and list(reader.event_hashes(40)) == []
        assert list(LogReader(log, log.recording("hashed")).event_hashes(to_v=4)) == every[:3]


def test_counts_and_edges(log_target):
    f.write_log(log_target, messages=30, events=12, snapshots=(0, 6), gaps=((31, 40),))
    with Log.open(log_target) as log:
        reader = log.reader()
        summary = reader.counts()
        assert (summary.connections, summary.messages, summary.events) == (2, 30, 12)
        assert (summary.snapshots, summary.gaps) == (2, 1)
        assert summary.first_ns == f.T0 + 1000
        assert summary.last_ns == f.T0 + 30 * 1000
        assert (reader.first_v(), reader.last_v(), reader.last_seq()) == (1, 12, 30)
        assert reader.snapshot_at_or_before(5).v == 0
        assert reader.snapshot_at_or_before(6).state == {"count": 21}
        assert [s.recording.name for s in log.recordings()] == ["test"]


def test_empty_recording_has_no_edges(log_target):
    with Log.open(log_target, create=True) as log:
        writer = log.writer(name="empty")
        writer.close()
        reader = log.reader()
        assert (reader.first_v(), reader.last_v(), reader.last_seq()) == (None, None, None)
        assert reader.snapshot_at_or_before(10) is None
        assert list(reader.messages()) == [] and list(reader.event_payloads()) == []
        assert reader.counts().first_ns is None


def test_recordings_are_found_by_id_name_or_latest(log_target):
    first = f.write_log(log_target, name="orders")
    second = f.write_log(log_target, name="lists")
    with Log.open(log_target) as log:
        assert log.recording() == second
        assert log.recording(first.id) == first
        assert log.recording(str(first.id)) == first
        assert log.recording("orders") == first
        assert log.reader("lists").recording == second
        with pytest.raises(UnknownRecording) as caught:
            log.recording("nope")
        assert str(caught.value).startswith("no recording 'nope' in ")
        assert "see rdt ls" in str(caught.value)
        with pytest.raises(UnknownRecording):
            log.recording(999)


def test_readers_see_only_their_recording(log_target):
    a = f.write_log(log_target, name="a", messages=5, events=3)
    f.write_log(log_target, name="b", messages=9, events=7)
    with Log.open(log_target) as log:
        reader = log.reader(a.id)
        assert reader.last_seq() == 5 and reader.last_v() == 3
        assert len(list(reader.messages())) == 5
        assert [s.messages for s in log.recordings()] == [5, 9]


def test_duplicate_events_and_snapshots_are_ignored(log_target):
    with Log.open(log_target, create=True) as log:
        writer = log.writer(name="dup")
        writer.add_events(f.counter_events(3))
        writer.flush()
        writer.add_events(f.counter_events(5))  # a re-subscribe sends 1..3 again
        writer.add_snapshot(f.snapshot(0))
        writer.add_snapshot(f.snapshot(0, {"count": 99}))
        writer.close()
        reader = log.reader()
        assert [e.v for e in reader.events()] == [1, 2, 3, 4, 5]
        assert [s.state for s in reader.snapshots()] == [{"count": 0}]


def test_a_failed_flush_is_loud_and_the_writer_goes_on(log_target):
    with Log.open(log_target, create=True) as log:
        writer = log.writer(name="x")
        writer.add_messages([f.message(1)])
        writer.flush()
        writer.add_messages([f.message(1)])  # the same seq again: the batch cannot be written
        with pytest.raises(LogError, match="cannot write to"):
            writer.flush()
        assert writer.pending == 0
        writer.add_messages([f.message(2)])
        writer.close()
        assert [m.seq for m in log.reader().messages()] == [1, 2]


@pytest.mark.parametrize("count", [1, 49, 50, 123])
def test_messages_go_in_groups_and_come_back_each_as_written(log_target, count):
    """SQLite writes messages 50 to an INSERT, the rest one by one; a repeated seq inside a
    group still fails the whole batch, loudly."""
    written = [
        f.message(s, {"type": "t", "n": s}, connection=1 + s % 3) for s in range(1, count + 1)
    ]
    with Log.open(log_target, create=True) as log:
        writer = log.writer(name="groups")
        writer.add_messages(written)
        writer.flush()
        writer.add_messages([f.message(count + s) for s in range(1, 60)] + [f.message(count + 5)])
        with pytest.raises(LogError, match="cannot write to"):
            writer.flush()
        writer.close()
        assert list(log.reader().messages()) == written


def test_checkpoint_cache(log_target):
    f.write_log(log_target)
    with Log.open(log_target) as log:
        reader = log.reader()
        store = reader.checkpoint_store()
        assert store.hashes("k") == []
        store.save("k", [(20, b'{"count":2}', "sha256:b"), (10, b"{}", "sha256:a")])
        store.save("k", [(10, b'{"other":1}', "sha256:z")])  # kept as it was
        store.save("other", [])
        assert store.hashes("k") == [(10, "sha256:a"), (20, "sha256:b")]
        assert store.state("k", 20) == b'{"count":2}'
        assert store.state("k", 10) == b"{}"
        assert store.state("k", 30) is None
        assert store.hashes("other") == []


def test_checkpoint_store_is_its_own_class_and_per_recording(log_target):
    from devtools.checkpoint_store import CheckpointStore

    f.write_log(log_target, name="one")
    f.write_log(log_target, name="two")
    with Log.open(log_target) as log:
        one = log.reader("one").checkpoint_store()
        two = log.reader("two").checkpoint_store()
        assert isinstance(one, CheckpointStore) and one.db is log.db
        one.save("k", [(5, b'{"count":15}', "sha256:five")])
        assert one.hashes("k") == [(5, "sha256:five")] and two.hashes("k") == []
        assert one.state("k", 5) == b'{"count":15}' and two.state("k", 5) is None
        log.delete_recording(log.recording("one").id)
        assert CheckpointStore(log.db, one.recording_id).hashes("k") == []


def test_writer_on_a_dedicated_thread_while_a_reader_reads(log_target):
    """The recorder's shape: a writer thread flushing batches, readers reading meanwhile."""
    with Log.open(log_target, create=True) as log:
        writer = log.writer(name="live")
        errors: list[BaseException] = []

        def write() -> None:
            try:
                for batch in range(20):
                    seqs = range(batch * 100 + 1, batch * 100 + 101)
                    writer.add_messages([f.message(s) for s in seqs])
                    writer.add_events(f.counter_events(10, start=batch * 10 + 1))
                    writer.flush()
                writer.close()
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)

        thread = threading.Thread(target=write)
        thread.start()
        seen: list[int] = []
        while thread.is_alive() or not seen:
            seqs = [m.seq for m in LogReader(log, log.recording(), page_size=50).messages()]
            assert seqs == list(range(1, len(seqs) + 1))  # always a whole prefix
            seen.append(len(seqs))
        thread.join()
        assert not errors
        assert log.reader().counts().messages == 2000
        assert log.reader().last_v() == 200


def test_a_paused_reader_does_not_pin_the_wal(sqlite_log):
    """A reader halfway through a long iteration must let the writer write and checkpoint."""
    f.write_log(sqlite_log, messages=300, events=0)
    with Log.open(sqlite_log) as log:
        reader = LogReader(log, log.recording(), page_size=50)
        iterator = reader.messages()
        first = [next(iterator) for _ in range(120)]  # paused in the middle of page 3
        assert first[-1].seq == 120
        writer = log.writer(name="more")
        writer.add_messages([f.message(s) for s in range(1, 501)])
        done = threading.Event()
        thread = threading.Thread(target=lambda: (writer.close(), done.set()))
        thread.start()
        thread.join(timeout=20)
        assert done.is_set(), "the writer was blocked by a paused reader"
        with sqlite3.connect(sqlite_log) as raw:
            busy, _log_frames, _checkpointed = raw.execute(
                "PRAGMA wal_checkpoint(TRUNCATE)"
            ).fetchone()
        assert busy == 0, "a paused reader kept the WAL from being checkpointed"
        assert [m.seq for m in iterator] == list(range(121, 301))


def test_sqlite_log_is_in_wal_mode(sqlite_log):
    f.write_log(sqlite_log)
    with sqlite3.connect(sqlite_log) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# ---- opening errors


def test_missing_file_without_create(tmp_path):
    with pytest.raises(LogError, match="^no such log: .*nope.rdtlog$"):
        Log.open(tmp_path / "nope.rdtlog")
    assert not (tmp_path / "nope.rdtlog").exists()


def test_missing_directory_with_create(tmp_path):
    with pytest.raises(LogError, match="no such directory"):
        Log.open(tmp_path / "no" / "such.rdtlog", create=True)


def test_directory_is_not_a_log(tmp_path):
    with pytest.raises(LogError, match="is a directory"):
        Log.open(tmp_path)


@pytest.mark.parametrize("content", [b"hello, not a database\n", b"{}", b"\x00" * 200])
def test_file_that_is_not_sqlite(tmp_path, content):
    path = tmp_path / "x.txt"
    path.write_bytes(content)
    with pytest.raises(NotALog, match=r"x\.txt is not an rdt log"):
        Log.open(path, create=True)
    assert path.read_bytes() == content


def test_empty_file_is_not_a_log_but_can_become_one(tmp_path):
    path = tmp_path / "empty.rdtlog"
    path.touch()
    with pytest.raises(NotALog):
        Log.open(path)
    Log.open(path, create=True).close()
    Log.open(path).close()


def test_other_sqlite_database_is_not_a_log_and_is_left_alone(tmp_path):
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE messages (x)")
    with pytest.raises(NotALog, match="app.db is not an rdt log"):
        Log.open(path, create=True)
    with sqlite3.connect(path) as raw:
        tables = [r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    assert tables == ["messages"]


def _set_meta(target: str, key: str, value: str) -> None:
    engine = sa.create_engine(target if "://" in target else f"sqlite:///{target}")
    with engine.begin() as conn:
        conn.execute(schema.meta.update().where(schema.meta.c.key == key).values(value=value))
    engine.dispose()


def test_newer_format_is_refused(log_target):
    f.write_log(log_target)
    _set_meta(log_target, "format", str(schema.FORMAT_VERSION + 1))
    with pytest.raises(LogTooNew) as caught:
        Log.open(log_target)
    assert str(caught.value).endswith(
        f"was written by a newer rdt (format {schema.FORMAT_VERSION + 1}); please update"
    )


def test_foreign_app_marker_is_not_a_log(log_target):
    f.write_log(log_target)
    _set_meta(log_target, "app", "something-else")
    with pytest.raises(NotALog):
        Log.open(log_target)


def test_empty_database_without_create_is_not_a_log(log_target):
    with pytest.raises((NotALog, LogError)):
        Log.open(log_target)


def test_unreachable_database_is_a_log_error():
    with pytest.raises(LogError, match="cannot open"):
        Log.open("postgresql+psycopg://nobody:secret@127.0.0.1:1/none?connect_timeout=2")


def test_unreachable_database_hides_the_password():
    with pytest.raises(LogError) as caught:
        Log.open("postgresql+psycopg://nobody:secret@127.0.0.1:1/none?connect_timeout=2")
    assert "secret" not in str(caught.value)


def test_unknown_driver_is_a_log_error():
    with pytest.raises(LogError, match="cannot open"):
        Log.open("nosuchdb://x/y")


def test_import_writer_copies_the_recording(log_target):
    source = Recording(
        id=77,
        name="copied",
        started_ns=5,
        ended_ns=9,
        upstream="ws://u",
        server={"name": "s", "big": 2**65},
    )
    with Log.open(log_target, create=True) as log:
        writer = log.import_writer(source)
        writer.close(ended_ns=9)
        rec = log.recording("copied")
        assert rec.id != 77 or rec.id == writer.recording_id
        assert (rec.started_ns, rec.ended_ns, rec.upstream) == (5, 9, "ws://u")
        assert rec.server == {"name": "s", "big": 2**65}
