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
    assert gaps == [(4, 10, "recorder queue full")]
    assert writer.lost == 7
