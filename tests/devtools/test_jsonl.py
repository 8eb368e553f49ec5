"""JSON Lines export/import (PROTOCOL.md §4): record shapes, round trips, bad input."""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.errors import BadInput, InvalidJSON
from devtools.jsonl import export_lines, import_lines, iso_utc, parse_record, record
from devtools.jsonutil import dumps, loads
from devtools.store import Log
from tests import factories as f

pytestmark = pytest.mark.timeout(120)


def _export(target) -> list[bytes]:
    with Log.open(target) as log:
        return list(export_lines(log.reader()))


# ---- record shapes


def test_recording_line_comes_first_with_format_and_time(sqlite_log):
    f.write_log(sqlite_log, name="orders")
    first = loads(_export(sqlite_log)[0])
    assert first["kind"] == "recording" and first["format"] == 1
    assert first["name"] == "orders"
    assert first["started_at"] == "2026-11-23T08:00:00Z"
    assert first["started_ns"] == f.T0
    assert first["server"] == {"name": "counter", "version": "1.0"}


def test_lines_come_in_protocol_order(sqlite_log):
    f.write_log(sqlite_log, messages=3, events=2, snapshots=(0,), marks=(2,), gaps=((4, 5),))
    kinds = [loads(line)["kind"] for line in _export(sqlite_log)]
    assert kinds == ["recording"] + ["connection"] * 2 + ["message"] * 3 + ["event"] * 2 + [
        "snapshot",
        "mark",
        "gap",
    ]


def test_message_payload_fields():
    data = record(f.message(1, {"type": "order/create", "customer": "ACME"}))
    assert data == {
        "kind": "message",
        "seq": 1,
        "connection": 1,
        "dir": "in",
        "t_ns": f.T0 + 1000,
        "type": "order/create",
        "data": {"type": "order/create", "customer": "ACME"},
    }
    assert record(f.message(2, payload="not json", flag="not-json"))["raw"] == "not json"
    spaced = record(f.message(3, payload='{"type": "a"}', type="a"))
    assert spaced["data"] == {"type": "a"} and spaced["raw"] == '{"type": "a"}'
    flagged = record(f.message(4, [1, 2]))
    assert flagged["data"] == [1, 2] and flagged["flag"] == "not-object"
    binary = record(f.message(5, payload=b"\x00\xff", binary=True))
    assert base64.b64decode(binary["b64"]) == b"\x00\xff" and "binary" not in binary
    bad_utf8 = record(f.message(6, payload=b"\xff", flag="invalid-utf8"))
    assert bad_utf8["b64"] == "/w==" and bad_utf8["binary"] is False


def test_event_snapshot_mark_gap_records():
    ev = f.event(1, "order/created", cause_seq=1, hash="sha256:ab", id="o1")
    assert record(ev) == {
        "kind": "event",
        "v": 1,
        "type": "order/created",
        "event": ev.event,
        "cause_seq": 1,
        "hash": "sha256:ab",
        "t_ns": ev.t_ns,
    }
    assert record(f.snapshot(1000, {"a": 1}, hash="sha256:x"))["state"] == {"a": 1}
    assert record(f.gap(5001, 5090)) == {
        "kind": "gap",
        "from_seq": 5001,
        "to_seq": 5090,
        "reason": "store unavailable",
        "t_ns": f.gap(5001, 5090).t_ns,
    }
    assert record(f.gap(3, 4, kind="events"))["from_v"] == 3
    assert record(f.mark(7, "bug here"))["label"] == "bug here"


def test_protocol_example_lines_parse():
    lines = [
        b'{"kind":"recording","format":1,"name":"orders","started_at":"2026-11-23T08:00:00Z",'
        b'"server":{"name":"sales-order","version":"1.0"}}',
        b'{"kind":"connection","id":1,"peer":"127.0.0.1:50412","path":"/","origin":"client",'
        b'"opened_ns":1795420800000000000}',
        b'{"kind":"message","seq":1,"connection":1,"dir":"in","t_ns":1795420800000100000,'
        b'"type":"order/create","data":{"type":"order/create","customer":"ACME"}}',
        b'{"kind":"message","seq":2,"connection":1,"dir":"in","t_ns":1795420800000200000,'
        b'"type":null,"raw":"not json"}',
        b'{"kind":"event","v":1,"type":"order/created","event":{"type":"order/created","v":1,'
        b'"ts":1795420800000150000,"sender":"c1","id":"o1","customer":"ACME"},"cause_seq":1,'
        b'"hash":"sha256:00"}',
        b'{"kind":"snapshot","v":1000,"state":{},"hash":"sha256:00"}',
        b'{"kind":"gap","from_seq":5001,"to_seq":5090,"reason":"store unavailable"}',
    ]
    rec = parse_record(loads(lines[0]))
    assert rec.started_ns == f.T0 and rec.name == "orders"
    msg = parse_record(loads(lines[2]))
    assert msg.payload == b'{"type":"order/create","customer":"ACME"}'
    assert parse_record(loads(lines[3])).payload == b"not json"
    assert parse_record(loads(lines[6])).start == 5001


