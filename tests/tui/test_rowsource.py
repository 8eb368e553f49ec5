"""Windowed row reading: pages on demand, a bounded cache, filters that hide and never drop."""

from __future__ import annotations

from devtools.store import Log
from tests import factories as f
from tui.filters import parse_filter
from tui.rows import event_from_record, message_from_record
from tui.rowsource import CACHE_PAGES, PAGE, FilteredSource, LiveTimeline, LogTimeline


def test_rows_are_read_a_page_at_a_time_and_the_cache_is_bounded(tmp_path) -> None:
    target = str(tmp_path / "big.rdtlog")
    f.write_log(target, messages=10, events=PAGE * (CACHE_PAGES + 5))
    with Log.open(target) as log:
        events = LogTimeline(log.reader()).events
        assert len(events) == PAGE * (CACHE_PAGES + 5)
        assert events.peek(0) is None and not events.is_loaded(0)
        events.load(PAGE + 3)
        assert events.peek(PAGE + 3).key == PAGE + 4
        assert events.peek(0) is None  # only that page was read
        for page in range(CACHE_PAGES + 5):
            events.load(page * PAGE)
        assert len(events._pages) == CACHE_PAGES
        assert events.index_of(10**9) is None


def test_filter_hides_rows_and_clearing_it_shows_all_again(small_log) -> None:
    with Log.open(small_log) as log:
        events = LogTimeline(log.reader()).events
        flt = parse_filter("event['by'] > 25")
        filtered = FilteredSource(events, events.scan(flt.match), flt.match)
        assert len(filtered) == 5 and len(events) == 30
        filtered.load(0)
        assert filtered.peek(0).key == 26
        assert filtered.index_of(28) == 2


def test_live_timeline_keeps_order_ignores_repeats_and_finds_causes() -> None:
    timeline = LiveTimeline()
    record = {"kind": "event", "v": 1, "type": "a", "event": {"type": "a", "v": 1}, "cause_seq": 7}
    timeline.add_event(event_from_record(record))
    timeline.add_event(event_from_record(record))  # replayed then live: shown once
    msg = {"kind": "message", "seq": 7, "connection": 1, "dir": "in", "type": "x", "data": {}}
    timeline.add_message(message_from_record(msg))
    assert len(timeline.events) == 1
    assert [e.v for e in timeline.events_caused_by(7)] == [1]
    assert timeline.message(7).type == "x"


def test_live_filter_catches_up_with_new_rows() -> None:
    timeline = LiveTimeline()
    flt = parse_filter("sender:c2")
    filtered = FilteredSource(timeline.events, [], flt.match)
    for v in range(1, 7):
        ev = {"type": "t", "v": v, "sender": f"c{v % 3}"}
        timeline.add_event(event_from_record({"kind": "event", "v": v, "type": "t", "event": ev}))
    assert filtered.catch_up() == 2
    assert [filtered.peek(i).key for i in range(len(filtered))] == [2, 5]


def test_binary_and_raw_live_messages_keep_their_bytes() -> None:
    binary = message_from_record({"kind": "message", "seq": 1, "b64": "G5s=", "dir": "out"})
    assert binary.binary and binary.payload == b"\x1b\x9b" and binary.flag == "binary"
    raw = message_from_record({"kind": "message", "seq": 2, "raw": "not json"})
    assert raw.payload == b"not json" and raw.flag == "not-json"
