"""The queueing writer: batches into the real store; failures and overflow become gaps."""

from __future__ import annotations

import threading

from devtools.model import Connection, Gap, Message
from devtools.store import Log
from recorder.writer import QueueingWriter


def message(seq: int) -> Message:
    return Message(seq, 1, "in", seq, "t", b'{"type":"t"}')


def test_everything_put_is_in_the_log_after_close(sqlite_log):
    log = Log.open(sqlite_log, create=True)
    writer = QueueingWriter(lambda: log.writer(name="w"), interval=0.01)
    writer.start()
    writer.put(Connection(1, "peer", "/"))
    for seq in range(1, 5001):
        writer.put(message(seq))
    writer.close()
    reader = log.reader()
    assert [m.seq for m in reader.messages()] == list(range(1, 5001))
    assert writer.lost == 0 and writer.written == 5001
    log.close()


class FlakySink:
    """A store that fails while ``broken`` is set (a disk that fills up, a database restart)."""

    def __init__(self) -> None:
        self.broken = threading.Event()
        self.rows: list = []
        self.buffer: list = []

    def __getattr__(self, name):
        if name in ("add_messages", "add_events"):
            return self.buffer.extend
        if name.startswith("add_") or name in ("close_connection", "set_server"):
            return lambda *args, **kw: self.buffer.append(args[0] if args else None)
        raise AttributeError(name)

    def flush(self) -> None:
        batch, self.buffer = self.buffer, []
        if self.broken.is_set():
            raise OSError("disk full")
        self.rows += batch

    def close(self, *, ended_ns=None) -> None:
        self.flush()


def test_a_failing_store_is_counted_reported_and_recorded_as_a_gap_once_it_works():
    sink = FlakySink()
    warnings: list[str] = []
    writer = QueueingWriter(lambda: sink, interval=0.01, warn=warnings.append)
    writer.start()
    writer.put(message(1))
    assert writer.flush()
    sink.broken.set()
    for seq in range(2, 6):
        writer.put(message(seq))
    assert writer.flush()
    assert writer.failing and writer.lost == 4
    sink.broken.clear()
    writer.put(message(6))
    writer.close()
    seqs = [r.seq for r in sink.rows if isinstance(r, Message)]
    gaps = [r for r in sink.rows if isinstance(r, Gap)]
    assert seqs == [1, 6]
    assert [(g.kind, g.start, g.end) for g in gaps] == [("messages", 2, 5)]
    assert "store unavailable" in gaps[0].reason
    assert any("disk full" in w for w in warnings) and any("works again" in w for w in warnings)


def test_overflow_drops_messages_into_a_gap_and_never_blocks():
    sink = FlakySink()
    writer = QueueingWriter(lambda: sink, interval=10, limit=3, warn=lambda line: None)
    writer.start()
    for seq in range(1, 11):
        writer.put(message(seq))  # the thread sleeps 10 s: the queue fills up
    writer.close()
    seqs = [r.seq for r in sink.rows if isinstance(r, Message)]
    gaps = [(g.start, g.end, g.reason) for g in sink.rows if isinstance(g, Gap)]
    assert seqs == [1, 2, 3]
    assert gaps == [(4, 10, "recorder queue full: 7 messages not recorded")]
    assert writer.lost == 7


def raw(seq: int, payload: bytes, binary: bool = False) -> tuple:
    """A forwarded message as the proxy hands it over: numbered and stamped, not parsed."""
    return (seq, 1, "in" if seq % 2 else "out", 1_000 + seq, payload, binary)


def test_raw_messages_are_parsed_on_the_writer_thread_in_order_with_model_values(sqlite_log):
    log = Log.open(sqlite_log, create=True)
    writer = QueueingWriter(lambda: log.writer(name="w"), interval=0.01)
    writer.start()
    writer.put(Connection(1, "peer", "/"))
    writer.put_message(raw(1, b'{"type":"a","n":1}'))
    writer.put(message(2))  # a value built on the loop (a live subscriber) mixes in freely
    writer.put_message(raw(3, b"not json"))
    writer.put_message(raw(4, b"\x00\x01", binary=True))
    writer.put_message(raw(5, b'{"type":"big","n":123456789012345678901234567890}'))
    writer.close()
    got = [(m.seq, m.direction, m.t_ns, m.type, m.flag, m.payload) for m in log.reader().messages()]
    assert got == [
        (1, "in", 1001, "a", None, b'{"type":"a","n":1}'),
        (2, "in", 2, "t", None, b'{"type":"t"}'),
        (3, "in", 1003, None, "not-json", b"not json"),
        (4, "out", 1004, None, "binary", b"\x00\x01"),
        (5, "in", 1005, "big", None, b'{"type":"big","n":123456789012345678901234567890}'),
    ]
    assert writer.lost == 0
    log.close()