def test_iso_time_keeps_fractions():
    assert iso_utc(f.T0 + 1_500_000) == "2026-11-23T08:00:00.0015Z"


# ---- round trips


def test_import_creates_the_log_and_gives_back_the_same_records(tmp_path):
    source = tmp_path / "a.rdtlog"
    f.write_log(source, messages=9, events=6, snapshots=(0, 3), marks=(2, 2), gaps=((10, 12),))
    lines = _export(source)
    target = tmp_path / "new.rdtlog"
    with Log.open(target, create=True) as log:
        rec = import_lines(lines, log, source="a.jsonl")
    assert rec.name == "test"
    with Log.open(source) as a, Log.open(target) as b:
        ra, rb = a.reader(), b.reader()
        assert list(ra.messages()) == list(rb.messages())
        assert list(ra.events()) == list(rb.events())
        assert list(ra.snapshots()) == list(rb.snapshots())
        assert ra.connections() == rb.connections()
        assert ra.marks() == rb.marks() and ra.gaps() == rb.gaps()
        assert rb.recording.ended_ns == ra.recording.ended_ns
    assert _export(target) == lines


def test_import_with_a_new_name_into_an_existing_log(log_target):
    f.write_log(log_target, name="first")
    lines = _export(log_target)
    with Log.open(log_target) as log:
        rec = import_lines(lines, log, name="copy")
        assert [s.recording.name for s in log.recordings()] == ["first", "copy"]
        assert log.reader("copy").counts().messages == 20
    assert rec.name == "copy"


def test_export_streams(tmp_path):
    """Export is a generator: the first line is there before the rest is read."""
    path = tmp_path / "big.rdtlog"
    f.write_log(path, messages=12_000, events=0)
    with Log.open(path) as log:
        lines = export_lines(log.reader())
        assert loads(next(lines))["kind"] == "recording"
        assert sum(1 for _ in lines) == 2 + 12_000 + 1


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def frames(draw, seq: int):
    kind = draw(st.sampled_from(["message", "value", "raw", "binary", "spaced", "badutf8"]))
    conn = draw(st.sampled_from([1, 2]))
    direction = draw(st.sampled_from(["in", "out"]))
    common = {"connection": conn, "direction": direction}
    if kind == "message":
        body = draw(st.dictionaries(st.text(max_size=4), json_values, max_size=3))
        body["type"] = draw(st.text(min_size=1, max_size=6))
        return f.message(seq, body, **common)
    if kind == "value":
        return f.message(seq, draw(json_values), **common)
    if kind == "raw":
        text = draw(st.text(max_size=12))
        try:
            loads(text)
        except ValueError:
            return f.message(seq, payload=text, flag="not-json", **common)
        return f.message(seq, payload="x" + text + "{", flag="not-json", **common)
    if kind == "binary":
        return f.message(seq, payload=draw(st.binary(max_size=16)), binary=True, **common)
    if kind == "spaced":
        return f.message(seq, payload='{ "type" : "s" }', type="s", **common)
    return f.message(
        seq, payload=b"\xc3(" + draw(st.binary(max_size=4)), flag="invalid-utf8", **common
    )


