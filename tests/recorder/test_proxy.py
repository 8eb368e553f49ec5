"""The proxy over real sockets: transparency, order, bad input, failures, shutdown."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
import websockets
from websockets.asyncio.server import serve
from websockets.frames import Frame, Opcode
from websockets.utils import accept_key

from devtools.store import Log
from recorder.app import start_recorder
from tests.recorder.conftest import RawClient, read_messages, settings_for

pytestmark = pytest.mark.timeout(60)


async def test_messages_are_forwarded_and_recorded_in_forwarding_order(recorder, sqlite_log):
    async with websockets.connect(recorder.url, proxy=None) as ws:
        for i in range(20):
            await ws.send(f'{{"type":"t","i":{i}}}')
            assert await ws.recv() == f'{{"type":"t","i":{i}}}'
    await recorder.close()
    messages = read_messages(sqlite_log)
    assert [m.seq for m in messages] == list(range(1, 41))
    assert [m.direction for m in messages] == ["in", "out"] * 20
    assert [m.payload for m in messages[::2]] == [
        f'{{"type":"t","i":{i}}}'.encode() for i in range(20)
    ]
    assert all(m.type == "t" and m.flag is None for m in messages)


async def test_compressed_traffic_passes_through_and_is_recorded_decompressed(recorder, sqlite_log):
    text = '{"type":"big","pad":"' + "abc" * 2000 + '"}'
    async with websockets.connect(recorder.url, proxy=None) as ws:
        assert "permessage-deflate" in ws.response.headers["Sec-WebSocket-Extensions"]
        await ws.send(text)
        assert await ws.recv() == text
    await recorder.close()
    assert [m.payload for m in read_messages(sqlite_log)] == [text.encode()] * 2


async def test_upstream_handshake_carries_connection_id_and_ignores_env_proxy(
    sqlite_log, monkeypatch
):
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("all_proxy", "socks5://127.0.0.1:9")
    seen = []

    async def handler(ws):
        seen.append((ws.request.headers.get("X-Rdt-Connection"), ws.request.path))
        await ws.send("hi")

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        settings = settings_for(port, sqlite_log)
        settings = replace(settings, upstream=replace(settings.upstream, path="/app"))
        async with await start_recorder(settings) as handle:
            spoofed = {"X-Rdt-Connection": "spoofed"}
            async with websockets.connect(
                handle.url + "room?x=1", proxy=None, additional_headers=spoofed
            ) as ws:
                assert await ws.recv() == "hi"
    assert seen == [(f"{settings.run_id}-1", "/app/room?x=1")]


async def test_a_thousand_concurrent_clients_are_all_recorded_in_order(recorder, sqlite_log):
    async def client(i: int) -> None:
        async with websockets.connect(recorder.url, proxy=None, compression=None) as ws:
            for k in range(2):
                await ws.send(f'{{"type":"c","client":{i},"k":{k}}}')
                assert await ws.recv() == f'{{"type":"c","client":{i},"k":{k}}}'

    clients = 1000
    await asyncio.gather(*(client(i) for i in range(clients)))
    await recorder.close()
    messages = read_messages(sqlite_log)
    assert len(messages) == clients * 4
    assert [m.seq for m in messages] == list(range(1, clients * 4 + 1))
    per_conn: dict[int, list[tuple[str, bytes]]] = {}
    for m in messages:
        per_conn.setdefault(m.connection, []).append((m.direction, m.payload))
    assert len(per_conn) == clients
    for conn in per_conn.values():
        payloads = [p for _, p in conn]
        assert [d for d, _ in conn] == ["in", "out", "in", "out"]
        assert payloads[0] == payloads[1] and payloads[2] == payloads[3]
        assert b'"k":0' in payloads[0] and b'"k":1' in payloads[2]


class RawUpstream:
    """A websocket server on a plain TCP stream: it answers 101 and records raw bytes."""

    def __init__(self, send: bytes = b"") -> None:
        self.send = send
        self.received = bytearray()
        self.got = asyncio.Event()

    async def handle(self, reader, writer) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        key = next(
            line.split(":", 1)[1].strip()
            for line in head.split("\r\n")
            if line.lower().startswith("sec-websocket-key")
        )
        writer.write(
            f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n".encode()
            + self.send
        )
        while data := await reader.read(65536):
            self.received += data
            self.got.set()
        writer.close()


BAD_CORPUS = [
    # (opcode, payload, expected flag, expected stored type)
    (Opcode.TEXT, b'\xff\xfe{"type":"x"}', "invalid-utf8", None),
    (Opcode.BINARY, b"\x00\x1b[31mred\x00", "binary", None),
    (Opcode.TEXT, b"[" * 600 + b"]" * 600, "too-deep", None),
    (Opcode.TEXT, b'{"type":"n","v":123456789012345678901234567890}', None, "n"),
    (Opcode.TEXT, b'{"type":"n","v":NaN}', "nan", None),
    (Opcode.TEXT, b'{"type":"a","type":"b"}', None, "b"),
    (Opcode.TEXT, b'{"type":"\\ud800"}', "lone-surrogate", None),
    (Opcode.TEXT, b"not json at all", "not-json", None),
    (Opcode.TEXT, b'{"no":"type"}', "no-type", None),
]

LIMIT = 2000
"""The recorder's ``max_record_size`` in the size-limit cases."""


