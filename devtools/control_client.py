"""A client of a recorder's control endpoint (PROTOCOL.md §2): the requests, one connection.

``rdt inject`` and the TUI's live mode both talk to the endpoint through this module:
:func:`connect` opens a connection (the token as a bearer header; a refused or unreachable
endpoint is one :class:`ControlError` line), and :class:`ControlClient` sends requests on one
connection it keeps (inject, mark) and waits for each answer::

    async with ControlClient("ws://127.0.0.1:8766/", token) as client:
        answer = await client.inject({"type": "order/create", "customer": "ACME"})

The live feed's own subscription (``@@devtools/subscribe``) uses :func:`connect` too, on a
connection of its own, so that answers never queue behind the feed.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from typing import Any

import websockets

from devtools import protocol
from devtools.errors import BadInput
from devtools.jsonutil import dumps, loads
from devtools.tokens import bearer_header

__all__ = ["CLOSE_TIMEOUT", "ControlClient", "ControlError", "ControlRefused", "connect"]

OPEN_TIMEOUT = 5.0
"""Seconds to wait for the endpoint's handshake."""
CLOSE_TIMEOUT = 0.5
"""Seconds to wait for the endpoint's closing handshake."""


class ControlError(BadInput):
    """The control endpoint cannot be reached, refused the token, or answered nonsense."""


class ControlRefused(ControlError):
    """The endpoint answered a request with ``@@devtools/error``."""

    def __init__(self, message: str, answer: dict[str, Any]) -> None:
        super().__init__(message)
        self.answer = answer
        """The error answer as received."""


async def connect(
    url: str, token: str | None, *, open_timeout: float = OPEN_TIMEOUT, **options: Any
) -> Any:
    """Open a websocket to the control endpoint at ``url`` (``options`` go to websockets).

    Raises:
        ControlError: the endpoint cannot be reached or refused the handshake (one line).
    """
    headers = bearer_header(token) if token else {}
    options.setdefault("close_timeout", CLOSE_TIMEOUT)
    try:
        return await websockets.connect(
            url, additional_headers=headers, proxy=None, open_timeout=open_timeout, **options
        )
    except websockets.InvalidStatus as error:
        code = error.response.status_code
        why = f"the token was refused (HTTP {code})" if code in (401, 403) else f"HTTP {code}"
        raise ControlError(f"the control endpoint {url} refused the handshake: {why}") from None
    except (OSError, TimeoutError, websockets.InvalidURI, websockets.InvalidHandshake) as error:
        raise ControlError(f"cannot reach the control endpoint {url}: {error}") from None


class ControlClient:
    """Requests to one control endpoint over one connection, opened on first use.

    Requests are sent one at a time (a lock), each waiting for its answer: the first frame of
    the answer's type whose ``id`` is the request's (or absent). Not thread-safe: use it from
    one event loop.
    """

    def __init__(self, url: str, token: str | None, *, id_prefix: str = "rdt") -> None:
        self.url = url
        self.token = token
        # Unique per client: the recorder answers a repeated id from its cache (a retry made
        # idempotent), so two `rdt inject` runs must never both send "rdt-1".
        session = secrets.token_hex(4)
        self._ids = (f"{id_prefix}-{session}-{n}" for n in itertools.count(1))
        self._ws: Any = None
        self._lock: asyncio.Lock | None = None

    async def __aenter__(self) -> ControlClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request(
        self, message: dict[str, Any], answer: str, *, timeout: float = 10.0
    ) -> dict[str, Any]:
        """Send ``message`` and return the first answer of type ``answer`` for it.

        Raises:
            ControlRefused: the endpoint answered ``@@devtools/error``.
            ControlError: it cannot be reached, or closed the connection.
            TimeoutError: no answer within ``timeout`` seconds.
        """
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._ws is None:
                self._ws = await connect(self.url, self.token, max_size=None)
            try:
                await self._ws.send(dumps(message).decode())
                async with asyncio.timeout(timeout):
                    while True:
                        try:
                            reply = loads(await self._ws.recv())
                        except ValueError:
                            continue
                        if not isinstance(reply, dict):
                            continue
                        kind = reply.get("type")
                        if kind == protocol.ERROR:
                            raise ControlRefused(
                                f"the recorder refused: {reply.get('error')}", reply
                            )
                        if kind == answer and reply.get("id") in (None, message.get("id")):
                            return reply
            except websockets.ConnectionClosed as error:
                self._ws = None
                raise ControlError(f"the control endpoint {self.url} closed: {error}") from None

    async def inject(
        self, action: dict[str, Any], *, via: str = "devtools", timeout: float = 30.0
    ) -> dict[str, Any]:
        """Inject ``action`` into the live server; returns the ``@@devtools/injected`` answer
        (``ok`` false when the server refused it)."""
        request = protocol.inject_request(next(self._ids), action, via=via)  # type: ignore[arg-type]
        return await self.request(request, protocol.INJECTED, timeout=timeout)

    async def mark(self, label: str, *, timeout: float = 10.0) -> dict[str, Any]:
        """Put a mark on the recorder's timeline; returns the ``@@devtools/marked`` answer."""
        return await self.request(protocol.mark_request(label), protocol.MARKED, timeout=timeout)

    async def close(self) -> None:
        """Close the connection (a later request opens a new one)."""
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()
