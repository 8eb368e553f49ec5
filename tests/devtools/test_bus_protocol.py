"""The bus protocol's pure core (PROTOCOL.md §9): subjects, envelopes, acks, the join plan."""

from __future__ import annotations

import pytest

from devtools import jsonutil
from devtools.bus_protocol import (
    AckError,
    BadMessage,
    Broadcast,
    BusEvent,
    Conflict,
    Contend,
    JoinPlan,
    JoinRefused,
    Published,
    PublishFailed,
    SnapshotOffer,
    Stored,
    StreamExtent,
    WrongLast,
    broadcast_subject,
    check_stream_name,
    check_worker_id,
    choose_snapshot,
    contend_subject,
    decode_broadcast,
    decode_contend,
    decode_event,
    default_worker_id,
    encode_broadcast,
    encode_contend,
    encode_event,
    events_subject,
    parse_ack,
    parse_servers,
    parse_snapshot_reply,
    plan_join,
    publish_headers,
    publish_outcome,
    snapshot_reply,
    snapshot_subject,
)
from devtools.canonical import state_hash

EVENT = {"type": "order/created", "id": "o1", "v": 3, "ts": 1795420800000150001, "sender": "w/c1"}


def test_subject_names() -> None:
    assert events_subject("orders") == "orders.events"
    assert snapshot_subject("orders") == "_rdt.orders.snapshot"
    assert broadcast_subject("orders") == "_rdt.orders.broadcast"
    assert contend_subject("orders") == "_rdt.orders.contend"


@pytest.mark.parametrize("name", ["orders", "rdt_1a2b", "A-b_9"])
def test_good_stream_names(name: str) -> None:
    assert check_stream_name(name) is None


@pytest.mark.parametrize("name", ["", "a.b", "a b", "a*", "a>", "x" * 201, "é"])
def test_bad_stream_names_say_why(name: str) -> None:
    assert "--stream" in (check_stream_name(name) or "")


def test_worker_ids() -> None:
    assert check_worker_id("host-12") is None
    assert check_worker_id("") and check_worker_id("a\nb") and check_worker_id("x" * 201)
    assert default_worker_id("vm", 42) == "vm-42"
    assert default_worker_id("", 1) == "localhost-1"


def test_servers() -> None:
    assert parse_servers("nats://127.0.0.1:4222") == ("nats://127.0.0.1:4222",)
    assert parse_servers("nats://a:1, tls://b:2") == ("nats://a:1", "tls://b:2")
    for bad, words in [
        ("http://x:4222", "expected a nats"),
        ("127.0.0.1:4222", "expected a nats"),
        ("nats://", "no host"),
        ("nats://h:notaport", "not a valid URL"),
        ("", "needs a URL"),
    ]:
        error = parse_servers(bad)
        assert isinstance(error, str) and words in error, bad


def test_event_envelope_round_trip_keeps_ts_exact() -> None:
    cause = {"connection": "7", "n": 2}
    data = encode_event(EVENT, cause)
    assert jsonutil.loads(data) == {"event": EVENT, "cause": cause}
    assert b"1795420800000150001" in data
    assert decode_event(data, 3) == BusEvent(3, EVENT, cause)
    assert decode_event(encode_event(EVENT, None), 3) == BusEvent(3, EVENT, None)


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[1]",
        b'{"event": 1}',
        b'{"event": {"v": 3}}',
        b'{"event": {"type": "t", "v": 4}}',
        b'{"event": {"type": "t", "v": true}}',
        b'{"event": {"type": "t", "v": 3}, "cause": "x"}',
    ],
)
def test_what_is_not_an_event_is_flagged_never_raised(data: bytes) -> None:
    flagged = decode_event(data, 3)
    assert isinstance(flagged, BadMessage) and flagged.seq == 3 and flagged.reason


def test_publish_headers() -> None:
    assert publish_headers("S", "id1", 0) == {
        "Nats-Msg-Id": "id1",
        "Nats-Expected-Stream": "S",
        "Nats-Expected-Last-Sequence": "0",
    }
    second = publish_headers("S", "id2", 1, "id1")
    assert second["Nats-Expected-Last-Msg-Id"] == "id1"
    assert second["Nats-Expected-Last-Sequence"] == "1"


