"""The recording proxy's sockets: the one module that talks websockets on the wire.

Per client: read its HTTP upgrade request, open a TCP connection to the upstream and send the
same request (``Host`` replaced, ``X-Rdt-Connection`` added; no proxy from the environment),
relay the upstream's answer to the client byte for byte, and from then on write every chunk
received on one side straight to the other side's transport. A copy of each chunk goes to a
:class:`~recorder.capture.StreamCapture` configured with the negotiated extensions, and each
whole message it yields is numbered and recorded by the :class:`~recorder.session.Session`.
Flow control: a side whose peer's write buffer is full stops reading until it drains.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import secrets
import ssl
from collections.abc import Callable
from typing import Any

from websockets.frames import Close, Frame, Opcode

from devtools.model import Direction, Origin
from devtools.protocol import CONNECTION_HEADER
from devtools.tasks import spawn
from recorder.capture import Captured, CapturedClose, StreamCapture, negotiated_extensions
from recorder.http import (
    build_request,
    error_response,
    handshake_facts,
    request_target,
    split_head,
    status_code,
    upstream_target,
)
from recorder.session import Session
from recorder.settings import Upstream

INJECT_HEADER = "X-Rdt-Inject"
"""Sent by the recorder's own synthetic client; marks the connection's origin ``injected``."""

CONNECT_TIMEOUT = 10.0

_NOT_KEPT = frozenset({"sec-websocket-key", INJECT_HEADER.lower(), CONNECTION_HEADER.lower()})
"""Handshake headers not stored with a connection (one-time values, the recorder's own)."""


def close_frame(code: int, reason: str, *, mask: bool) -> bytes:
    """A serialized close frame (masked when sent to a server)."""
    return Frame(Opcode.CLOSE, Close(code, reason).serialize()).serialize(mask=mask, extensions=[])


def _write(transport: asyncio.Transport, data: bytes) -> None:
    """Write unless the transport is closing or half-closed by us (then the bytes are moot)."""
    if not transport.is_closing():
        with contextlib.suppress(RuntimeError):
            transport.write(data)


class Relay:
    """One client connection and its upstream connection."""

    def __init__(self, proxy: Proxy, transport: asyncio.Transport, side: ClientSide) -> None:
        self.proxy = proxy
        self.side = side
        self.session = proxy.session
        self.client = transport
        self.upstream: asyncio.Transport | None = None
        self.conn_id = 0
        self.open = False
        self.capture_in: StreamCapture | None = None
        self.capture_out: StreamCapture | None = None
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.closed = False
        self.reported: list[StreamCapture] = []
        """Captures whose stop was recorded as a gap."""
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"

    # ---------------------------------------------------------------- handshake

    async def handshake(self, head: Any, rest: bytes, side: ClientSide) -> None:
        try:
            target = request_target(head)
        except ValueError as error:
            self.client.write(error_response(400, "Bad Request", f"{error}\n"))
            self.client.close()
            return
        origin: Origin = "client"
        nonce = head.get(INJECT_HEADER)
        if nonce is not None and nonce in self.proxy.injections:
            origin = "injected"
        proxy = self.proxy
        facts = handshake_facts(
            head,
            target,
            redact_headers=proxy.redact_headers,
            redact_query=proxy.redact_query,
            drop=_NOT_KEPT,
        )
        conn = self.session.open_connection(
            self.peer, target.partition("?")[0], origin, handshake=facts
        )
        self.conn_id = conn.id
        self.proxy.relays[conn.id] = self
        if origin == "injected":
            self.proxy.injections[nonce].set_result(self)
        up = self.proxy.upstream
        request = build_request(
            upstream_target(up.path, target),
            head.headers,
            host=up.host_header,
            drop={CONNECTION_HEADER, INJECT_HEADER},
            extra=((CONNECTION_HEADER, self.session.header_id(conn.id)),),
        )
        loop = asyncio.get_running_loop()
        upstream_side = UpstreamSide(self)
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                tls = self.proxy.upstream_tls
                await loop.create_connection(
                    lambda: upstream_side,
                    up.host,
                    up.port,
                    ssl=tls,
                    server_hostname=up.host if tls is not None else None,
                )
        except (OSError, TimeoutError) as error:  # ssl.SSLError is an OSError
            reason = f"upstream unavailable: {type(error).__name__}: {error}"[:200]
            self.proxy.health.failed(reason)
            self.client.write(error_response(502, "Bad Gateway", reason + "\n"))
            self.client.close()
            self.finish(None, reason)
            return
        if self.closed or self.client.is_closing():
            upstream_side.transport.close()
            self.finish(None, "client left during the handshake")
            return
        self.upstream = upstream_side.transport
        self.upstream.write(request)
        side.pending = rest

    def upgraded(self, head: Any, raw_head: bytes, rest: bytes, side: ClientSide) -> None:
        """The upstream answered: relay the answer; on 101 start forwarding frames."""
        self.client.write(raw_head)
        code = status_code(head)
        if code != 101:
            self.close_reason = f"upstream refused the upgrade: HTTP {code}"
            self.proxy.health.refused(code)
            self.open = False
        else:
            self.proxy.health.ok()
            extensions = head.get("Sec-WebSocket-Extensions")
            ext_in, unknown = negotiated_extensions(extensions, from_client=True)
            ext_out, _ = negotiated_extensions(extensions, from_client=False)
            if unknown:
                self.session.gap(
                    "messages",
                    self.session.seq + 1,
                    self.session.seq + 1,
                    f"connection {self.conn_id}: unknown extension {unknown}",
                )
            # Each whole message goes straight to the session: numbered, stamped, handed over.
            session = self.session
            limit = session.settings.max_record_size
            self.capture_in, self.capture_out = (
                StreamCapture(
                    from_client=direction == "in",
                    extensions=ext,
                    on_message=functools.partial(session.forwarded, self.conn_id, direction),
                    max_size=limit,
                    on_too_large=functools.partial(session.too_large, self.conn_id, direction),
                    oversize=session.oversize,
                    on_unparsed=functools.partial(session.unparsed, self.conn_id, direction),
                )
                for direction, ext in (("in", ext_in), ("out", ext_out))
            )
            self.open = True
        if rest:
            self.from_upstream(rest)
        pending = side.pending
        side.pending = b""
        side.handshaking = False
        if pending:
            self.from_client(pending)
        self.client.resume_reading()

    # ---------------------------------------------------------------- forwarding

    def from_client(self, data: bytes) -> None:
        upstream = self.upstream
        if upstream is None:
            return
        upstream.write(data)
        capture = self.capture_in
        if capture is not None:
            items = capture.feed(data)  # messages went to the session; only a close comes back
            if items or capture.error is not None:
                self._captured("in", capture, items)

    def from_upstream(self, data: bytes) -> None:
        self.client.write(data)
        capture = self.capture_out
        if capture is not None:
            items = capture.feed(data)
            if items or capture.error is not None:
                self._captured("out", capture, items)

    def _captured(
        self, direction: Direction, capture: StreamCapture, items: list[Captured | CapturedClose]
    ) -> None:
        """A close frame went by, or the capture of one direction stopped (the rare paths)."""
        for item in items:
            if (
                type(item) is CapturedClose
                and self.close_code is None
                and self.close_reason is None
            ):
                self.close_code, self.close_reason = item.code, item.reason
        if capture.error is not None and capture not in self.reported:
            # The bytes still flow untouched, but what follows cannot be split into messages.
            self.reported.append(capture)
            seq = self.session.seq + 1
            reason = f"connection {self.conn_id} {direction}: capture stopped: {capture.error}"
            self.session.gap("messages", seq, seq, reason[:200])

    # ---------------------------------------------------------------- endings

    def client_lost(self) -> None:
        if self.upstream is not None:
            self.upstream.close()
        self.finish(
            self.close_code, self.close_reason or (None if self.close_code else "client left")
        )

    def upstream_lost(self) -> None:
        capture = self.capture_out
        if (
            self.open
            and capture is not None
            and not capture.closed
            and not self.client.is_closing()
        ):
            # The server vanished without a close frame: close the client cleanly (1014).
            if capture.at_frame_boundary:
                _write(self.client, close_frame(1014, "upstream connection lost", mask=False))
            self.close_code, self.close_reason = 1014, "upstream connection lost"
        self.client.close()
        self.finish(self.close_code, self.close_reason)

    def going_away(self) -> None:
        """The recorder stops: close both ends with 1001 where a frame boundary allows."""
        if self.closed:
            return
        if self.open:
            if self.capture_out is not None and self.capture_out.at_frame_boundary:
                _write(self.client, close_frame(1001, "recorder stopping", mask=False))
            if (
                self.upstream is not None
                and self.capture_in is not None
                and self.capture_in.at_frame_boundary
            ):
                _write(self.upstream, close_frame(1001, "recorder stopping", mask=True))
            if self.close_code is None:
                self.close_code, self.close_reason = 1001, "recorder stopping"
        self.client.close()
        if self.upstream is not None:
            self.upstream.close()
        self.finish(self.close_code, self.close_reason)

    def finish(self, code: int | None, reason: str | None) -> None:
        if self.closed:
            return
        self.closed = True
        for capture in (self.capture_in, self.capture_out):
            if capture is not None:  # a kept message cut short gives its share back
                capture.release()
        self.proxy.relays.pop(self.conn_id, None)
        if self.conn_id:
            self.session.close_connection(self.conn_id, code, reason)


class ClientSide(asyncio.Protocol):
    """The proxy's end of a client's TCP connection."""

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.relay: Relay | None = None
        self.handshaking = True
        self.buffer = b""
        self.pending = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.relay = Relay(self.proxy, transport, self)  # type: ignore[arg-type]
        self.proxy.sides.add(self)

    def data_received(self, data: bytes) -> None:
        relay = self.relay
        assert relay is not None
        if not self.handshaking:
            relay.from_client(data)
            return
        if relay.conn_id:  # handshake under way: keep what the client sends early
            self.pending += data
            return
        self.buffer += data
        try:
            split = split_head(self.buffer)
        except ValueError as error:
            relay.client.write(error_response(400, "Bad Request", f"{error}\n"))
            relay.client.close()
            return
        if split is None:
            return
        head, rest = split
        self.buffer = b""
        relay.client.pause_reading()
        spawn(relay.handshake(head, rest, self), f"rdt-handshake-{relay.peer}")

    def eof_received(self) -> bool:
        relay = self.relay
        if relay is not None and relay.upstream is not None and relay.upstream.can_write_eof():
            relay.upstream.write_eof()
            return True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.proxy.sides.discard(self)
        if self.relay is not None:
            self.relay.client_lost()

    def pause_writing(self) -> None:
        if self.relay is not None and self.relay.upstream is not None:
            self.relay.upstream.pause_reading()

    def resume_writing(self) -> None:
        if self.relay is not None and self.relay.upstream is not None:
            self.relay.upstream.resume_reading()


class UpstreamSide(asyncio.Protocol):
    """The proxy's end of the upstream TCP connection of one client."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.handshaking = True
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self.handshaking:
            self.relay.from_upstream(data)
            return
        self.buffer += data
        try:
            split = split_head(self.buffer)
        except ValueError:
            split = None
            self.relay.client.write(error_response(502, "Bad Gateway", "bad upstream answer\n"))
            self.relay.close_reason = "upstream sent a malformed answer"
            self.transport.close()
            return
        if split is None:
            return
        head, rest = split
        raw_head = self.buffer[: len(self.buffer) - len(rest)]
        self.buffer = b""
        self.handshaking = False
        self.relay.upgraded(head, raw_head, rest, self.relay.side)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        relay = self.relay
        if self.handshaking and not relay.client.is_closing():
            relay.client.write(error_response(502, "Bad Gateway", "upstream closed\n"))
            relay.close_reason = "upstream closed during the handshake"
        relay.upstream_lost()

    def pause_writing(self) -> None:
        self.relay.client.pause_reading()

    def resume_writing(self) -> None:
        self.relay.client.resume_reading()


class UpstreamHealth:
    """Says once when the upstream fails or refuses, then counts (never a line per client).

    Args:
        url: the upstream, for the messages.
        warn: where the one-line notices go.
    """

    def __init__(self, url: str, warn: Callable[[str], None]) -> None:
        self.url = url
        self.warn = warn
        self.unavailable = 0
        """Client connections answered 502 because the upstream could not be reached."""
        self.refusals = 0
        """Client upgrades the upstream answered with another status than 101."""
        self._down: str | None = None
        self._down_count = 0
        self._refusal_said = False

    def failed(self, reason: str, *, client: bool = True) -> None:
        """The upstream could not be reached (for a client, or by the start-up probe)."""
        if client:
            self.unavailable += 1
            self._down_count += 1
        if self._down is None:
            self._down = reason
            self.warn(
                f"{reason} ({self.url}); clients get 502 until it is back "
                "(counted, not reported per client)"
            )

    def refused(self, code: int | None) -> None:
        """The upstream answered a client's upgrade with ``code`` instead of 101."""
        self.refusals += 1
        if not self._refusal_said:
            self._refusal_said = True
            self.warn(
                f"upstream {self.url} refused an upgrade: HTTP {code} (relayed to the client; "
                "further refusals are counted)"
            )

    def ok(self) -> None:
        """An upgrade went through: the upstream is back if it was down."""
        if self._down is not None:
            self.warn(
                f"upstream {self.url} is back; {self._down_count} client connection"
                f"{'s' if self._down_count != 1 else ''} got 502 meanwhile"
            )
            self._down = None
            self._down_count = 0

    def summary(self) -> str | None:
        """One line for the end of the run, or ``None`` when every upgrade went through."""
        parts = []
        if self.unavailable:
            parts.append(f"{self.unavailable} got 502 (upstream unavailable)")
        if self.refusals:
            parts.append(f"{self.refusals} refused by the upstream")
        return f"client connections: {', '.join(parts)}" if parts else None


class Proxy:
    """The listening proxy.

    Args:
        session: where records go.
        upstream: the server to forward to.
        warn: where one-line notices go (the upstream failing or refusing, once each).
        upstream_tls: the ``ssl.SSLContext`` for a ``wss://`` upstream
            (:func:`recorder.settings.client_tls`).
        listen_tls: the ``ssl.SSLContext`` of a TLS listener
            (:func:`recorder.settings.server_tls`); ``None``: plain TCP.
        redact_headers: handshake headers whose values are never stored.
        redact_query: query parameters whose values are never stored.
    """

    def __init__(
        self,
        session: Session,
        upstream: Upstream,
        warn: Callable[[str], None] | None = None,
        *,
        upstream_tls: ssl.SSLContext | None = None,
        listen_tls: ssl.SSLContext | None = None,
        redact_headers: tuple[str, ...] = (),
        redact_query: tuple[str, ...] = (),
    ) -> None:
        self.redact_headers = frozenset(name.lower() for name in redact_headers)
        self.redact_query = frozenset(name.lower() for name in redact_query)
        self.session = session
        self.upstream = upstream
        self.upstream_tls = upstream_tls
        self.listen_tls = listen_tls
        self.health = UpstreamHealth(upstream.url, warn or (lambda line: None))
        self.relays: dict[int, Relay] = {}
        self.sides: set[ClientSide] = set()
        self.injections: dict[str, asyncio.Future[Relay]] = {}
        self.server: asyncio.Server | None = None

    async def listen(self, host: str, port: int) -> int:
        """Start accepting clients; returns the bound port."""
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            lambda: ClientSide(self), host, port, backlog=2048, ssl=self.listen_tls
        )
        return self.server.sockets[0].getsockname()[1]

    async def probe_upstream(self, timeout: float = 3.0) -> bool:
        """Try one TCP connection to the upstream; say so (once) when it cannot be reached."""
        up = self.upstream
        try:
            async with asyncio.timeout(timeout):
                _, writer = await asyncio.open_connection(up.host, up.port)
        except (OSError, TimeoutError) as error:
            reason = f"upstream unavailable: {type(error).__name__}: {error}"[:200]
            self.health.failed(reason, client=False)
            return False
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
        return True

    def expect_injection(self) -> tuple[str, asyncio.Future[Relay]]:
        """A nonce for the recorder's own client; the future gets its relay once it connects."""
        nonce = secrets.token_hex(16)
        future: asyncio.Future[Relay] = asyncio.get_running_loop().create_future()
        self.injections[nonce] = future
        future.add_done_callback(lambda _: self.injections.pop(nonce, None))
        return nonce, future

    async def close(self) -> None:
        """Stop accepting and close every connection with 1001."""
        if self.server is not None:
            self.server.close()
        for relay in list(self.relays.values()):
            relay.going_away()
        for side in list(self.sides):
            if side.relay is not None and not side.relay.client.is_closing():
                side.relay.client.close()
        if self.server is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self.server.wait_closed()