def test_raw_messages_are_redacted_and_size_limited_by_the_row_builder(sqlite_log):
    from recorder.records import row_builder
    from recorder.redact import parse_pointers

    log = Log.open(sqlite_log, create=True)
    build = row_builder(parse_pointers(("/password",)), 64)
    writer = QueueingWriter(lambda: log.writer(name="w"), interval=0.01, build_row=build)
    writer.start()
    writer.put(Connection(1, "peer", "/"))
    writer.put_message(raw(1, b'{"type":"login","password":"hunter2"}'))
    writer.put_message(raw(2, b'{"type":"x","pad":"' + b"y" * 80 + b'"}'))
    writer.close()
    first, second = log.reader().messages()
    assert b"hunter2" not in first.payload and first.type == "login"
    assert (second.flag, second.payload, second.size) == ("too-large", b"", 101)
    log.close()


def test_a_row_that_cannot_be_built_becomes_a_gap_and_the_rest_is_written(sqlite_log):
    from recorder.records import row_builder

    normal = row_builder()

    def build(item: tuple) -> tuple:
        if item[0] == 2:
            raise ValueError("odd frame")
        return normal(item)

    log = Log.open(sqlite_log, create=True)
    writer = QueueingWriter(lambda: log.writer(name="w"), interval=0.01, build_row=build)
    writer.start()
    writer.put(Connection(1, "peer", "/"))
    for seq in (1, 2, 3):
        writer.put_message(raw(seq, b'{"type":"a"}'))
    writer.close()
    reader = log.reader()
    assert [m.seq for m in reader.messages()] == [1, 3]
    assert [(g.kind, g.start, g.end) for g in reader.gaps()] == [("messages", 2, 2)]
    assert "odd frame" in reader.gaps()[0].reason
    assert writer.lost == 1
    log.close()


def test_raw_message_overflow_is_a_gap_too():
    sink = FlakySink()
    writer = QueueingWriter(lambda: sink, interval=10, limit=3, warn=lambda line: None)
    writer.start()
    for seq in range(1, 11):
        writer.put_message(raw(seq, b'{"type":"a"}'))
    writer.close()
    seqs = [r.seq for r in sink.rows if isinstance(r, Message)]
    gaps = [(g.start, g.end, g.reason) for g in sink.rows if isinstance(g, Gap)]
    assert seqs == [1, 2, 3]
    assert gaps == [(4, 10, "recorder queue full: 7 messages not recorded")]
    assert writer.lost == 7


def test_a_failed_flush_into_the_real_store_keeps_the_recording_and_what_was_written(sqlite_log):
    """Regression: after a failed flush the writer called the sink's ``discard()``, which for a
    real LogWriter deletes the whole recording — a brief store outage lost everything recorded
    before it, and later rows belonged to a deleted recording."""
    log = Log.open(sqlite_log, create=True)
    broken = threading.Event()

    def make():
        sink = log.writer(name="w")
        flush = sink.flush

        def flaky() -> None:
            if broken.is_set():
                raise OSError("disk full")
            flush()

        sink.flush = flaky
        return sink

    writer = QueueingWriter(make, interval=0.01, warn=lambda _text: None)
    writer.start()
    writer.put(Connection(1, "peer", "/"))
    writer.put(message(1))
    assert writer.flush()
    broken.set()
    for seq in range(2, 6):
        writer.put(message(seq))
    assert writer.flush()
    broken.clear()
    writer.put(message(6))
    writer.close()
    assert len(log.recordings()) == 1  # the recording is still there
    reader = log.reader()
    assert [m.seq for m in reader.messages()] == [1, 6]
    assert [(g.kind, g.start, g.end) for g in reader.gaps()] == [("messages", 2, 5)]
    log.close()