async def test_bad_input_is_forwarded_byte_identical_both_ways_and_recorded_with_flags(sqlite_log):
    """Invalid UTF-8, binary with NUL/ESC, deep nesting, huge ints, NaN, duplicate keys, lone
    surrogates, a fragmented message with a ping between fragments, and frames at the record
    size limit and one byte over: the bytes pass untouched in both directions. A frame of
    exactly the limit is recorded in full; one byte over is recorded as its size with the flag
    ``too-large`` and no payload."""
    corpus = list(BAD_CORPUS) + [
        (Opcode.TEXT, b'{"type":"s","p":"' + b"x" * (LIMIT - 19) + b'"}', None, "s"),
        (Opcode.TEXT, b'{"type":"s","p":"' + b"x" * (LIMIT - 18) + b'"}', "too-large", None),
    ]
    assert len(corpus[-2][1]) == LIMIT and len(corpus[-1][1]) == LIMIT + 1
    fragmented = [
        Frame(Opcode.TEXT, b'{"type":"fr', fin=False),
        Frame(Opcode.PING, b"between"),
        Frame(Opcode.CONT, b'ag"}', fin=True),
    ]
    down = b"".join(Frame(op, data).serialize(mask=False, extensions=[]) for op, data, *_ in corpus)
    down += b"".join(f.serialize(mask=False, extensions=[]) for f in fragmented)
    upstream = RawUpstream(send=down)
    server = await asyncio.start_server(upstream.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    handle = await start_recorder(settings_for(port, sqlite_log, max_record_size=LIMIT))
    client = await RawClient.connect(handle.port)
    up = b"".join(Frame(op, data).serialize(mask=True, extensions=[]) for op, data, *_ in corpus)
    up += b"".join(f.serialize(mask=True, extensions=[]) for f in fragmented)
    client.writer.write(up)
    received = await asyncio.wait_for(client.reader.readexactly(len(down)), 10)
    async with asyncio.timeout(10):
        while len(upstream.received) < len(up):
            upstream.got.clear()
            await upstream.got.wait()
    assert received == down
    assert bytes(upstream.received) == up
    await client.close()
    await handle.close()
    server.close()
    messages = read_messages(sqlite_log)
    for direction in ("in", "out"):
        got = [m for m in messages if m.direction == direction]
        assert len(got) == len(corpus) + 1
        for m, (op, data, flag, kind) in zip(got, corpus, strict=False):
            assert (m.flag, m.type, m.binary) == (flag, kind, op is Opcode.BINARY), data[:40]
            if flag == "too-large":
                assert m.payload == b"" and m.size == LIMIT + 1
            else:
                assert m.payload == data
        assert got[-1].payload == b'{"type":"frag"}' and got[-1].type == "frag"


async def test_the_servers_size_limit_closes_with_1009_and_is_recorded(sqlite_log):
    """Exactly the upstream's max_size passes; one byte over: the server closes with 1009,
    the client sees that same close, and the connection is recorded with it."""
    async with serve(lambda ws: _echo(ws), "127.0.0.1", 0, max_size=LIMIT) as server:
        port = server.sockets[0].getsockname()[1]
        handle = await start_recorder(settings_for(port, sqlite_log))
        async with websockets.connect(handle.url, proxy=None, compression=None) as ws:
            await ws.send("x" * LIMIT)
            assert await ws.recv() == "x" * LIMIT
            await ws.send("y" * (LIMIT + 1))
            with pytest.raises(websockets.ConnectionClosedError) as info:
                await ws.recv()
        assert info.value.rcvd.code == 1009
        await handle.close()
    messages = read_messages(sqlite_log)
    assert [(m.direction, m.size if m.size >= 0 else len(m.payload)) for m in messages] == [
        ("in", LIMIT),
        ("out", LIMIT),
        ("in", LIMIT + 1),
    ]
    from devtools.store import Log

    with Log.open(sqlite_log) as log:
        (conn,) = log.reader().connections()
    assert conn.close_code == 1009


async def _echo(ws):
    async for message in ws:
        await ws.send(message)


async def test_upstream_down_gives_a_502_and_the_attempt_is_recorded(sqlite_log):
    listener = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    listener.close()
    await listener.wait_closed()
    handle = await start_recorder(settings_for(port, sqlite_log))
    with pytest.raises(websockets.InvalidStatus) as info:
        await websockets.connect(handle.url, proxy=None)
    assert info.value.response.status_code == 502
    await handle.close()
    from devtools.store import Log

    with Log.open(sqlite_log) as log:
        (conn,) = log.reader().connections()
    assert conn.close_reason.startswith("upstream unavailable")


async def test_upstream_dying_mid_stream_closes_clients_cleanly_and_new_ones_are_served(sqlite_log):
    async def handler(ws):
        async for message in ws:
            if message == "die":
                ws.transport.abort()  # the server process vanishes: no close frame
                return
            await ws.send(message)

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        handle = await start_recorder(settings_for(port, sqlite_log))
        async with websockets.connect(handle.url, proxy=None) as ws:
            await ws.send("die")
            with pytest.raises(websockets.ConnectionClosedError) as info:
                await ws.recv()
        assert info.value.rcvd is not None and info.value.rcvd.code == 1014
        async with websockets.connect(handle.url, proxy=None) as ws:
            await ws.send("still here")
            assert await ws.recv() == "still here"
        await handle.close()


async def test_stopping_the_recorder_closes_clients_with_1001(recorder):
    async with websockets.connect(recorder.url, proxy=None) as ws:
        await ws.send('{"type":"x"}')
        await ws.recv()
        await recorder.close()
        with pytest.raises(websockets.ConnectionClosed) as info:
            await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1001


async def test_a_stream_the_capture_cannot_follow_is_still_forwarded_and_marked_as_a_gap(
    sqlite_log,
):
    """A frame with a reserved opcode: the bytes pass untouched, what came before it is
    recorded, and the point where recording of that direction stopped is a gap."""
    upstream = RawUpstream()
    server = await asyncio.start_server(upstream.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    handle = await start_recorder(settings_for(port, sqlite_log))
    client = await RawClient.connect(handle.port)
    good = Frame(Opcode.TEXT, b'{"type":"a"}').serialize(mask=True, extensions=[])
    reserved = bytes([0x83, 0x80]) + b"\x00\x00\x00\x00"
    client.writer.write(good + reserved + good)
    async with asyncio.timeout(10):
        while len(upstream.received) < 2 * len(good) + len(reserved):
            upstream.got.clear()
            await upstream.got.wait()
    assert bytes(upstream.received) == good + reserved + good
    await client.close()
    await handle.close()
    server.close()
    with Log.open(sqlite_log) as opened:
        reader = opened.reader()
        assert [m.payload for m in reader.messages()] == [b'{"type":"a"}']
        [gap] = reader.gaps()
    assert (gap.kind, gap.start, gap.end) == ("messages", 2, 2)
    assert "capture stopped: protocol error: invalid opcode" in gap.reason
