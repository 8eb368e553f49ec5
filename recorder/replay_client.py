"""The websocket client a traffic replay opens per recorded connection (:class:`ReplayConnection`).

Lean on purpose: ``--pace fast`` is measured against a hand-written websockets client
(bench/traffic.py), and the replay also records every frame, so the client's own cost per frame
has to be small. The handshake is websockets' sans-I/O :class:`~websockets.client.ClientProtocol`
(request, ``Sec-WebSocket-Accept``, extension and subprotocol checks); after it, frames are
written here — masked with keys drawn from ``os.urandom`` in blocks, compressed with the
negotiated ``permessage-deflate`` settings, and coalesced into one socket write per burst — and
read with the recorder's own :class:`~recorder.capture.StreamCapture` (which the proxy uses for
the same direction), one call per chunk instead of one generator step and one future per frame.
Pings are answered; the closing handshake is the RFC's (echo the code, let the server close
the TCP connection first, give up after a timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import struct
import zlib
from collections.abc import Callable

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidHeaderValue
from websockets.extensions.permessage_deflate import (
    PerMessageDeflate,
    enable_client_permessage_deflate,
)
from websockets.frames import Frame, Opcode
from websockets.http11 import USER_AGENT
from websockets.protocol import State
from websockets.uri import parse_uri

from recorder.capture import CapturedClose, StreamCapture
from recorder.http import split_head, status_code
from recorder.proxy import close_frame
from recorder.resend import Handshake

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - the pure-Python fallback
    from websockets.utils import apply_mask

FLUSH_BYTES = 64 * 1024
"""Frames are written once this many bytes are waiting (or at :meth:`ReplayConnection.flush`)."""

_U16 = struct.Struct("!BBH")
_U64 = struct.Struct("!BBQ")
_MASK_BLOCK = 4096


class Refused(Exception):
    """The target did not open the connection (one line: why)."""


class ReplayConnection(asyncio.Protocol):
    """One replayed client connection.

    Args:
        on_open: called with the connection once the target accepted the handshake, before
            any of its messages.
        on_message: called with ``(payload, binary)`` for each whole message the target sends.
        on_end: called once when an opened connection is gone (``close_code``/``close_reason``
            set).
        close_timeout: seconds to wait for the target's side of the closing handshake.
    """

    def __init__(
        self,
        on_open: Callable[[ReplayConnection], object],
        on_message: Callable[[bytes, bool], object],
        on_end: Callable[[], object],
        *,
        close_timeout: float = 10.0,
    ) -> None:
        self._on_open = on_open
        self._on_message = on_message
        self._on_end = on_end
        self._close_timeout = close_timeout
        self._loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self._protocol: ClientProtocol | None = None
        self._head = b""
        self._capture: StreamCapture | None = None
        self.opened: asyncio.Future[None] = self._loop.create_future()
        """Done when the handshake succeeded; raises :class:`Refused` when it did not."""
        self.ended: asyncio.Future[None] = self._loop.create_future()
        """Done when the TCP connection is gone."""
        self.close_code: int | None = None
        """The code of the target's close frame (1005: none given, 1006: no close frame)."""
        self.close_reason = ""
        self.subprotocol: str | None = None
        self._out: list[bytes] = []
        self._out_bytes = 0
        self._sent_close = False
        self._paused: asyncio.Future[None] | None = None
        self._deflate: PerMessageDeflate | None = None
        self._compressor: zlib._Compress | None = None
        self._masks = b""
        self._mask_at = _MASK_BLOCK

    # ------------------------------------------------------------------ opening

    def start(self, protocol: ClientProtocol, request: bytes) -> None:
        self._protocol = protocol
        assert self.transport is not None
        self.transport.write(request)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def _handshake(self, data: bytes) -> None:
        self._head += data
        try:
            split = split_head(self._head)
        except ValueError as error:
            self._refuse(f"a bad HTTP answer: {error}")
            return
        if split is None:
            return
        head, rest = split
        code = status_code(head)
        if code != 101:
            self._refuse(f"HTTP {code}" if code is not None else "not an HTTP answer")
            return
        protocol = self._protocol
        assert protocol is not None
        protocol.receive_data(self._head[: len(self._head) - len(rest)])
        protocol.events_received()
        if protocol.state is not State.OPEN:
            why = protocol.handshake_exc
            self._refuse(f"a bad handshake answer: {why or 'incomplete'}")
            return
        self._head = b""
        self.subprotocol = protocol.subprotocol
        extensions = list(protocol.extensions)
        for extension in extensions:
            if isinstance(extension, PerMessageDeflate):
                self._deflate = extension
        self._capture = StreamCapture(
            from_client=False,
            extensions=extensions,
            on_message=self._on_message,
            on_ping=self._pong,
        )
        self.opened.set_result(None)
        self._on_open(self)
        if rest:
            self.data_received(rest)

    def _refuse(self, why: str) -> None:
        if not self.opened.done():
            self.opened.set_exception(Refused(why))
        if self.transport is not None:
            self.transport.close()

    # ------------------------------------------------------------------ receiving

    def data_received(self, data: bytes) -> None:
        capture = self._capture
        if capture is None:
            self._handshake(data)
            return
        for item in capture.feed(data):
            if type(item) is CapturedClose:
                self._closed_by_target(item)
        if capture.error is not None and not capture.closed:
            self.close_code, self.close_reason = 1006, capture.error[:120]
            self._write_close(1002, "")
            self._abort_later(0)

    def _closed_by_target(self, close: CapturedClose) -> None:
        self.close_code = 1005 if close.code is None else close.code
        self.close_reason = close.reason
        if not self._sent_close:  # echo it (RFC 6455 §5.5.1)
            self._write_close(close.code, close.reason)
        self._abort_later(self._close_timeout)  # the server closes TCP first

    def _pong(self, payload: bytes) -> None:
        if not self._sent_close:
            self._write(Frame(Opcode.PONG, payload).serialize(mask=True, extensions=[]))

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.close_code is None:
            self.close_code = 1006
        if self._paused is not None and not self._paused.done():
            self._paused.set_result(None)
        if not self.opened.done():
            why = f"{type(exc).__name__}: {exc}" if exc else "closed during the handshake"
            self.opened.set_exception(Refused(why))
        if not self.ended.done():
            self.ended.set_result(None)
            if self._capture is not None:
                self._on_end()

    # ------------------------------------------------------------------ sending

    @property
    def closing(self) -> bool:
        """Whether no more frames can be sent (a close frame went either way, or TCP is gone)."""
        return self._sent_close or self.close_code is not None or self.ended.done()

    def send(self, payload: bytes, binary: bool) -> None:
        """Queue one whole message (written at :data:`FLUSH_BYTES` or :meth:`flush`)."""
        first = 0x82 if binary else 0x81
        deflate = self._deflate
        if deflate is not None:
            compressor = self._compressor
            if compressor is None or deflate.local_no_context_takeover:
                compressor = self._compressor = zlib.compressobj(
                    wbits=-deflate.local_max_window_bits, **deflate.compress_settings
                )
            payload = (compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]
            first |= 0x40
        at = self._mask_at
        if at == _MASK_BLOCK:
            self._masks, at = os.urandom(_MASK_BLOCK), 0
        mask = self._masks[at : at + 4]
        self._mask_at = at + 4
        size = len(payload)
        if size < 126:
            head = bytes((first, 0x80 | size))
        elif size < 65536:
            head = _U16.pack(first, 0xFE, size)
        else:
            head = _U64.pack(first, 0xFF, size)
        frame = head + mask + apply_mask(payload, mask)
        self._out.append(frame)
        self._out_bytes += len(frame)
        if self._out_bytes >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write the queued frames."""
        if self._out:
            data = b"".join(self._out)
            self._out.clear()
            self._out_bytes = 0
            self._write(data)

    def _write(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    async def drain(self) -> None:
        """Wait while the socket's send buffer is over its high-water mark."""
        if self._paused is not None:
            await self._paused

    def pause_writing(self) -> None:
        if self._paused is None:
            self._paused = self._loop.create_future()

    def resume_writing(self) -> None:
        paused, self._paused = self._paused, None
        if paused is not None and not paused.done():
            paused.set_result(None)

    # ------------------------------------------------------------------ closing

    def _write_close(self, code: int | None, reason: str) -> None:
        self.flush()
        self._sent_close = True
        if code is None:
            self._write(Frame(Opcode.CLOSE, b"").serialize(mask=True, extensions=[]))
        else:
            self._write(close_frame(code, reason, mask=True))

    def _abort_later(self, delay: float) -> None:
        transport = self.transport
        if transport is not None:
            self._loop.call_later(delay, transport.abort)

    async def close(self, code: int, reason: str = "") -> None:
        """Send a close frame and wait (at most ``close_timeout``) until the connection is gone."""
        if self.ended.done():
            return
        if not self._sent_close and self.close_code is None:
            self._write_close(code, reason)
        try:
            async with asyncio.timeout(self._close_timeout):
                await asyncio.shield(self.ended)
        except TimeoutError:
            if self.close_code is None:
                self.close_code, self.close_reason = 1006, "no closing handshake"
            if self.transport is not None:
                self.transport.abort()
            with contextlib.suppress(BaseException):
                await self.ended


