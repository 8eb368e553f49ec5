"""The recorder's link to the server's devtools channel (PROTOCOL.md §1).

Joins with ``@@devtools/subscribe`` (a snapshot, then every later event), records the hello's
server info, every snapshot and every event (with its hash, its cause mapped to the recorded
message ``seq``). When the channel drops it reconnects and rejoins; the new join snapshot tells
which events were missed, and those are recorded as a gap. ``dispatch`` sends an action through
the channel (the ``via: devtools`` inject), ``get_state`` asks for a snapshot now.

What the channel says goes to a :class:`Reports`: for one server, :class:`SessionReports`
records it in the session as it is; for one worker of several,
:class:`recorder.workers.WorkerReports` hands it to the merge of all workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
from collections.abc import Callable
from typing import Any, Protocol

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosedError
from websockets.frames import DATA_OPCODES, Frame, Opcode

from devtools import jsonutil, protocol
from devtools.tokens import bearer_header
from recorder.session import Session


class Reports(Protocol):
    """Where a link puts what its channel said."""

    def hello(self, server: dict[str, Any]) -> None:
        """The hello's ``server`` object."""

    def event(self, v: int, event: dict[str, Any], cause: Any, hash: str | None) -> None:
        """One event (``v`` greater than any reported before)."""

    def hash(self, v: int, hash: str | None) -> None:
        """The state hash after event ``v`` alone (a link that asked for ``hashes_only``)."""

    def snapshot(self, v: int, state: Any, hash: str | None, *, join: bool) -> None:
        """A snapshot the server sent unasked (``join``: the join point after a subscribe)."""

    def missed(self, start: int, end: int) -> None:
        """Events ``start..end`` happened while the channel was down."""

    def left(self) -> None:
        """The channel dropped (it reconnects)."""