def test_acks() -> None:
    assert parse_ack(b'{"stream":"S","seq":4}') == Stored(4)
    assert parse_ack(b'{"stream":"S","seq":4,"duplicate":true}') == Stored(4, True)
    wrong_seq = (
        b'{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 9"},'
        b'"stream":"S","seq":0}'
    )
    assert parse_ack(wrong_seq) == WrongLast(9)
    wrong_id = b'{"error":{"code":400,"err_code":10070,"description":"wrong last msg ID: b"}}'
    assert parse_ack(wrong_id) == WrongLast(None)
    full = b'{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"}}'
    assert parse_ack(full) == AckError("NATS refused the event: maximum messages exceeded")
    assert isinstance(parse_ack(b"", "503"), AckError)
    assert isinstance(parse_ack(b"{}"), AckError)
    assert isinstance(parse_ack(b"nope"), AckError)


def test_publish_outcomes() -> None:
    assert publish_outcome([Stored(5), Stored(6)], 5) == Published((5, 6))
    assert publish_outcome([Stored(5, duplicate=True)], 5) == Published((5,))
    # another worker was first: nothing of ours is stored, fold up to its event and run again
    assert publish_outcome([WrongLast(7), WrongLast(None)], 5) == Conflict(7)
    assert publish_outcome([WrongLast(None)], 5) == Conflict(5)
    torn = publish_outcome([Stored(5), WrongLast(6)], 5)
    assert isinstance(torn, PublishFailed) and torn.stored == 1 and "1 of its 2" in torn.error
    behind = publish_outcome([WrongLast(2)], 5)
    assert isinstance(behind, PublishFailed) and "created again" in behind.error
    assert publish_outcome([AckError("no")], 5) == PublishFailed("no")
    assert isinstance(publish_outcome([Stored(9)], 5), PublishFailed)


def offer(v: int, worker: str, version: str = "1.0", state: object = None) -> SnapshotOffer:
    state = {"v": v} if state is None else state
    return SnapshotOffer(v, state, state_hash(state), worker, "sales-order", version)


def test_snapshot_reply_round_trip_checks_the_hash() -> None:
    reply = snapshot_reply(
        v=4, state={"a": 1}, hash=state_hash({"a": 1}), worker="w1", name="n", version="2"
    )
    assert set(reply) >= {"v", "state", "hash", "worker"}
    assert parse_snapshot_reply(jsonutil.dumps(reply)) == SnapshotOffer(
        4, {"a": 1}, state_hash({"a": 1}), "w1", "n", "2"
    )
    assert parse_snapshot_reply(jsonutil.dumps({**reply, "hash": "sha256:00"})) is None
    assert parse_snapshot_reply(jsonutil.dumps({**reply, "v": -1})) is None
    assert parse_snapshot_reply(b"[]") is None
    assert parse_snapshot_reply(b"{") is None


def test_choose_snapshot_prefers_the_own_version_then_the_highest_v() -> None:
    a, b, buggy = offer(10, "b"), offer(12, "a"), offer(13, "x", version="1.0-buggy")
    assert choose_snapshot([a, b, buggy], name="sales-order", version="1.0") == b
    assert choose_snapshot([a, buggy], name="sales-order", version="2.0") == buggy
    assert choose_snapshot([offer(3, "z"), offer(3, "y")], name="sales-order", version="1.0") == (
        offer(3, "y")
    )
    assert choose_snapshot([], name="sales-order", version="1.0") is None


def test_join_plans() -> None:
    empty = StreamExtent(first_seq=0, last_seq=0, messages=0)
    assert plan_join("S", None, empty) == JoinPlan(0, None, 0)
    full = StreamExtent(first_seq=1, last_seq=40, messages=40)
    assert plan_join("S", None, full) == JoinPlan(0, None, 40)
    assert plan_join("S", offer(30, "w"), full) == JoinPlan(30, offer(30, "w"), 40)


def test_a_stream_whose_first_events_retention_removed() -> None:
    trimmed = StreamExtent(first_seq=11, last_seq=40, messages=30)
    refused = plan_join("S", None, trimmed)
    assert isinstance(refused, JoinRefused)
    assert "starts at seq 11" in refused.error and "retention" in refused.error
    assert isinstance(plan_join("S", offer(9, "w"), trimmed), JoinRefused)
    assert plan_join("S", offer(10, "w"), trimmed) == JoinPlan(10, offer(10, "w"), 40)
    purged = StreamExtent(first_seq=41, last_seq=40, messages=0)
    assert isinstance(plan_join("S", None, purged), JoinRefused)
    assert plan_join("S", offer(40, "w"), purged) == JoinPlan(40, offer(40, "w"), 40)