def handshake_request(
    url: str, handshake: Handshake, extra: tuple[tuple[str, str], ...] = ()
) -> tuple[ClientProtocol, bytes, tuple[tuple[str, str], ...]]:
    """The sans-I/O client for ``url`` (``ws[s]://host:port/target``), its request's bytes and
    headers: the recorded ``handshake`` plus ``extra`` (the replay's ``X-Rdt-Connection``)."""
    protocol = ClientProtocol(
        parse_uri(url),
        extensions=enable_client_permessage_deflate(None) if handshake.deflate else None,
        subprotocols=list(handshake.subprotocols) or None,  # type: ignore[arg-type]
        max_size=None,
    )
    request = protocol.connect()
    headers = request.headers
    if not any(name.lower() == "user-agent" for name, _ in handshake.headers):
        headers["User-Agent"] = USER_AGENT
    for name, value in (*handshake.headers, *extra):
        with contextlib.suppress(InvalidHeaderValue):  # resend.py checks; websockets too
            headers[name] = value
    protocol.send_request(request)
    return protocol, b"".join(protocol.data_to_send()), tuple(headers.raw_items())


async def open_connection(
    protocol: ClientProtocol,
    request: bytes,
    *,
    on_open: Callable[[ReplayConnection], object],
    on_message: Callable[[bytes, bool], object],
    on_end: Callable[[], object],
    timeout: float,
) -> ReplayConnection:
    """Connect and send ``request`` (see :func:`handshake_request`); done once it is accepted.

    Raises:
        Refused: the target refused, did not answer in ``timeout`` seconds, or answered with
            something other than a websocket handshake.
    """
    uri = protocol.uri
    loop = asyncio.get_running_loop()
    conn = ReplayConnection(on_open, on_message, on_end, close_timeout=timeout)
    context = ssl.create_default_context() if uri.secure else None
    try:
        async with asyncio.timeout(timeout):
            await loop.create_connection(
                lambda: conn,
                uri.host,
                uri.port,
                ssl=context,
                server_hostname=uri.host if context is not None else None,
            )
            conn.start(protocol, request)
            await conn.opened
    except TimeoutError:
        if conn.opened.done() and conn.opened.exception() is None:
            return conn  # accepted just as the time ran out
        if conn.transport is not None:
            conn.transport.abort()
        raise Refused("no answer to the handshake") from None
    except OSError as error:  # ssl.SSLError is one
        raise Refused(f"{type(error).__name__}: {error}"[:200]) from None
    return conn