class SessionReports:
    """One server's channel: everything recorded in the session as it is."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def hello(self, server: dict[str, Any]) -> None:
        self.session.server(server)

    def event(self, v: int, event: dict[str, Any], cause: Any, hash: str | None) -> None:
        self.session.event(v, event, cause, hash)

    def hash(self, v: int, hash: str | None) -> None:
        pass  # one server's link takes the events themselves (it never asks for hashes only)

    def snapshot(self, v: int, state: Any, hash: str | None, *, join: bool) -> None:
        self.session.snapshot(v, state, hash)

    def missed(self, start: int, end: int) -> None:
        self.session.gap("events", start, end, "devtools channel dropped")

    def left(self) -> None:
        pass


READ_EVERY = 0.05
"""Seconds a worker's devtools channel rests after a read that emptied the socket (see
:class:`_DirectConnection`); not while a request waits for its answer. Only when several
workers are followed (``rdt record --devtools URL`` / ``--bus``), where the wake-ups cost the
cluster; the one channel of ``--devtools-path`` reads at once, so its events are in the log
as soon as the traffic that caused them."""
DRAINED = 16 * 1024
"""A read of fewer bytes than this emptied the socket (a TLS record is at most 16 KiB)."""


class _DirectConnection(ClientConnection):
    """A client connection that hands each message to ``on_message`` as soon as its last
    frame is parsed, in the loop's read callback, and reads in batches.

    Where the CPU of following a worker's channel goes (bench/cluster.py): little into the
    messages, most into waking up for each of them. So: websockets' own connection queues a
    message and wakes the task reading it (a second turn of the event loop for each message);
    here the message is handled at once, as :meth:`DevtoolsLink._received` is synchronous
    anyway. And after a read that emptied the socket the connection stops reading for
    :data:`READ_EVERY` seconds: the events of that time come in one read, one wake-up (the
    recorder's log is written every 100 ms, the bus read every 50 ms), unless ``waiting()``
    says an answer is awaited (an inject through the channel, a state asked for): then it
    reads on at once. Handshake, pings, pongs and the closing handshake stay websockets' own.
    """

    def __init__(
        self,
        protocol: Any,
        *,
        on_message: Callable[[bytes], None],
        waiting: Callable[[], bool],
        rest: float = 0.0,
        **options: Any,
    ) -> None:
        super().__init__(protocol, **options)
        self._on_message = on_message
        self._waiting = waiting
        self._rest = rest
        self._fragments: list[bytes] = []
        self._resting: asyncio.TimerHandle | None = None
        self.failure: Exception | None = None
        """What ``on_message`` raised (the connection is closed then)."""

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if (
            self._rest > 0
            and len(data) < DRAINED
            and self._resting is None
            and not self._waiting()
            and not self.transport.is_closing()
        ):
            self.transport.pause_reading()
            self._resting = self.loop.call_later(self._rest, self.read_now)

    def read_now(self) -> None:
        """Stop resting: read what came, and on."""
        if self._resting is not None:
            self._resting.cancel()
            self._resting = None
            self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._resting is not None:
            self._resting.cancel()
            self._resting = None
        super().connection_lost(exc)

    def process_event(self, event: Any) -> None:
        if (
            self.response is None
            or not isinstance(event, Frame)
            or event.opcode not in DATA_OPCODES
        ):
            super().process_event(event)  # the handshake's response, pongs
            return
        if not event.fin or event.opcode is Opcode.CONT:
            self._fragments.append(bytes(event.data))
            if not event.fin:
                return
            data, self._fragments = b"".join(self._fragments), []
        else:
            data = bytes(event.data)
        if self.failure is not None:
            return
        try:
            self._on_message(data)
        except Exception as error:
            self.failure = error
            self.transport.close()

    async def closed(self) -> None:
        """Wait until the connection is closed; raise why, unless it closed normally."""
        await self.wait_closed()
        if self.failure is not None:
            raise self.failure
        if isinstance(self.protocol.close_exc, ConnectionClosedError):
            raise self.protocol.close_exc


class DevtoolsLink:
    """Keeps the devtools channel joined while the recorder runs.

    Args:
        session: the recording (its gaps, and the records of :class:`SessionReports`).
        url: ``ws://host:port/devtools``.
        token: sent as ``Authorization: Bearer TOKEN``.
        retry: seconds between reconnection attempts.
        reports: where what the channel says goes (default: :class:`SessionReports`).
    """

    def __init__(
        self,
        session: Session,
        url: str,
        token: str,
        *,
        retry: float = 0.5,
        ssl: Any = None,
        reports: Reports | None = None,
        rest: float = 0.0,
        hashes_only: bool = False,
    ) -> None:
        self.session = session
        self.rest = rest
        self.hashes_only = hashes_only
        """Ask the server for each event's hash without the event (the events come from a
        bus); a server that does not know the option sends the events, read as ever."""
        """Seconds to rest after a read that emptied the socket (:data:`READ_EVERY` for a
        worker of several; 0: read at once)."""
        self.reports: Reports = reports or SessionReports(session)
        self.ssl = ssl
        """The ``ssl.SSLContext`` for a ``wss://`` channel (``None``: websockets' default)."""
        self.url = url
        self.token = token
        self.retry = retry
        self.joined = asyncio.Event()
        """Set while the channel is joined (the join snapshot arrived)."""
        self.error: str | None = None
        """Why the last attempt failed, if it did."""
        self._ws: Any = None
        self._pending: dict[Any, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._seen_v: int | None = None
        self._stopping = False

    async def run(self) -> None:
        """Connect, join and record until :meth:`close`; reconnect when the channel drops."""
        while not self._stopping:
            try:
                async with websockets.connect(
                    self.url,
                    additional_headers=bearer_header(self.token),
                    proxy=None,
                    max_size=None,
                    open_timeout=5,
                    # no permessage-deflate: compressing every event frame costs the server
                    # (the production process) more CPU than anything else the channel does
                    compression=None,
                    create_connection=functools.partial(
                        _DirectConnection,
                        on_message=self._received,
                        waiting=lambda: bool(self._pending),
                        rest=self.rest,
                    ),
                    **({"ssl": self.ssl} if self.ssl is not None else {}),
                ) as ws:
                    self._ws = ws
                    self.error = None
                    subscribe = protocol.subscribe_request(batch=True, hashes_only=self.hashes_only)
                    await ws.send(jsonutil.dumps(subscribe).decode())
                    await ws.closed()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.error = f"devtools channel: {type(error).__name__}: {error}"
            finally:
                self._ws = None
                if self.joined.is_set():
                    self.reports.left()
                self.joined.clear()
                for future in self._pending.values():
                    if not future.done():
                        future.set_result(protocol.error("devtools channel closed"))
                self._pending.clear()
            if not self._stopping:
                await asyncio.sleep(self.retry)

    def read_now(self) -> None:
        """Stop resting and read what the channel has already received (for a flush)."""
        ws = self._ws
        if isinstance(ws, _DirectConnection):
            ws.read_now()

    def _received(self, frame: str | bytes) -> None:
        try:
            message = jsonutil.loads(frame)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        kind = message.get("type")
        if kind == protocol.EVENT:
            self._event(message)
        elif kind == protocol.EVENTS:  # several events in one message (we subscribe with batch)
            events = message.get("events")
            for item in events if isinstance(events, list) else ():
                if isinstance(item, dict) and item.get("type") == protocol.EVENT:
                    self._event(item)
        elif kind == protocol.HASHES:  # we asked for hashes_only
            pairs = message.get("hashes")
            for pair in pairs if isinstance(pairs, list) else ():
                if isinstance(pair, list) and len(pair) == 2:
                    self._hash(*pair)
        elif kind == protocol.SNAPSHOT:
            request_id = message.get("id")
            if request_id is not None and request_id in self._pending:
                self._pending.pop(request_id).set_result(message)
                return
            v = message.get("v")
            if not isinstance(v, int):
                return
            join = not self.joined.is_set()
            if self._seen_v is not None and v > self._seen_v:
                self.reports.missed(self._seen_v + 1, v)
            if self._seen_v is None or v != self._seen_v or join:
                self.reports.snapshot(v, message.get("state"), message.get("hash"), join=join)
            self._seen_v = v if self._seen_v is None else max(v, self._seen_v)
            self.joined.set()
        elif kind == protocol.HELLO:
            server = message.get("server")
            if isinstance(server, dict):
                self.reports.hello(server)
        elif kind in (protocol.DISPATCHED, protocol.ERROR):
            future = self._pending.pop(message.get("id"), None)
            if future is not None and not future.done():
                future.set_result(message)

    def _event(self, message: dict[str, Any]) -> None:
        v = message.get("v")
        event = message.get("event")
        if not isinstance(v, int) or not isinstance(event, dict):
            return
        if self._seen_v is not None and v <= self._seen_v:
            return  # already recorded before a reconnect
        self._seen_v = v
        self.reports.event(v, event, message.get("cause"), message.get("hash"))

    def _hash(self, v: Any, digest: Any) -> None:
        if not isinstance(v, int) or isinstance(v, bool) or not isinstance(digest, str | None):
            return
        if self._seen_v is not None and v <= self._seen_v:
            return  # already recorded before a reconnect
        self._seen_v = v
        self.reports.hash(v, digest)

    async def dispatch(self, action: dict[str, Any], *, timeout: float = 10.0) -> dict[str, Any]:
        """Send ``action`` through the channel; the server's ``dispatched`` (or error) answer."""
        return await self._request(
            lambda request_id: protocol.dispatch_request(request_id, action), timeout
        )

    async def get_state(self, *, timeout: float = 10.0) -> dict[str, Any]:
        """Ask for a snapshot now; the server's ``snapshot`` (with ``v``, ``state``, ``hash``)
        or an ``error`` answer."""
        return await self._request(protocol.get_state_request, timeout)

    async def _request(self, build: Any, timeout: float) -> dict[str, Any]:
        try:
            async with asyncio.timeout(timeout):
                await self.joined.wait()
        except TimeoutError:
            return protocol.error(self.error or "devtools channel not joined")
        ws = self._ws
        if ws is None:
            return protocol.error(self.error or "devtools channel not joined")
        request_id = f"rdt-{next(self._ids)}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await ws.send(jsonutil.dumps(build(request_id)).decode())
            ws.read_now()
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            return protocol.error("no answer from the server's devtools channel")
        except Exception as error:
            return protocol.error(f"devtools channel: {error}")
        finally:
            self._pending.pop(request_id, None)

    async def close(self) -> None:
        """Stop reconnecting and close the channel."""
        self._stopping = True
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()