@st.composite
def logs(draw):
    n_messages = draw(st.integers(0, 8))
    messages = [draw(frames(seq)) for seq in range(1, n_messages + 1)]
    n_events = draw(st.integers(0, 6))
    events = [
        f.event(
            v,
            draw(st.text(min_size=1, max_size=5)),
            big=draw(json_values),
            note=draw(st.text(max_size=6)),
            cause_seq=draw(st.none() | st.integers(1, 9)),
            hash=draw(st.none() | st.just("sha256:" + "0" * 64)),
        )
        for v in range(1, n_events + 1)
    ]
    snaps = draw(st.lists(st.integers(0, 6), unique=True, max_size=2))
    snapshots = [f.snapshot(v, draw(json_values)) for v in sorted(snaps)]
    marks = [
        f.mark(draw(st.integers(1, 9)), draw(st.text(max_size=6)))
        for _ in range(draw(st.integers(0, 2)))
    ]
    gaps = [
        f.gap(
            a,
            a + draw(st.integers(0, 5)),
            draw(st.text(max_size=6)),
            kind=draw(st.sampled_from(["messages", "events"])),
        )
        for a in draw(st.lists(st.integers(1, 50), max_size=2))
    ]
    name = draw(st.text(min_size=1, max_size=8))
    return name, messages, events, snapshots, marks, gaps


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(logs())
def test_export_import_export_is_byte_identical(generated):
    name, messages, events, snapshots, marks, gaps = generated
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "a.rdtlog"
        with Log.open(source, create=True) as log:
            writer = log.writer(name=name, server={"name": "s", "n": 2**70}, started_ns=f.T0)
            writer.add_connection(f.connection(1))
            writer.add_connection(f.connection(2, origin="injected"))
            writer.add_messages(messages)
            writer.add_events(events)
            for snap in snapshots:
                writer.add_snapshot(snap)
            for m in marks:
                writer.add_mark(m)
            for g in gaps:
                writer.add_gap(g)
            writer.close(ended_ns=f.T0 + 5)
            first = list(export_lines(log.reader()))
        target = Path(folder) / "b.rdtlog"
        with Log.open(target, create=True) as log:
            import_lines(first, log)
            reader = log.reader()
            assert list(reader.messages()) == messages
            assert list(reader.events()) == events
            assert reader.marks() == sorted(marks, key=lambda m: m.seq)
            assert reader.gaps() == gaps
            second = list(export_lines(reader))
        assert second == first


# ---- bad input


def _import(lines: list[bytes], tmp_path) -> None:
    with Log.open(tmp_path / "x.rdtlog", create=True) as log:
        import_lines(lines, log, source="in.jsonl")


HEAD = dumps({"kind": "recording", "format": 1, "name": "x", "started_ns": 1})


@pytest.mark.parametrize(
    ("lines", "error", "message"),
    [
        ([b"{nope"], InvalidJSON, "in.jsonl:1: not valid JSON"),
        ([HEAD, b"", b"[1,"], InvalidJSON, "in.jsonl:3: not valid JSON"),
        ([b'{"kind":"message"}'], BadInput, "in.jsonl:1: the first line must be a 'recording'"),
        ([HEAD, b'{"kind":"weird"}'], BadInput, "in.jsonl:2: unknown kind 'weird'"),
        ([HEAD, b"[1]"], BadInput, "in.jsonl:2: a record must be a JSON object"),
        ([HEAD, b'{"v":1}'], BadInput, "in.jsonl:2: a record needs a 'kind'"),
        (
            [HEAD, b'{"kind":"event","v":"one","event":{"type":"a"}}'],
            BadInput,
            "in.jsonl:2: 'v' must be an integer",
        ),
        (
            [HEAD, b'{"kind":"message","seq":1,"connection":1,"dir":"in"}'],
            BadInput,
            "needs 'data', 'raw' or 'b64'",
        ),
        (
            [HEAD, b'{"kind":"message","seq":1,"connection":1,"dir":"in","b64":"!!"}'],
            BadInput,
            "not valid base64",
        ),
        (
            [b'{"kind":"recording","format":2,"name":"x"}'],
            BadInput,
            "in.jsonl:1: written by a newer rdt (format 2); please update",
        ),
        ([], BadInput, "in.jsonl: empty file"),
        ([HEAD, HEAD], BadInput, "in.jsonl:2: a second 'recording' record"),
    ],
)
def test_bad_input_names_the_line(tmp_path, lines, error, message):
    with pytest.raises(error) as caught:
        _import(lines, tmp_path)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_failed_import_leaves_no_recording(tmp_path):
    lines = [HEAD] + [dumps(record(f.message(s))) for s in range(1, 7000)] + [b"{bad"]
    with pytest.raises(InvalidJSON, match=":7001:"):
        _import(lines, tmp_path)
    with Log.open(tmp_path / "x.rdtlog") as log:
        assert log.recordings() == []
        with log.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM messages").scalar() == 0
