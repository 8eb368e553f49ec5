"""The devtools channel and control endpoint messages as plain data (PROTOCOL.md §1–§2)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from devtools import jsonutil
from devtools import protocol as p

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def test_hello_carries_protocol_server_v_and_hash():
    assert p.hello(name="shop", version="2.1", v=7, hash="sha256:ab") == {
        "type": "@@devtools/hello",
        "protocol": 1,
        "server": {"name": "shop", "version": "2.1"},
        "v": 7,
        "hash": "sha256:ab",
    }
    assert p.PROTOCOL_VERSION == 1


def test_snapshot_has_id_only_when_answering_a_request():
    assert p.snapshot(3, {"a": 1}, "sha256:x") == {
        "type": "@@devtools/snapshot",
        "v": 3,
        "state": {"a": 1},
        "hash": "sha256:x",
    }
    assert p.snapshot(3, {}, None, id="r1")["id"] == "r1"


def test_event_hash_is_optional_and_cause_always_present():
    event = {"type": "t", "v": 4, "ts": 10, "sender": "c1"}
    plain = p.event(4, event, None)
    assert plain == {"type": "@@devtools/event", "v": 4, "event": event, "cause": None}
    with_hash = p.event(4, event, p.cause("9", 2), "sha256:h")
    assert with_hash["cause"] == {"connection": "9", "n": 2}
    assert with_hash["hash"] == "sha256:h"


def test_answers_to_dispatch_inject_mark_status_and_errors():
    assert p.dispatched("d1", True, [5, 6]) == {
        "type": "@@devtools/dispatched",
        "id": "d1",
        "ok": True,
        "events": [5, 6],
        "error": None,
        "replies": [],
    }
    assert p.error("nope", id=3) == {"type": "@@devtools/error", "id": 3, "error": "nope"}
    injected = p.injected("i", False, error="refused")
    assert injected["type"] == "@@devtools/injected"
    assert (injected["ok"], injected["error"], injected["events"], injected["seq"]) == (
        False,
        "refused",
        [],
        None,
    )
    assert p.marked(12) == {"type": "@@devtools/marked", "seq": 12}
    status = p.status(recording=1, connections=2, messages=3, events=4, store_lag_ms=0.5, gaps=0)
    assert status["type"] == "@@devtools/status"
    assert status["store_lag_ms"] == 0.5


def test_parse_subscribe_defaults_and_control_fields():
    assert p.parse_request({"type": p.SUBSCRIBE}) == p.Subscribe(snapshot=True)
    assert p.parse_request(p.subscribe_request(snapshot=False)) == p.Subscribe(snapshot=False)
    parsed = p.parse_request(p.subscribe_request(from_seq=10, kinds=["message", "event"]))
    assert parsed == p.Subscribe(snapshot=True, from_seq=10, kinds=("message", "event"))
    assert p.parse_request(p.subscribe_request(batch=True)) == p.Subscribe(batch=True)
    assert "batch" not in p.subscribe_request()
    assert p.parse_request(p.subscribe_request(hashes_only=True)) == p.Subscribe(hashes_only=True)
    assert "hashes_only" not in p.subscribe_request()


def test_hashes_are_v_and_hash_pairs_in_order():
    assert p.hashes([(3, "sha256:03"), (4, None)]) == {
        "type": p.HASHES,
        "hashes": [[3, "sha256:03"], [4, None]],
    }


def test_events_bytes_hold_each_event_message_as_it_was():
    one = jsonutil.dumps(p.event(1, {"type": "a", "v": 1}, None, "sha256:01"))
    two = jsonutil.dumps(p.event(2, {"type": "b", "v": 2}, {"connection": "c1"}))
    message = jsonutil.loads(p.events_bytes([one, two]))
    assert message == {"type": p.EVENTS, "events": [jsonutil.loads(one), jsonutil.loads(two)]}


def test_parse_get_state_dispatch_inject_mark_status():
    assert p.parse_request(p.get_state_request("g")) == p.GetState(id="g")
    action = {"type": "order/create", "customer": "ACME"}
    assert p.parse_request(p.dispatch_request(1, action)) == p.Dispatch(id=1, action=action)
    assert p.parse_request(p.inject_request("i", action, via="client")) == p.Inject(
        id="i", action=action, via="client"
    )
    assert p.parse_request({"type": p.INJECT, "id": 2, "action": action}).via == "devtools"
    assert p.parse_request(p.mark_request("here")) == p.Mark(label="here")
    assert p.parse_request(p.status_request()) == p.Status()


def test_unknown_fields_are_ignored():
    assert p.parse_request({"type": p.GET_STATE, "id": 1, "extra": [1, 2]}) == p.GetState(id=1)


def test_unknown_type_is_an_error_value_with_the_id():
    result = p.parse_request({"type": "@@devtools/teleport", "id": 9})
    assert isinstance(result, p.ProtocolError)
    assert result.id == 9
    assert "@@devtools/teleport" in result.error
    assert result.reply() == {"type": "@@devtools/error", "id": 9, "error": result.error}


def test_malformed_requests_are_error_values():
    bad = [
        [],
        "x",
        {},
        {"type": 3},
        {"type": p.DISPATCH, "id": 1},
        {"type": p.DISPATCH, "id": 1, "action": "order/create"},
        {"type": p.DISPATCH, "id": 1, "action": {"customer": "no type"}},
        {"type": p.SUBSCRIBE, "snapshot": "yes"},
        {"type": p.SUBSCRIBE, "batch": 1},
        {"type": p.SUBSCRIBE, "hashes_only": "yes"},
        {"type": p.SUBSCRIBE, "from_seq": -1},
        {"type": p.SUBSCRIBE, "from_seq": True},
        {"type": p.SUBSCRIBE, "kinds": ["event", "weather"]},
        {"type": p.SUBSCRIBE, "kinds": "event"},
        {"type": p.INJECT, "id": 1, "action": {"type": "x"}, "via": "carrier-pigeon"},
        {"type": p.MARK, "label": 5},
        {"type": p.GET_STATE, "id": {"nested": True}},
    ]
    for obj in bad:
        assert isinstance(p.parse_request(obj), p.ProtocolError), obj


def test_endpoint_filter_refuses_requests_served_elsewhere():
    devtools_only = p.DEVTOOLS_REQUESTS
    refused = p.parse_request(p.mark_request("x"), allowed=devtools_only)
    assert isinstance(refused, p.ProtocolError)
    assert "not served" in refused.error
    control = p.parse_request(p.dispatch_request(1, {"type": "x"}), allowed=p.CONTROL_REQUESTS)
    assert isinstance(control, p.ProtocolError)
    assert p.parse_request(p.subscribe_request(), allowed=devtools_only) == p.Subscribe()


def test_parse_cause_header():
    assert p.CONNECTION_HEADER == "X-Rdt-Connection"
    assert p.parse_cause_header("17") == "17"
    assert p.parse_cause_header("  abc-1 ") == "abc-1"
    assert p.parse_cause_header(None) is None
    assert p.parse_cause_header("") is None
    assert p.parse_cause_header("   ") is None
    assert p.parse_cause_header("x" * (p.MAX_CONNECTION_ID + 1)) is None
    assert p.parse_cause_header("a\x1bb") is None


@given(JSON)
def test_parse_request_never_raises(obj):
    result = p.parse_request(obj)
    assert isinstance(result, (p.ProtocolError, *p.Request.__args__))


@given(st.dictionaries(st.text(max_size=8), JSON, max_size=5))
def test_parse_request_with_a_devtools_type_never_raises(fields):
    for kind in p.DEVTOOLS_REQUESTS | p.CONTROL_REQUESTS:
        result = p.parse_request({**fields, "type": kind})
        assert isinstance(result, p.ProtocolError) or result.type == kind
