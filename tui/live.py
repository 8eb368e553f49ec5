"""Live mode: a client of a recorder's control endpoint (PROTOCOL.md §2).

:class:`LiveFeed` subscribes (``@@devtools/subscribe`` with ``from_seq``) in a reader thread with
an event loop of its own: it receives the frames, parses the JSON and builds the rows there, off
the screen's event loop, and queues them. The app calls :meth:`LiveFeed.drain` on a timer (every
~80 ms), so the screen is updated in batches however fast records arrive and a burst of frames
never holds up a keypress. Inject and mark go over a second (asyncio) connection so their
answers never queue behind the feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections import deque
from typing import Any

import websockets

from devtools import protocol
from devtools.errors import BadInput
from devtools.jsonutil import dumps, loads
from devtools.model import Mark, Snapshot
from devtools.tokens import bearer_header
from tui.rows import event_from_record, event_row, message_from_record, message_row
from tui.rowsource import LiveTimeline

CLOSE_TIMEOUT = 0.5
"""Seconds to wait for the recorder's closing handshake when the screen closes."""


class LiveError(BadInput):
    """The control endpoint cannot be reached, refused the token, or answered nonsense."""


def prepare(record: dict[str, Any]) -> tuple[str, Any] | None:
    """What a live record adds to the timeline, built off the screen's thread.

    Returns:
        ``(kind, value)``: an event or message :class:`~tui.rows.Row`, a
        :class:`~devtools.model.Snapshot`, a :class:`~devtools.model.Mark`, or an error text
        (``("error", text)``); ``None`` for records the screen does not show.
    """
    kind = record.get("kind")
    if kind == "event":
        return "event", event_row(event_from_record(record))
    if kind == "message":
        return "message", message_row(message_from_record(record))
    if kind == "snapshot" and isinstance(record.get("v"), int):
        return "snapshot", Snapshot(record["v"], record.get("state"), record.get("hash"))
    if kind == "mark" and isinstance(record.get("seq"), int):
        return "mark", Mark(record["seq"], str(record.get("label", "")))
    if record.get("type") == protocol.ERROR:
        return "error", str(record.get("error"))
    return None


class LiveFeed:
    """The records of a live recorder, received in a thread and buffered for batched display."""

    def __init__(self, url: str, token: str | None, timeline: LiveTimeline | None = None) -> None:
        self.url = url
        self.token = token
        self.timeline = timeline or LiveTimeline()
        self.pending: deque[tuple[str, Any]] = deque()
        """Prepared records waiting for :meth:`drain` (appended by the reader thread)."""
        self.received = 0
        """Records received so far."""
        self.connected = False
        self.error: str | None = None
        self._ids = itertools.count(1)
        self._control: Any = None
        self._control_lock = asyncio.Lock()
        self._feed: Any = None
        self._stopping = threading.Event()

    def _headers(self) -> dict[str, str]:
        return bearer_header(self.token) if self.token else {}

    async def _connect(self, **options: Any) -> Any:
        try:
            return await websockets.connect(
                self.url,
                additional_headers=self._headers(),
                max_size=None,
                open_timeout=5,
                close_timeout=CLOSE_TIMEOUT,
                **options,
            )
        except websockets.InvalidStatus as error:
            code = error.response.status_code
            why = "the token was refused" if code in (401, 403) else f"HTTP {code}"
            raise LiveError(f"cannot follow {self.url}: {why}") from None
        except (OSError, TimeoutError, websockets.InvalidURI, websockets.InvalidHandshake) as error:
            raise LiveError(f"cannot follow {self.url}: {error}") from None

    def read(self, from_seq: int | None = 1) -> None:
        """Subscribe and queue records until the connection ends or :meth:`close` (blocking:
        the app runs it in a worker thread, with an event loop of its own). A refused
        connection is kept in :attr:`error`."""
        asyncio.run(self._read(from_seq))

    async def _read(self, from_seq: int | None) -> None:
        if self._stopping.is_set():
            return
        try:
            ws = await self._connect(max_queue=1024)
        except LiveError as error:
            self.error = str(error)
            return
        self._feed = (asyncio.get_running_loop(), asyncio.current_task())
        self.connected = True
        try:
            if self._stopping.is_set():
                return
            await ws.send(dumps(protocol.subscribe_request(from_seq=from_seq)).decode())
            async for frame in ws:
                self._take(frame)
        except (websockets.ConnectionClosed, asyncio.CancelledError):
            pass
        finally:
            self.connected = False
            self._feed = None
            await ws.close()

    def _take(self, frame: str | bytes) -> None:
        """Parse a frame's records and queue what they add to the screen."""
        data = frame.encode() if isinstance(frame, str) else frame
        pending = self.pending
        for line in data.splitlines():
            if not line.strip():
                continue
            try:
                record = loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                self.received += 1
                prepared = prepare(record)
                if prepared is not None:
                    pending.append(prepared)

    async def run(self, from_seq: int | None = 1) -> None:
        """:meth:`read` in a thread, awaited (returns when the feed ends)."""
        await asyncio.to_thread(self.read, from_seq)

    def drain(self, limit: int | None = None) -> int:
        """Move queued records into the timeline; returns how many were applied.

        Each record is a prepared row or value, so this costs a list append or two per record.
        """
        count = 0
        timeline = self.timeline
        pending = self.pending
        while pending and (limit is None or count < limit):
            kind, value = pending.popleft()
            count += 1
            if kind == "event":
                timeline.add_event_row(value)
            elif kind == "message":
                timeline.add_message_row(value)
            elif kind == "snapshot":
                timeline.add_snapshot(value)
            elif kind == "mark":
                timeline.add_mark(value)
            else:
                self.error = value
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
        """Stop the feed (its thread ends within :data:`CLOSE_TIMEOUT`) and the control link."""
        self._stopping.set()
        feed = self._feed
        if feed is not None:
            loop, task = feed
            with contextlib.suppress(RuntimeError):  # its loop has just ended
                loop.call_soon_threadsafe(task.cancel)
        if self._control is not None:
            await self._control.close()
            self._control = None
