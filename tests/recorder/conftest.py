"""Factories for the recorder tests: echo servers, recorders, raw websocket clients."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from websockets.asyncio.server import serve
from websockets.frames import Frame, Opcode

from devtools.store import Log
from recorder.app import RecorderHandle, start_recorder
from recorder.settings import RecorderSettings, Upstream

TOKEN = "test-token"


async def echo(ws: Any) -> None:
    """Send every message back unchanged."""
    async for message in ws:
        await ws.send(message)


@pytest.fixture
async def echo_server() -> AsyncIterator[Any]:
    """A websockets echo server on an ephemeral port (1 MiB max_size, deflate offered)."""
    async with serve(echo, "127.0.0.1", 0) as server:
        server.port = server.sockets[0].getsockname()[1]
        yield server


def settings_for(port: int, log: str, **overrides: Any) -> RecorderSettings:
    """Recorder settings on ephemeral ports in front of ``127.0.0.1:port``."""
    base = RecorderSettings(
        upstream=Upstream("127.0.0.1", port),
        log=log,
        token=TOKEN,
        listen=("127.0.0.1", 0),
        control=("127.0.0.1", 0),
        stderr=lambda line: None,
    )
    return replace(base, **overrides)


@pytest.fixture
async def recorder(echo_server, sqlite_log) -> AsyncIterator[RecorderHandle]:
    """A recorder in front of the echo server, recording into a SQLite file."""
    handle = await start_recorder(settings_for(echo_server.port, sqlite_log))
    try:
        yield handle
    finally:
        await handle.close()


def read_messages(log: str) -> list[Any]:
    """Every message of the latest recording."""
    with Log.open(log) as opened:
        return list(opened.reader().messages())


class RawClient:
    """A websocket client on a plain TCP stream: sends hand-made frames, reads raw bytes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int, *, extensions: str | None = None) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        extra = f"Sec-WebSocket-Extensions: {extensions}\r\n" if extensions else ""
        writer.write(
            (
                f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\n{extra}\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        client = cls(reader, writer)
        client.head = head.decode("latin-1")
        return client

    def send(self, opcode: Opcode, data: bytes, *, fin: bool = True) -> None:
        self.writer.write(Frame(opcode, data, fin).serialize(mask=True, extensions=[]))

    async def read_frame(self) -> Frame:
        """Read one frame exactly as the server sent it (not reassembled, not decoded)."""
        head = await self.reader.readexactly(2)
        length = head[1] & 0x7F
        if length == 126:
            length = int.from_bytes(await self.reader.readexactly(2), "big")
        elif length == 127:
            length = int.from_bytes(await self.reader.readexactly(8), "big")
        data = await self.reader.readexactly(length)
        return Frame(Opcode(head[0] & 0x0F), data, bool(head[0] & 0x80), bool(head[0] & 0x40))

    async def close(self) -> None:
        self.writer.close()
        await asyncio.gather(self.writer.wait_closed(), return_exceptions=True)