def test_a_snapshot_ahead_of_the_stream_is_refused() -> None:
    refused = plan_join("S", offer(50, "w"), StreamExtent(1, 5, 5))
    assert isinstance(refused, JoinRefused) and "created again" in refused.error


def test_broadcast_envelope() -> None:
    data = encode_broadcast("w1", 7, {"type": "order/created"})
    assert decode_broadcast(data) == Broadcast("w1", 7, {"type": "order/created"})
    assert decode_broadcast(b'{"worker": "w", "after": -1, "message": {}}') is None
    assert decode_broadcast(b'{"worker": 1, "after": 1, "message": {}}') is None
    assert decode_broadcast(b"x") is None


def test_contend_envelope() -> None:
    data = encode_contend("w1", 9, "rdt-ab")
    assert jsonutil.loads(data) == {"worker": "w1", "v": 9, "id": "rdt-ab"}
    assert decode_contend(data) == Contend("w1", 9, "rdt-ab")
    assert decode_contend(b'{"worker": "w1", "v": 0, "id": "x"}') is None
    assert decode_contend(b'{"worker": "w1", "v": 2}') is None
    assert decode_contend(b"[]") is None
    assert decode_contend(b"{") is None


def test_a_snapshot_answer_past_the_message_limit_goes_in_parts_and_comes_back_whole() -> None:
    from devtools.bus_protocol import PART_MARGIN, SnapshotParts, snapshot_parts

    small = b'{"v":1}'
    assert snapshot_parts(small, 1 << 20, "a") == [(small, {})]
    data = bytes(range(256)) * 100  # 25,600 bytes
    parts = snapshot_parts(data, PART_MARGIN + 1000, "a")
    assert len(parts) == 26 and all(len(body) <= 1000 for body, _ in parts)
    assert parts[0][1] == {"Rdt-Answer": "a", "Rdt-Part": "1/26"}
    other = snapshot_parts(b"y" * 1500, PART_MARGIN + 1000, "b")
    assembler = SnapshotParts()
    out = []
    # two answers interleaved, one out of order: each whole once its last part is in
    mixed = [parts[1], other[0], parts[0], *parts[2:], other[1]]
    for body, headers in mixed:
        whole = assembler.add(body, headers)
        if whole is not None:
            out.append(whole)
    assert out == [data, b"y" * 1500] and assembler.incomplete == 0
    assert assembler.add(small, None) == small


@pytest.mark.parametrize(
    "headers",
    [{"Rdt-Answer": "a", "Rdt-Part": "0/2"}, {"Rdt-Answer": "a", "Rdt-Part": "3/2"},
     {"Rdt-Answer": "a", "Rdt-Part": "x"}],
)  # fmt: skip
def test_a_malformed_part_is_dropped(headers) -> None:
    from devtools.bus_protocol import SnapshotParts

    assert SnapshotParts().add(b"data", headers) is None


def test_parts_past_the_bounds_are_dropped() -> None:
    from devtools.bus_protocol import SnapshotParts

    few = SnapshotParts(max_answers=1)
    assert few.add(b"a", {"Rdt-Answer": "1", "Rdt-Part": "1/2"}) is None
    assert few.add(b"b", {"Rdt-Answer": "2", "Rdt-Part": "1/2"}) is None  # a second answer
    assert few.incomplete == 1
    small = SnapshotParts(max_bytes=3)
    assert small.add(b"ab", {"Rdt-Answer": "1", "Rdt-Part": "1/2"}) is None
    assert small.add(b"cd", {"Rdt-Answer": "1", "Rdt-Part": "2/2"}) is None  # 4 bytes > 3
    same = SnapshotParts()
    assert same.add(b"a", {"Rdt-Answer": "1", "Rdt-Part": "1/2"}) is None
    assert same.add(b"a", {"Rdt-Answer": "1", "Rdt-Part": "1/2"}) is None  # twice: dropped
    assert same.add(b"b", {"Rdt-Answer": "1", "Rdt-Part": "2/2"}) == b"ab"
