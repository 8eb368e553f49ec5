"""Live mode: a client of a recorder's control endpoint (PROTOCOL.md §2).

:class:`LiveFeed` subscribes (``@@devtools/subscribe`` with ``from_seq``) and buffers every
record it receives; the app calls :meth:`LiveFeed.drain` on a timer (every ~80 ms) so the screen
is updated in batches however fast records arrive. Inject and mark go over a second connection
so their answers never queue behind the feed.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from typing import Any

import websockets

from devtools import protocol
from devtools.errors import BadInput
from devtools.jsonutil import dumps, loads
from devtools.model import Mark, Snapshot
from devtools.tokens import bearer_header
from tui.rows import event_from_record, message_from_record
from tui.rowsource import LiveTimeline


class LiveError(BadInput):
    """The control endpoint cannot be reached, refused the token, or answered nonsense."""


class LiveFeed:
    """The records of a live recorder, buffered for batched display."""

    def __init__(self, url: str, token: str | None, timeline: LiveTimeline | None = None) -> None:
        self.url = url
        self.token = token
        self.timeline = timeline or LiveTimeline()
        self.pending: deque[dict[str, Any]] = deque()
        self.received = 0
        """Records received so far."""
        self.connected = False
        self.error: str | None = None
        self._ids = itertools.count(1)
        self._control: Any = None
        self._control_lock = asyncio.Lock()

    def _headers(self) -> dict[str, str]:
        return bearer_header(self.token) if self.token else {}

    async def _connect(self) -> Any:
        try:
            return await websockets.connect(
                self.url, additional_headers=self._headers(), max_size=None, open_timeout=5
            )
        except websockets.InvalidStatus as error:
            code = error.response.status_code
            why = "the token was refused" if code in (401, 403) else f"HTTP {code}"
            raise LiveError(f"cannot follow {self.url}: {why}") from None
        except (OSError, TimeoutError, websockets.InvalidURI, websockets.InvalidHandshake) as error:
            raise LiveError(f"cannot follow {self.url}: {error}") from None

    async def run(self, from_seq: int | None = 1) -> None:
        """Subscribe and buffer records until the connection ends (returns then)."""
        try:
            ws = await self._connect()
        except LiveError as error:
            self.error = str(error)
            return
        self.connected = True
        try:
            await ws.send(dumps(protocol.subscribe_request(from_seq=from_seq)).decode())
            async for frame in ws:
                data = frame.encode() if isinstance(frame, str) else frame
                for line in data.splitlines():
                    if not line.strip():
                        continue
                    try:
                        record = loads(line)
                    except ValueError:
                        continue
                    if isinstance(record, dict):
                        self.pending.append(record)
                        self.received += 1
        except websockets.ConnectionClosed:
            pass
        finally:
            self.connected = False
            await ws.close()

    def drain(self, limit: int | None = None) -> int:
        """Move buffered records into the timeline; returns how many records were applied."""
        count = 0
        timeline = self.timeline
        pending = self.pending
        while pending and (limit is None or count < limit):
            record = pending.popleft()
            count += 1
            kind = record.get("kind")
            if kind == "event":
                timeline.add_event(event_from_record(record))
            elif kind == "message":
                timeline.add_message(message_from_record(record))
            elif kind == "snapshot" and isinstance(record.get("v"), int):
                timeline.add_snapshot(
                    Snapshot(record["v"], record.get("state"), record.get("hash"))
                )
            elif kind == "mark" and isinstance(record.get("seq"), int):
                timeline.add_mark(Mark(record["seq"], str(record.get("label", ""))))
            elif record.get("type") == protocol.ERROR:
                self.error = str(record.get("error"))
        return count

    async def request(self, message: dict[str, Any], answer: str, timeout: float = 10) -> dict:
        """Send ``message`` on the control connection and wait for the ``answer`` type."""
        async with self._control_lock:
            if self._control is None:
                self._control = await self._connect()
            await self._control.send(dumps(message).decode())
            async with asyncio.timeout(timeout):
                while True:
                    reply = loads(await self._control.recv())
                    if not isinstance(reply, dict):
                        continue
                    if reply.get("type") == protocol.ERROR:
                        raise LiveError(f"the recorder refused: {reply.get('error')}")
                    if reply.get("type") == answer and reply.get("id") in (None, message.get("id")):
                        return reply

    async def inject(self, action: dict[str, Any], via: str = "devtools") -> dict[str, Any]:
        """Inject ``action``; returns the ``@@devtools/injected`` answer."""
        request = protocol.inject_request(f"tui-{next(self._ids)}", action, via=via)  # type: ignore[arg-type]
        return await self.request(request, protocol.INJECTED)

    async def mark(self, label: str) -> dict[str, Any]:
        """Put a mark on the recorder's timeline; returns the ``@@devtools/marked`` answer."""
        return await self.request(protocol.mark_request(label), protocol.MARKED)

    async def close(self) -> None:
        if self._control is not None:
            await self._control.close()
            self._control = None
