"""recorder/resend.py: which recorded handshake facts a traffic replay sends again (pure)."""

from __future__ import annotations

import pytest

from recorder.resend import extra_header, header_verdict, resend_handshake, resend_target


@pytest.mark.parametrize(
    "name",
    [
        "Host",
        "Connection",
        "Upgrade",
        "Keep-Alive",
        "Proxy-Connection",
        "Proxy-Authorization",
        "Transfer-Encoding",
        "TE",
        "Trailer",
        "Content-Length",
        "Sec-WebSocket-Key",
        "sec-websocket-version",
        "Sec-WebSocket-Extensions",
        "Sec-WebSocket-Accept",
        "Sec-WebSocket-Protocol",
        "X-Rdt-Connection",
        "X-Rdt-Inject",
    ],
)
def test_hop_by_hop_websocket_and_rdt_headers_are_never_resent(name: str) -> None:
    assert header_verdict(name, "anything") == "hop-by-hop or handshake"


@pytest.mark.parametrize(
    ("name", "value", "verdict"),
    [
        ("X-Tenant", "acme", None),
        ("Origin", "https://app.example", None),
        ("User-Agent", "shop-app/2.1", None),
        ("Authorization", "Bearer abc", None),  # recorded unredacted: resent
        ("Cookie", "sid=1", None),
        ("Authorization", "<redacted>", "redacted"),
        ("Cookie", "<redacted>", "redacted"),
        ("X-Api-Key", "<redacted>", "redacted"),
        ("X-Evil", "a\r\nHost: elsewhere", "malformed"),
        ("X-Nul", "a\x00b", "malformed"),
        ("Bad Name", "x", "malformed"),
        ("X-Wide", "\u2603", "malformed"),
    ],
)
def test_other_headers_are_resent_unless_redacted_or_malformed(
    name: str, value: str, verdict: str | None
) -> None:
    assert header_verdict(name, value) == verdict


def test_headers_the_recorded_connection_header_names_are_hop_by_hop() -> None:
    facts = {"headers": [["Connection", "Upgrade, X-Hop"], ["X-Hop", "1"], ["X-Kept", "2"]]}
    handshake = resend_handshake("/", facts)
    assert handshake.headers == (("X-Kept", "2"),)
    assert handshake.left_out == ("X-Hop (hop-by-hop or handshake)",)


def test_a_recorded_handshake_becomes_target_subprotocols_headers_and_deflate() -> None:
    facts = {
        "target": "/room/7?token=<redacted>&lang=en",
        "subprotocols": ["chat.v2", "chat.v1", "bad proto", 3],
        "extensions": "permessage-deflate; client_max_window_bits",
        "headers": [
            ["Host", "old:1"],
            ["Upgrade", "websocket"],
            ["Connection", "Upgrade"],
            ["Sec-WebSocket-Version", "13"],
            ["Sec-WebSocket-Protocol", "chat.v2, chat.v1"],
            ["Origin", "https://app.example"],
            ["Authorization", "<redacted>"],
            ["X-Tenant", "acme"],
            ["X-Tenant", "beta"],
            ["X-Rdt-Connection", "old-run-1"],
            "not a pair",
            ["X-Num", 5],
        ],
    }
    handshake = resend_handshake("/room/7", facts)
    assert handshake.target == "/room/7?lang=en"
    assert handshake.subprotocols == ("chat.v2", "chat.v1")
    assert handshake.deflate is True
    assert handshake.headers == (
        ("Origin", "https://app.example"),
        ("X-Tenant", "acme"),
        ("X-Tenant", "beta"),
    )
    # the handshake's own headers go without a word; the others are named
    assert handshake.left_out == (
        "Authorization (redacted)",
        "X-Rdt-Connection (hop-by-hop or handshake)",
    )


def test_no_offered_extension_means_no_deflate_and_older_logs_keep_the_default() -> None:
    assert resend_handshake("/", {"extensions": None, "headers": []}).deflate is False
    older = resend_handshake("/c1", None)
    assert (older.target, older.deflate, older.headers) == ("/c1", True, ())


def test_header_option_replaces_recorded_headers_of_that_name() -> None:
    facts = {"headers": [["Authorization", "<redacted>"], ["X-Tenant", "acme"]]}
    extra = [extra_header("Authorization: Bearer test"), extra_header("x-tenant:beta")]
    handshake = resend_handshake("/", facts, extra)
    assert handshake.headers == (("Authorization", "Bearer test"), ("x-tenant", "beta"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no colon", "Name: value"),
        ("Bad Name: x", "Name: value"),
        ("X-A: a\nb", "Name: value"),
        ("Host: elsewhere", "cannot be set"),
        ("Sec-WebSocket-Key: x", "cannot be set"),
        ("X-Rdt-Connection: x", "cannot be set"),
    ],
)
def test_bad_header_options_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        extra_header(text)


@pytest.mark.parametrize(
    ("path", "facts", "target"),
    [
        ("/a", {"target": "/a?x=1&y=2"}, "/a?x=1&y=2"),
        ("/a", {"target": "/a?secret=<redacted>"}, "/a"),
        ("/a", {"target": "/a?flag&k=<redacted>&j="}, "/a?flag&j="),
        ("/a", {"target": "/a b"}, "/a"),  # not a request target: the recorded path
        ("/a", {"target": 7}, "/a"),
        ("/a", None, "/a"),
        ("", None, "/"),
        ("bad path", {"target": "x"}, "/"),
    ],
)
def test_the_request_target(path: str, facts: object, target: str) -> None:
    assert resend_target(path, facts) == target
