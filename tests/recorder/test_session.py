"""The session's hot path: numbered raw hand-over, built records only for live listeners."""

from __future__ import annotations

from typing import Any

from devtools.model import Message
from recorder.records import row_builder
from recorder.session import Session
from recorder.settings import RecorderSettings, Upstream


def session() -> tuple[Session, list[Any], list[Any]]:
    settings = RecorderSettings(
        upstream=Upstream("127.0.0.1", 1), log="unused", token="t", clock=lambda: 42
    )
    put: list[Any] = []
    raw: list[Any] = []
    return Session(settings, put.append, raw.append), put, raw


def test_forwarded_messages_are_numbered_and_handed_over_raw():
    s, put, raw = session()
    conn = s.open_connection("peer", "/")
    s.forwarded(conn.id, "in", b'{"type":"a"}', False)
    s.forwarded(conn.id, "out", b"\x00", True)
    assert raw == [
        (1, conn.id, "in", 42, b'{"type":"a"}', False),
        (2, conn.id, "out", 42, b"\x00", True),
    ]
    assert put == [conn]
    assert s.in_seqs(conn.id) == [1] and s.messages == 2
    assert [Message(*row_builder()(r)) for r in raw] == [
        Message(1, conn.id, "in", 42, "a", b'{"type":"a"}'),
        Message(2, conn.id, "out", 42, None, b"\x00", True, "binary"),
    ]


def test_a_live_listener_gets_the_built_message_and_the_writer_gets_the_same_value():
    s, put, raw = session()
    conn = s.open_connection("peer", "/")
    heard: list[Any] = []
    s.listeners.add(heard.append)
    s.forwarded(conn.id, "in", b'{"type":"a"}', False)
    expected = Message(1, conn.id, "in", 42, "a", b'{"type":"a"}')
    assert heard == [expected] and put[-1] == expected and raw == []
