"""Live mode: a client of a recorder's control endpoint (PROTOCOL.md §2).

:class:`LiveFeed` subscribes (``@@devtools/subscribe`` with ``from_seq``) in a reader thread with
an event loop of its own: it receives the frames, parses the JSON and builds the rows there, off
the screen's event loop, and queues them. The app calls :meth:`LiveFeed.drain` on a timer (every
~80 ms), so the screen is updated in batches however fast records arrive and a burst of frames
never holds up a keypress. Inject and mark go through a
:class:`~devtools.control_client.ControlClient` (a second connection) so their answers never
queue behind the feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from typing import Any

import websockets

from devtools import protocol
from devtools.control_client import CLOSE_TIMEOUT, ControlClient, ControlError, connect
from devtools.jsonutil import dumps, loads
from devtools.model import Mark, Snapshot, WorkerSnapshot
from tui.rows import event_from_record, event_row, message_from_record, message_row
from tui.rowsource import LiveTimeline
from tui.workers import WorkerAlert

__all__ = ["CLOSE_TIMEOUT", "LiveError", "LiveFeed", "prepare"]

LiveError = ControlError
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
    if kind == "divergence":
        alert = WorkerAlert.from_record(record)
        return ("alert", alert) if alert is not None else None
    if (
        kind == "worker_snapshot"
        and isinstance(record.get("v"), int)
        and isinstance(record.get("worker"), int)
    ):
        state, digest = record.get("state"), record.get("hash")
        return "worker_snapshot", WorkerSnapshot(record["worker"], record["v"], state, digest)
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
        self.messages_received = 0
        self.events_received = 0
        self.recorder_counts: tuple[int, int] | None = None
        """The recorder's ``(messages, events)`` at its last ``@@devtools/status`` answer
        (:meth:`poll_status`); ``None`` until one came."""
        self.connected = False
        self.error: str | None = None
        self.alerts: deque[WorkerAlert] = deque()
        """Workers' disagreements applied by :meth:`drain` and not yet taken by the screen."""
        self.workers_changed = False
        """:meth:`drain` applied an alert or a worker's state (the screen re-reads details)."""
        self.control = ControlClient(url, token, id_prefix="tui")
        """Inject and mark requests (a connection of their own, opened on first use)."""
        self._feed: Any = None
        self._stopping = threading.Event()

    async def _connect(self, **options: Any) -> Any:
        return await connect(self.url, self.token, max_size=None, **options)

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
                kind = record.get("kind")
                if kind == "message":
                    self.messages_received += 1
                elif kind == "event":
                    self.events_received += 1
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
            elif kind == "alert":
                timeline.add_alert(value)
                self.alerts.append(value)
                self.workers_changed = True
            elif kind == "worker_snapshot":
                timeline.add_worker_snapshot(value)
                self.workers_changed = True
            else:
                self.error = value
        return count

    def behind(self) -> int | None:
        """How many records the screen does not show yet: those received and queued for
        :meth:`drain`, plus the messages and events the recorder had counted at its last status
        answer that have not arrived (a lower bound: the recorder may have recorded more since).
        ``None`` until the recorder's counts are known."""
        counts = self.recorder_counts
        if counts is None:
            return None
        messages, events = counts
        unreceived = max(0, messages - self.messages_received)
        unreceived += max(0, events - self.events_received)
        return len(self.pending) + unreceived

    async def poll_status(self, timeout: float = 5) -> None:
        """Ask the recorder for its counters (``@@devtools/status``) and keep them in
        :attr:`recorder_counts`; kept as they were when the recorder cannot answer."""
        with contextlib.suppress(LiveError, OSError, TimeoutError):
            answer = await self.control.request(
                protocol.status_request(), protocol.STATUS, timeout=timeout
            )
            messages, events = answer.get("messages"), answer.get("events")
            if isinstance(messages, int) and isinstance(events, int):
                self.recorder_counts = (messages, events)

    async def request(self, message: dict[str, Any], answer: str, timeout: float = 10) -> dict:
        """Send ``message`` on the control connection and wait for the ``answer`` type."""
        return await self.control.request(message, answer, timeout=timeout)

    async def inject(self, action: dict[str, Any], via: str = "devtools") -> dict[str, Any]:
        """Inject ``action``; returns the ``@@devtools/injected`` answer."""
        return await self.control.inject(action, via=via, timeout=10)

    async def mark(self, label: str) -> dict[str, Any]:
        """Put a mark on the recorder's timeline; returns the ``@@devtools/marked`` answer."""
        return await self.control.mark(label)

    async def close(self) -> None:
        """Stop the feed (its thread ends within :data:`CLOSE_TIMEOUT`) and the control link."""
        self._stopping.set()
        feed = self._feed
        if feed is not None:
            loop, task = feed
            with contextlib.suppress(RuntimeError):  # its loop has just ended
                loop.call_soon_threadsafe(task.cancel)
        await self.control.close()
