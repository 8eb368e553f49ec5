"""The sans-I/O capture: bytes in, whole messages and the close out — no sockets."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Close, Frame, Opcode

from recorder.capture import Captured, CapturedClose, StreamCapture, negotiated_extensions


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
