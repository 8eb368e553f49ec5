"""The sans-I/O capture: bytes in, whole messages and the close out — no sockets."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
)
from websockets.frames import Close, Frame, Opcode

from recorder.capture import (
    Captured,
    CapturedClose,
    Oversize,
    StreamCapture,
    negotiated_extensions,
)
from recorder.protocols.logux import may_be_sync


def frames(*items: Frame, mask: bool = True) -> bytes:
    return b"".join(f.serialize(mask=mask, extensions=[]) for f in items)


def test_whole_messages_come_out_once_complete():
    data = frames(Frame(Opcode.TEXT, b'{"type":"a"}'), Frame(Opcode.BINARY, b"\x00\x1b"))
    capture = StreamCapture(from_client=True)
    assert capture.feed(data[:5]) == []
    assert not capture.at_frame_boundary
    out = capture.feed(data[5:])
    assert out == [Captured(b'{"type":"a"}', False), Captured(b"\x00\x1b", True)]
    assert capture.at_frame_boundary


def test_fragments_are_joined_and_a_ping_between_them_is_skipped():
    data = frames(
        Frame(Opcode.TEXT, b'{"type":', fin=False),
        Frame(Opcode.PING, b"hi"),
        Frame(Opcode.CONT, b'"x"}', fin=True),
    )
    assert StreamCapture(from_client=True).feed(data) == [Captured(b'{"type":"x"}', False)]


def test_close_frame_reports_code_and_reason_then_stops():
    data = frames(Frame(Opcode.CLOSE, Close(4000, "bye").serialize()), mask=False)
    capture = StreamCapture(from_client=False)
    assert capture.feed(data + b"trailing junk") == [CapturedClose(4000, "bye")]
    assert capture.closed and capture.error is None


def test_a_protocol_error_stops_capture_without_raising():
    capture = StreamCapture(from_client=True)
    unmasked = frames(Frame(Opcode.TEXT, b"x"), mask=False)
    assert capture.feed(unmasked) == []
    assert capture.error == "protocol error: incorrect masking"
    assert capture.feed(b"more") == []


def test_eof_inside_a_frame_is_reported():
    capture = StreamCapture(from_client=True)
    capture.feed(frames(Frame(Opcode.TEXT, b"hello"))[:4])
    capture.feed_eof()
    assert capture.error == "stream ended inside a frame"


def test_compressed_traffic_is_recorded_decompressed():
    """permessage-deflate as a websockets client and server negotiate it, context kept."""
    header = "permessage-deflate; client_max_window_bits=15"
    client_ext = ClientPerMessageDeflateFactory().process_response_params([], [])
    wire = b""
    messages = [b'{"type":"a","pad":"' + b"z" * 300 + b'"}', b'{"type":"b"}' * 20]
    for message in messages:
        frame = Frame(Opcode.TEXT, message)
        wire += frame.serialize(mask=True, extensions=[client_ext])
    decoders, unknown = negotiated_extensions(header, from_client=True)
    assert unknown == ""
    capture = StreamCapture(from_client=True, extensions=decoders)
    assert capture.feed(wire) == [Captured(m, False) for m in messages]
    assert len(wire) < sum(map(len, messages))  # it really was compressed


def test_unknown_extensions_are_named():
    decoders, unknown = negotiated_extensions("x-webkit-foo, permessage-deflate", from_client=False)
    assert unknown == "x-webkit-foo" and len(decoders) == 1


@given(
    st.lists(st.tuples(st.binary(max_size=300), st.booleans()), max_size=8),
    st.lists(st.integers(min_value=1, max_value=97), min_size=1, max_size=40),
)
def test_any_chunking_gives_the_same_messages(messages, cuts):
    """Law: how the stream is split into reads never changes what is captured."""
    data = frames(*(Frame(Opcode.BINARY if b else Opcode.TEXT, m) for m, b in messages))
    capture = StreamCapture(from_client=True)
    out, pos, i = [], 0, 0
    while pos < len(data):
        step = cuts[i % len(cuts)]
        out += capture.feed(data[pos : pos + step])
        pos, i = pos + step, i + 1
    assert out == [Captured(m, b) for m, b in messages]
    assert capture.at_frame_boundary


@given(
    st.lists(st.tuples(st.binary(max_size=300), st.booleans()), max_size=8),
    st.lists(st.integers(min_value=1, max_value=97), min_size=1, max_size=40),
)
def test_the_callback_sees_exactly_what_feed_would_return(messages, cuts):
    """Law: with ``on_message`` the same messages come out, in order, and feed returns only
    the close."""
    data = frames(*(Frame(Opcode.BINARY if b else Opcode.TEXT, m) for m, b in messages))
    data += frames(Frame(Opcode.CLOSE, Close(1000, "done").serialize()))
    seen: list[Captured] = []
    capture = StreamCapture(from_client=True, on_message=lambda p, b: seen.append(Captured(p, b)))
    returned, pos, i = [], 0, 0
    while pos < len(data):
        step = cuts[i % len(cuts)]
        returned += capture.feed(data[pos : pos + step])
        pos, i = pos + step, i + 1
    assert seen == [Captured(m, b) for m, b in messages]
    assert returned == [CapturedClose(1000, "done")]


def test_an_unknown_opcode_stops_the_capture_with_a_reason():
    good = frames(Frame(Opcode.TEXT, b'{"type":"a"}'))
    bad = bytes([0x83, 0x80]) + b"\x00\x00\x00\x00"  # opcode 3 is reserved
    capture = StreamCapture(from_client=True)
    assert capture.feed(good + bad + good) == [Captured(b'{"type":"a"}', False)]
    assert capture.error == "protocol error: invalid opcode"
    assert capture.feed(good) == []


# ---------------------------------------------------------------- past the limit, kept whole


SYNC = b'["sync",1,' + b",".join([b'{"type":"a"},{"id":1,"time":1}'] * 200) + b"]"
"""A Logux ``sync`` of 6,409 bytes: past the 1,000-byte limit of these tests."""


class Kept:
    """A capture with the policy on: what it emits and what it reports."""

    def __init__(self, over: Oversize, *, compressed: bool = False) -> None:
        self.seen: list[bytes] = []
        self.too_large: list[int] = []
        self.unparsed: list[int] = []
        extensions = []
        if compressed:
            extensions = [
                PerMessageDeflate(
                    remote_no_context_takeover=True,
                    local_no_context_takeover=True,
                    remote_max_window_bits=15,
                    local_max_window_bits=15,
                )
            ]
        self.capture = StreamCapture(
            from_client=True,
            extensions=extensions,
            on_message=lambda payload, binary: self.seen.append(payload),
            max_size=1000,
            on_too_large=lambda size, binary: self.too_large.append(size),
            oversize=over,
            on_unparsed=lambda size, binary: self.unparsed.append(size),
        )

    def feed(self, data: bytes, step: int = 97) -> None:
        for i in range(0, len(data), step):
            self.capture.feed(data[i : i + step])


def policy(ceiling: int = 10_000, *, active: bool = True) -> Oversize:
    return Oversize(ceiling, lambda: active, may_be_sync)


def test_a_sync_past_the_limit_is_kept_whole_and_its_share_given_back():
    over = policy()
    kept = Kept(over)
    kept.feed(frames(Frame(Opcode.TEXT, SYNC), Frame(Opcode.TEXT, b'["ping",1]')))
    assert kept.seen == [SYNC, b'["ping",1]'] and kept.too_large == kept.unparsed == []
    assert over.held == 0


def test_a_fragmented_sync_that_crosses_the_limit_midway_is_kept():
    over = policy()
    kept = Kept(over)
    pieces = [SYNC[:600], SYNC[600:3000], SYNC[3000:]]
    kept.feed(
        frames(
            Frame(Opcode.TEXT, pieces[0], fin=False),
            Frame(Opcode.CONT, pieces[1], fin=False),
            Frame(Opcode.CONT, pieces[2]),
        )
    )
    assert kept.seen == [SYNC] and over.held == 0


def test_other_messages_past_the_limit_are_skipped_as_before():
    over = policy()
    kept = Kept(over)
    ping = b'["ping",' + b" " * 2000 + b"1]"
    kept.feed(
        frames(Frame(Opcode.TEXT, ping), Frame(Opcode.BINARY, SYNC), Frame(Opcode.TEXT, SYNC))
    )
    assert kept.too_large == [len(ping), len(SYNC)] and kept.unparsed == []
    assert kept.seen == [SYNC]  # the text one; a binary frame is never a Logux message
    off = Kept(policy(active=False))  # not a Logux recording: nothing is kept
    off.feed(frames(Frame(Opcode.TEXT, SYNC)))
    assert off.seen == [] and off.too_large == [len(SYNC)]


def test_a_sync_past_the_ceiling_is_reported_unparsed_and_never_buffered():
    over = policy(ceiling=5000)
    kept = Kept(over)
    kept.feed(frames(Frame(Opcode.TEXT, SYNC), Frame(Opcode.TEXT, b'["ping",1]')))
    assert kept.unparsed == [len(SYNC)] and kept.too_large == []
    assert kept.seen == [b'["ping",1]'] and over.held == 0
    assert kept.capture.pending_bytes == 0


def test_the_ceiling_is_shared_by_every_connection_until_a_kept_message_ends():
    over = policy(ceiling=8000)
    first, second = Kept(over), Kept(over)
    data = frames(Frame(Opcode.TEXT, SYNC))
    first.feed(data[:-1])  # incomplete: it holds its share
    assert over.held == len(SYNC)
    second.feed(data)
    assert second.unparsed == [len(SYNC)] and second.seen == []
    first.feed(data[-1:])
    assert first.seen == [SYNC] and over.held == 0
    second.feed(data)
    assert second.seen == [SYNC]
    third = Kept(over)
    third.feed(data[:-1])
    third.capture.release()  # its connection ended mid-message
    assert over.held == 0


def test_a_compressed_sync_decoded_past_the_limit_is_kept_and_a_bomb_stops_at_the_ceiling():
    from tests.recorder.test_bounded_memory import frame, small

    over = policy()
    kept = Kept(over, compressed=True)
    kept.feed(frame(small(SYNC)))
    assert kept.seen == [SYNC] and over.held == 0
    bomb = b'["sync",1,' + b" " * 10**7
    kept.feed(frame(small(bomb)) + frame(b"[]", compressed=False))
    assert kept.unparsed == [len(small(bomb))] and kept.seen == [SYNC, b"[]"]
    assert over.held == 0


_MESSAGES = st.lists(
    st.tuples(st.binary(max_size=3000), st.integers(min_value=1, max_value=3), st.booleans()),
    min_size=1,
    max_size=12,
)


@given(_MESSAGES, st.booleans(), st.integers(min_value=1, max_value=4000))
def test_compressed_messages_come_out_as_sent(messages, takeover: bool, chunk: int) -> None:
    """Whole and fragmented compressed messages, with and without context takeover, in any
    chunking: the fast path for whole small messages and websockets' decode for the others
    share one decoder."""
    from websockets.extensions.permessage_deflate import PerMessageDeflate

    def deflate() -> PerMessageDeflate:
        return PerMessageDeflate(not takeover, not takeover, 15, 15)

    encoder = deflate()
    data = b""
    for payload, parts, binary in messages:
        size = max(1, len(payload) // parts)
        pieces = [payload[i : i + size] for i in range(0, len(payload), size)] or [b""]
        for n, piece in enumerate(pieces):
            opcode = (Opcode.BINARY if binary else Opcode.TEXT) if n == 0 else Opcode.CONT
            frame = Frame(opcode, piece, fin=n == len(pieces) - 1)
            data += frame.serialize(mask=False, extensions=[encoder])
    got: list[tuple[bytes, bool]] = []
    capture = StreamCapture(
        from_client=False, extensions=[deflate()], on_message=lambda p, b: got.append((p, b))
    )
    for i in range(0, len(data), chunk):
        capture.feed(data[i : i + chunk])
    assert capture.error is None
    assert got == [(payload, binary) for payload, _, binary in messages]
