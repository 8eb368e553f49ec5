"""Bounded memory: a deflate bomb is never inflated past the size limit (nor for long on the
event loop); the frame is forwarded untouched and recorded as ``too-large`` with its wire size."""

from __future__ import annotations

import asyncio
import os
import struct
import time
import zlib
from pathlib import Path

import pytest
from websockets.asyncio.server import serve
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Opcode
from websockets.utils import apply_mask

from devtools.store import Log
from recorder.app import start_recorder
from recorder.capture import StreamCapture
from tests.recorder.conftest import RawClient, settings_for

pytestmark = pytest.mark.timeout(60)
LIMIT = 2**20


def deflated(size: int, *, chunk: bytes = b"\0" * 2**20) -> bytes:
    """``size`` zero bytes deflated for permessage-deflate, without holding them in memory."""
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    parts = [z.compress(chunk) for _ in range(size // len(chunk))]
    parts.append(z.flush(zlib.Z_SYNC_FLUSH))
    data = b"".join(parts)
    assert data.endswith(b"\x00\x00\xff\xff")
    return data[:-4]


def small(text: bytes) -> bytes:
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    return (z.compress(text) + z.flush(zlib.Z_SYNC_FLUSH))[:-4]


def frame(data: bytes, *, compressed: bool = True, fin: bool = True, op=Opcode.TEXT) -> bytes:
    """A masked client frame (RSV1 set when ``compressed``), serialized by hand."""
    head = bytes([(0x80 if fin else 0) | (0x40 if compressed else 0) | op.value])
    n = len(data)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    key = os.urandom(4)
    return head + key + apply_mask(data, key)


def capture(*, takeover: bool, seen: list, big: list) -> StreamCapture:
    deflate = PerMessageDeflate(
        remote_no_context_takeover=not takeover,
        local_no_context_takeover=True,
        remote_max_window_bits=15,
        local_max_window_bits=15,
    )
    return StreamCapture(
        from_client=True,
        extensions=[deflate],
        on_message=lambda payload, binary: seen.append(payload),
        max_size=LIMIT,
        on_too_large=lambda size, binary: big.append(size),
    )


def peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")


BOMB = deflated(512 * 2**20)  # ~0.5 MB on the wire, 512 MiB inflated


def test_a_bomb_is_stopped_at_the_limit_and_later_messages_still_decode():
    seen: list[bytes] = []
    big: list[int] = []
    cap = capture(takeover=False, seen=seen, big=big)
    data = frame(BOMB) + frame(small(b'{"type":"after"}'))
    started = time.perf_counter()
    for i in range(0, len(data), 65536):  # as the proxy reads it
        cap.feed(data[i : i + 65536])
    elapsed = time.perf_counter() - started
    assert big == [len(BOMB)] and seen == [b'{"type":"after"}'] and cap.error is None
    assert elapsed < 0.5, elapsed  # inflated up to 1 MiB, not 512 MiB


def test_with_context_takeover_the_capture_stops_after_reporting_the_bomb():
    seen: list[bytes] = []
    big: list[int] = []
    cap = capture(takeover=True, seen=seen, big=big)
    cap.feed(frame(small(b'{"type":"before"}')) + frame(BOMB) + frame(small(b'{"type":"x"}')))
    assert seen == [b'{"type":"before"}'] and big == [len(BOMB)]
    assert cap.error is not None and "size limit" in cap.error


def test_a_huge_uncompressed_fragmented_message_is_skipped_not_buffered():
    seen: list[bytes] = []
    big: list[int] = []
    cap = StreamCapture(
        from_client=True,
        on_message=lambda payload, binary: seen.append(payload),
        max_size=LIMIT,
        on_too_large=lambda size, binary: big.append(size),
    )
    piece = b"x" * (LIMIT // 2)
    cap.feed(frame(piece, compressed=False, fin=False))
    for _ in range(3):
        cap.feed(frame(piece, compressed=False, fin=False, op=Opcode.CONT))
        assert cap.pending_bytes <= LIMIT
    cap.feed(frame(piece, compressed=False, op=Opcode.CONT))
    cap.feed(frame(b'{"type":"ok"}', compressed=False))
    assert big == [5 * len(piece)] and seen == [b'{"type":"ok"}']


async def test_the_bomb_through_the_recorder_keeps_rss_bounded(sqlite_log):
    """Before: +1 GB for this frame. The bound stated in bench/RESULTS.md: +64 MiB."""

    async def sink(ws):  # websockets' own limit (1 MiB) refuses the bomb cheaply with 1009
        async for _ in ws:
            pass

    async with serve(sink, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        handle = await start_recorder(settings_for(port, sqlite_log, max_record_size=LIMIT))
        try:
            client = await RawClient.connect(
                handle.port, extensions="permessage-deflate; client_no_context_takeover"
            )
            assert "permessage-deflate" in client.head
            reset_peak_rss()
            before = peak_rss_kib()
            client.writer.write(frame(small(b'{"type":"a"}')) + frame(BOMB))
            await client.writer.drain()
            await asyncio.sleep(0.5)
            await handle.flush()
            grown_mib = (peak_rss_kib() - before) / 1024
            await client.close()
        finally:
            await handle.close()
    with Log.open(sqlite_log) as log:
        messages = [m for m in log.reader().messages() if m.direction == "in"]
    assert [(m.type, m.flag) for m in messages] == [("a", None), (None, "too-large")]
    assert messages[1].size == len(BOMB)
    assert grown_mib < 64, grown_mib


async def test_a_bomb_dressed_as_a_logux_sync_stops_at_the_parse_ceiling(sqlite_log):
    """A Logux recording keeps a sync past --max-frame-size to parse its actions: a bomb that
    starts like one is inflated to --max-parse-size at most (8 MiB here), never to its 512 MiB,
    and is recorded as too-large with a gap saying its actions are not events."""
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    spaces = b" " * 2**20
    parts = [z.compress(b'["sync",1,'), *(z.compress(spaces) for _ in range(512))]
    data = (b"".join(parts) + z.flush(zlib.Z_SYNC_FLUSH))[:-4]

    async def sink(ws):  # websockets' own limit (1 MiB) refuses the bomb cheaply with 1009
        async for _ in ws:
            pass

    async with serve(sink, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        settings = settings_for(port, sqlite_log, max_record_size=LIMIT, max_parse_size=8 * LIMIT)
        handle = await start_recorder(settings)
        try:
            client = await RawClient.connect(
                handle.port, extensions="permessage-deflate; client_no_context_takeover"
            )
            reset_peak_rss()
            before = peak_rss_kib()
            client.writer.write(frame(small(b'["connect",4,"10:a",0]')) + frame(data))
            await client.writer.drain()
            await asyncio.sleep(0.5)
            await handle.flush()
            grown_mib = (peak_rss_kib() - before) / 1024
            await client.close()
        finally:
            await handle.close()
    with Log.open(sqlite_log) as log:
        reader = log.reader()
        messages = [m for m in reader.messages() if m.direction == "in"]
        gaps = reader.gaps()
    assert [(m.type, m.flag) for m in messages] == [("connect", None), (None, "too-large")]
    assert [(g.start, "not recorded as events" in g.reason) for g in gaps] == [(2, True)]
    assert grown_mib < 64, grown_mib
