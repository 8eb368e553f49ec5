"""The reference reducer-server runtime: middleware → events → reducer, and the devtools channel.

Clients connect over websockets and send JSON messages with a ``type``. Each message runs
through the middleware chain (:mod:`devtools.server_context`), one message at a time, so event
numbers ``v`` form a total order without gaps. What the chain emits is numbered, stamped with
``ts`` (the injected clock, integer ns) and ``sender``, folded by the pure root reducer, and
published; replies go to one client, broadcasts to all. Bad frames and failing middleware or
reducers get an error reply to that client alone; the server keeps going with its state unchanged.

At ``devtools_path`` the server speaks the devtools channel of PROTOCOL.md §1: the token is
checked before the websocket upgrade (HTTP 401), then hello, subscribe (the join protocol),
get-state and dispatch. Every connection writes through its own bounded queue, so a slow client
or devtools subscriber never stalls the others: when its queue overflows it is disconnected
with a close reason instead. A message for a connection with nothing queued and room in its
socket buffer is written at once, without a turn of its writer task (most are: the queue only
fills for a reader that falls behind).

The join is atomic by construction: committing a message's events, and taking a snapshot plus
registering a subscriber, are both synchronous code with no ``await`` inside, so on the event loop
one cannot interleave with the other.

With a ``bus`` (:class:`devtools.bus_protocol.EventBus`, e.g. :class:`devtools.bus.NatsBus`)
the server is one worker of several: instead of committing locally it publishes a message's
events to the bus (retrying the middleware against the newer state when another worker
published first), folds every event of the bus with :meth:`ReducerServer.fold`, and delivers
the message's replies once its own events are folded here (PROTOCOL.md §9).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from devtools import jsonutil, protocol
from devtools.bus_protocol import Conflict, EventBus, Published
from devtools.canonical import CanonicalError
from devtools.frames import parse_frame
from devtools.server_context import (
    BROADCAST,
    Context,
    Emitted,
    Middleware,
    Reducer,
    Rejected,
)
from devtools.state_hasher import StateHasher
from devtools.tasks import TaskGroup
from devtools.tokens import authorized

__all__ = [
    "DEVTOOLS_SENDER",
    "ERROR_TYPE",
    "Outcome",
    "ReducerServer",
    "ServerHandle",
    "app_error",
]

log = logging.getLogger(__name__)

DEVTOOLS_SENDER = "devtools"
"""The sender id of actions dispatched through the devtools channel."""

ERROR_TYPE = "error"
"""The ``type`` of the error reply an application client gets."""

CLOSE_TOO_SLOW = 1008
"""The close code for a connection whose outgoing queue overflowed."""

BUS_ATTEMPTS = 64
"""How often a message's middleware runs again after other workers published first, at least
(it goes on while :data:`BUS_PATIENCE` has not passed, up to :data:`BUS_MAX_ATTEMPTS`)."""

BUS_PATIENCE = 5.0
"""Seconds a message keeps trying after losing :data:`BUS_ATTEMPTS` races."""

BUS_MAX_ATTEMPTS = 1000
"""The most runs of one message's middleware on a bus."""


def app_error(error: str, *, n: int | None = None, request: Any = None) -> dict[str, Any]:
    """The error reply an application client gets: ``{"type": "error", "error", "n", …}``.

    Args:
        error: one line saying what was wrong.
        n: the 1-based index of the offending message on the connection.
        request: the offending message's ``type``, when it had one.
    """
    message: dict[str, Any] = {"type": ERROR_TYPE, "error": error, "n": n}
    if request is not None:
        message["request"] = request
    return message


SEND_AFTER = 0.0002
"""Seconds between folding an event and hashing and sending it to the devtools subscribers
(see :meth:`ReducerServer._publish`)."""

HASHES_AFTER = 0.05
"""Seconds a ``hashes_only`` subscriber's hashes wait to go out together: what it asked for
is a few bytes an event, and one message every 50 ms costs it and the server far less than
one an event (it still has them before anything else the server sends it)."""


def _state_hash(hasher: StateHasher, state: Any) -> str | None:
    """The state hash of PROTOCOL.md §5, or ``None`` for a state JSON cannot carry."""
    try:
        return hasher.hash(state)
    except CanonicalError as error:  # a state the reducer produced that JSON cannot carry
        log.warning("state cannot be hashed: %s", error)
        return None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one message did: its events' numbers, or the error it was refused with."""

    ok: bool
    events: tuple[int, ...] = ()
    error: str | None = None
    replies: tuple[dict[str, Any], ...] = ()
    """The messages addressed to the sender (used to answer a devtools dispatch)."""


@dataclass(eq=False, slots=True)
class _Peer:
    """One connection with its bounded outgoing queue."""

    id: str
    ws: ServerConnection
    queue: asyncio.Queue[bytes | None]
    connection: str | None = None
    """The ``X-Rdt-Connection`` id its handshake carried."""
    n: int = 0
    dropped: bool = False
    batch: bool = False
    """A devtools subscriber that takes several events in one ``@@devtools/events``."""
    writer: asyncio.Task[Any] | None = field(default=None)
    sending: bool = False
    """Its writer task is sending a message it took from the queue."""
    hashes_only: bool = False
    """A devtools subscriber that takes ``[v, hash]`` pairs instead of the events."""
    hashes: list[tuple[int, str | None]] = field(default_factory=list)
    """Its pairs waiting for the next ``@@devtools/hashes``."""


@dataclass(frozen=True, slots=True)
class _EventOut:
    """One folded event as the subscribers get it."""

    v: int
    digest: str | None
    data: bytes | None
    snap: bytes | None


def _takes_batches(peer: _Peer) -> bool:
    return peer.batch and not peer.hashes_only


class ReducerServer:
    """A reducer-based websocket server with the devtools channel (see the module doc).

    Args:
        reducer: the pure root reducer, ``reducer(state, event) -> state``.
        middleware: the middleware chain, outermost first.
        name, version: what the devtools hello reports.
        token: the devtools channel's bearer token.
        devtools_path: where the devtools channel is served.
        hash_every: send the state hash with every K-th event (``v % K == 0``); 0 never.
        snapshot_every: also send a snapshot to subscribers after every K-th event.
        clock: integer nanoseconds; events' ``ts`` come from here.
        queue_size: the most messages waiting for one connection before it is dropped.
        allow_origins: ``Origin`` values the devtools channel accepts; a handshake carrying
            any other ``Origin`` header is refused with 403 (a web page cannot join it).
        bus: make this server one worker on an event bus (see the module doc); ``None``: alone.
    """

    def __init__(
        self,
        reducer: Reducer,
        middleware: Sequence[Middleware] = (),
        *,
        name: str,
        version: str,
        token: str,
        devtools_path: str = "/devtools",
        hash_every: int = 1,
        snapshot_every: int | None = None,
        clock: Callable[[], int] = time.time_ns,
        queue_size: int = 10_000,
        allow_origins: Sequence[str] = (),
        bus: EventBus | None = None,
    ) -> None:
        if not token:
            raise ValueError("the devtools channel needs a non-empty token")
        self.reducer = reducer
        self.middleware = tuple(middleware)
        self.name = name
        self.version = version
        self.devtools_path = devtools_path
        self.hash_every = hash_every
        self.snapshot_every = snapshot_every
        self.clock = clock
        self.queue_size = queue_size
        self._token = token
        self.allow_origins = tuple(allow_origins)
        self.state: Any = reducer(None, {"type": "@@INIT"})
        self.v = 0
        self._hash_cache: tuple[int, str | None] | None = None
        self._unsent: list[Emitted] = []  # events not yet sent to the subscribers
        self._send_timer: asyncio.TimerHandle | None = None
        self._hashes_timer: asyncio.TimerHandle | None = None
        self._hasher = StateHasher()  # successive states share structure: reuse what did not change
        self._lock = asyncio.Lock()
        self._clients: dict[str, _Peer] = {}
        self._subscribers: dict[str, _Peer] = {}
        self._ids: dict[str, int] = {}
        self._tasks = TaskGroup()
        self.bus = bus
        self.conflicts = 0
        """How often another worker published first and a message ran again (bus mode)."""

    @property
    def worker_id(self) -> str | None:
        """This worker's id on the bus (``None`` without one)."""
        return None if self.bus is None else self.bus.worker_id

    @property
    def token(self) -> str:
        """The devtools channel's token (for the command that prints it to the user)."""
        return self._token

    # ------------------------------------------------------------------ state

    def state_hash(self) -> str | None:
        """The hash of the current state (cached per ``v``)."""
        if self._hash_cache is None or self._hash_cache[0] != self.v:
            self._hash_cache = (self.v, _state_hash(self._hasher, self.state))
        return self._hash_cache[1]

    @property
    def clients(self) -> list[str]:
        """The ids of the connected application clients."""
        return list(self._clients)

    # ------------------------------------------------------------------ processing

    async def process(
        self,
        sender: str,
        message: dict[str, Any],
        *,
        cause: dict[str, Any] | None = None,
        n: int | None = None,
    ) -> Outcome:
        """Run ``message`` from ``sender`` through the middleware and commit what it caused.

        Messages are processed one at a time. A rejection or an exception discards everything
        the message did and returns a failed outcome; it never raises.
        """
        if self.bus is not None:
            return await self._process_on_bus(self.bus, sender, message, cause=cause, n=n)
        async with self._lock:
            ctx = await self._run(sender, message, cause, n)
            if isinstance(ctx, Outcome):
                return ctx
            self._commit(ctx)
            return Outcome(
                ok=True,
                events=tuple(e.event["v"] for e in ctx.emitted),
                replies=tuple(m for target, m in ctx.out if target == sender),
            )

    async def _run(
        self, sender: str, message: dict[str, Any], cause: dict[str, Any] | None, n: int | None
    ) -> Context | Outcome:
        """Run the middleware chain against the current state: its context, or why it failed."""
        ctx = Context(
            sender=sender,
            state=self.state,
            v=self.v,
            reducer=self.reducer,
            clock=self.clock,
            cause=cause,
            n=n,
        )
        try:
            await self._run_chain(ctx, message, 0)
        except Rejected as rejected:
            return Outcome(ok=False, error=rejected.error)
        except Exception as error:
            log.exception("message %r from %s failed", message.get("type"), sender)
            return Outcome(ok=False, error=f"internal error: {type(error).__name__}: {error}")
        return ctx

    async def _process_on_bus(
        self,
        bus: EventBus,
        sender: str,
        message: dict[str, Any],
        *,
        cause: dict[str, Any] | None,
        n: int | None,
    ) -> Outcome:
        """:meth:`process` as one worker of several: publish, fold, then deliver."""
        async with self._lock:
            started = time.monotonic()
            for attempt in range(BUS_MAX_ATTEMPTS):
                if attempt >= BUS_ATTEMPTS and time.monotonic() - started > BUS_PATIENCE:
                    break
                if bus.failure is not None:
                    return Outcome(ok=False, error=bus.failure)
                ctx = await self._run(sender, message, cause, n)
                if isinstance(ctx, Outcome):
                    return ctx
                replies = tuple(m for target, m in ctx.out if target == sender)
                if not ctx.emitted:
                    self._deliver(ctx.out, after=ctx.v)
                    return Outcome(ok=True, replies=replies)
                published = await bus.append(ctx.emitted, conflicts=attempt)
                if isinstance(published, Conflict):
                    self.conflicts += 1
                    await bus.wait_folded(published.wait_for)
                    continue
                if not isinstance(published, Published):
                    return Outcome(ok=False, error=published.error)
                if not await bus.wait_folded(published.vs[-1]):
                    return Outcome(
                        ok=False,
                        error=bus.failure
                        or f"bus: event v={published.vs[-1]} is stored but not folded here yet",
                    )
                self._deliver(ctx.out, after=published.vs[-1])
                return Outcome(ok=True, events=published.vs, replies=replies)
            return Outcome(
                ok=False,
                error=f"bus: other workers published first {attempt} times in a row "
                f"({time.monotonic() - started:.1f} s)",
            )

    def fold(self, v: int, event: dict[str, Any] | None, cause: dict[str, Any] | None) -> None:
        """Apply event ``v`` from the bus and stream it to the devtools subscribers.

        Synchronous on purpose (the join rule). ``event`` ``None`` is a stream message that is
        no event (every worker skips it alike). A reducer that raises leaves the state as it
        was: this worker's hash then shows where it parts from the others.
        """
        if event is None:
            self.v = v
            return
        try:
            state = self.reducer(self.state, event)
        except Exception:
            log.exception("the reducer failed on event v=%d (%r)", v, event.get("type"))
            state = self.state
        self.state = state
        self.v = v
        if self._subscribers:
            self._publish(Emitted(event, state, cause))

    def adopt(self, v: int, state: Any) -> None:
        """Start from another worker's snapshot: the state after event ``v``."""
        self.state = state
        self.v = v
        self._hash_cache = None

    def deliver_broadcast(self, message: dict[str, Any]) -> None:
        """Send another worker's broadcast to this worker's clients."""
        data = self._encode(message)
        if data is not None:
            for peer in list(self._clients.values()):
                self._enqueue(peer, data)

    async def _run_chain(self, ctx: Context, message: dict[str, Any], index: int) -> None:
        if index == len(self.middleware):
            ctx.emit(message)
            return
        await self.middleware[index](ctx, message, functools.partial(self._next, ctx, index + 1))

    async def _next(self, ctx: Context, index: int, message: dict[str, Any]) -> None:
        await self._run_chain(ctx, message, index)

    def _commit(self, ctx: Context) -> None:
        """Make ``ctx``'s events the server's and deliver its messages. Synchronous on purpose."""
        if ctx.emitted:
            self.state = ctx.state
            self.v = ctx.v
            if self._subscribers:
                for emitted in ctx.emitted:
                    self._publish(emitted)
        self._deliver(ctx.out, after=ctx.v)

    def _deliver(self, out: list[tuple[str | None, dict[str, Any]]], *, after: int) -> None:
        """Send a message's replies and broadcasts (on a bus, broadcasts to every worker's
        clients, once each has folded event ``after``)."""
        for target, message in out:
            data = self._encode(message)
            if data is None:
                continue
            if target is BROADCAST:
                for peer in list(self._clients.values()):
                    self._enqueue(peer, data)
                if self.bus is not None:
                    self.bus.broadcast(after, message)
            elif target in self._clients:
                self._enqueue(self._clients[target], data)

    def _publish(self, emitted: Emitted) -> None:
        """Send an event to the devtools subscribers. On a bus it is queued, and hashed and
        sent :data:`SEND_AFTER` seconds later, or before anything else goes to a devtools peer.

        Why later on a bus: hashing the state is the largest cost of a subscriber, and right
        after a fold the worker has the next message to run: its publish, then a wait for the
        ack. Sent a moment later, the hashing mostly fills that wait instead of delaying it,
        and the events folded meanwhile go out together. Alone, a server has no such wait, and
        sends each event before the replies of its message, as a subscriber expects."""
        if self.bus is None:
            self._send_event(emitted)
            return
        self._unsent.append(emitted)
        if self._send_timer is None:
            self._send_timer = asyncio.get_running_loop().call_later(SEND_AFTER, self._send_unsent)

    def _send_unsent(self) -> None:
        """Hash and send the queued events, in order (at the latest before a devtools peer
        gets anything else: a join snapshot, a state asked for, a dispatch's answer)."""
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None
        unsent, self._unsent = self._unsent, []
        if len(unsent) == 1 or not any(_takes_batches(p) for p in self._subscribers.values()):
            for emitted in unsent:
                self._send_event(emitted)
            return
        # Several events, and a subscriber that takes them together: one message for it (a
        # frame, a write), each event still its own message for the others.
        batch: list[bytes] = []
        for emitted in unsent:
            out = self._event_out(emitted)
            for peer in list(self._subscribers.values()):
                if not _takes_batches(peer):
                    self._enqueue_event(peer, out)
            if out.data is not None:
                batch.append(out.data)
            if out.snap is not None or emitted is unsent[-1]:  # a snapshot goes after its event
                self._send_batch(batch, out.snap)
                batch = []

    def _send_batch(self, batch: list[bytes], snap: bytes | None) -> None:
        """To each subscriber that takes batches: the events, as one message when several."""
        data = None
        if len(batch) == 1:
            data = batch[0]
        elif batch:
            data = protocol.events_bytes(batch)
        for peer in list(self._subscribers.values()):
            if _takes_batches(peer):
                if data is not None:
                    self._enqueue(peer, data)
                if snap is not None:
                    self._enqueue(peer, snap)

    def _send_event(self, emitted: Emitted) -> None:
        out = self._event_out(emitted)
        for peer in list(self._subscribers.values()):
            self._enqueue_event(peer, out)

    def _enqueue_event(self, peer: _Peer, out: _EventOut) -> None:
        if peer.hashes_only:
            peer.hashes.append((out.v, out.digest))
            if out.snap is not None:  # the hashes up to it first
                self._send_hashes(peer)
            elif self._hashes_timer is None:
                loop = asyncio.get_running_loop()
                self._hashes_timer = loop.call_later(HASHES_AFTER, self._flush_hashes)
        elif out.data is not None:
            self._enqueue(peer, out.data)
        if out.snap is not None:
            self._enqueue(peer, out.snap)

    def _flush_hashes(self) -> None:
        """Send every hash-only subscriber the hashes waiting for it (at the latest before it
        gets anything else)."""
        if self._hashes_timer is not None:
            self._hashes_timer.cancel()
            self._hashes_timer = None
        for peer in list(self._subscribers.values()):
            self._send_hashes(peer)

    def _send_hashes(self, peer: _Peer) -> None:
        if peer.hashes:
            pairs, peer.hashes = peer.hashes, []
            self._enqueue(peer, jsonutil.dumps(protocol.hashes(pairs)))

    def _catch_up(self) -> None:
        """Everything folded so far to the subscribers, before something else goes to one."""
        self._send_unsent()
        self._flush_hashes()

    def _event_out(self, emitted: Emitted) -> _EventOut:
        """An event's ``v``, its state hash when due, its ``@@devtools/event`` message (only
        when some subscriber takes events) and, when due, the snapshot after it, encoded
        (``None``: not sent, or what JSON cannot carry)."""
        v = emitted.event["v"]
        digest = None
        if self.hash_every and v % self.hash_every == 0:
            digest = _state_hash(self._hasher, emitted.state)
            if v == self.v:
                self._hash_cache = (v, digest)
        data = None
        if any(not peer.hashes_only for peer in self._subscribers.values()):
            data = self._encode(protocol.event(v, emitted.event, emitted.cause, digest))
        snap = None
        if self.snapshot_every and v % self.snapshot_every == 0:
            if digest is None:
                digest = _state_hash(self._hasher, emitted.state)
            snap = self._encode(protocol.snapshot(v, emitted.state, digest))
        return _EventOut(v, digest, data, snap)

    @staticmethod
    def _encode(message: dict[str, Any]) -> bytes | None:
        try:
            return jsonutil.dumps(message)
        except TypeError as error:
            log.error("cannot send %r: %s", message.get("type"), error)
            return None

    # ------------------------------------------------------------------ connections

    def _enqueue(self, peer: _Peer, data: bytes) -> None:
        if peer.dropped:
            return
        if not peer.sending and peer.queue.empty() and _room_to_write(peer.ws):
            broadcast((peer.ws,), data, text=True)  # in order: nothing is before it
            return
        try:
            peer.queue.put_nowait(data)
        except asyncio.QueueFull:
            self._drop(peer, "too slow: outgoing queue overflowed")

    def _drop(self, peer: _Peer, reason: str) -> None:
        peer.dropped = True
        self._clients.pop(peer.id, None)
        self._subscribers.pop(peer.id, None)
        log.warning("dropping %s: %s", peer.id, reason)
        self._tasks.spawn(peer.ws.close(CLOSE_TOO_SLOW, reason), f"close {peer.id}")

    async def _writer(self, peer: _Peer) -> None:
        while True:
            data = await peer.queue.get()
            if data is None:
                return
            peer.sending = True
            try:
                await peer.ws.send(data, text=True)
            except ConnectionClosed:
                return
            finally:
                peer.sending = False

    def _open(self, ws: ServerConnection, prefix: str) -> _Peer:
        self._ids[prefix] = number = self._ids.get(prefix, 0) + 1
        peer = _Peer(f"{prefix}{number}", ws, asyncio.Queue(self.queue_size))
        peer.writer = self._tasks.spawn(self._writer(peer), f"writer {peer.id}")
        return peer

    async def _close(self, peer: _Peer) -> None:
        self._clients.pop(peer.id, None)
        self._subscribers.pop(peer.id, None)
        if peer.writer is not None:
            peer.writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await peer.writer

    async def _frames(self, peer: _Peer):
        """Yield each incoming frame parsed, until the connection closes.

        A text frame that is not UTF-8 never gets here: RFC 6455 requires the server to fail
        that connection (close code 1007), and ``websockets`` does so; other clients go on.
        """
        while True:
            try:
                data = await peer.ws.recv()
            except ConnectionClosed:
                return
            peer.n += 1
            if isinstance(data, str):
                yield parse_frame(data.encode("utf-8", "surrogatepass"), False)
            else:
                yield parse_frame(data, True)

    def _path(self, request: Request) -> str:
        return request.path.partition("?")[0]

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if self._path(request) != self.devtools_path:
            return None
        if not authorized(self._token, request.headers.get("Authorization")):
            response = connection.respond(http.HTTPStatus.UNAUTHORIZED, "missing or wrong token\n")
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        origin = request.headers.get("Origin")
        if origin is not None and origin not in self.allow_origins:
            return connection.respond(http.HTTPStatus.FORBIDDEN, "origin not allowed\n")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        if self._path(ws.request) == self.devtools_path:
            await self._serve_devtools(ws)
        else:
            await self._serve_client(ws, ws.request.headers)

    async def _serve_client(self, ws: ServerConnection, headers: Headers) -> None:
        # on a bus, client ids name their worker: events' senders stay unique across workers
        peer = self._open(ws, "c" if self.bus is None else f"{self.bus.worker_id}/c")
        peer.connection = protocol.parse_cause_header(headers.get(protocol.CONNECTION_HEADER))
        self._clients[peer.id] = peer
        try:
            async for frame in self._frames(peer):
                if frame.flag is not None:
                    self._enqueue(
                        peer, jsonutil.dumps(app_error(f"bad frame: {frame.flag}", n=peer.n))
                    )
                    continue
                assert frame.value is not None
                cause = (
                    protocol.cause(peer.connection, peer.n) if peer.connection is not None else None
                )
                outcome = await self.process(peer.id, frame.value, cause=cause, n=peer.n)
                if not outcome.ok and not peer.dropped:
                    reply = app_error(outcome.error or "refused", n=peer.n, request=frame.type)
                    self._enqueue(peer, jsonutil.dumps(reply))
        finally:
            await self._close(peer)

    async def _serve_devtools(self, ws: ServerConnection) -> None:
        peer = self._open(ws, "devtools-")
        self._enqueue(
            peer,
            jsonutil.dumps(
                protocol.hello(
                    name=self.name,
                    version=self.version,
                    v=self.v,
                    hash=self.state_hash(),
                    worker=self.worker_id,
                )
            ),
        )
        try:
            async for frame in self._frames(peer):
                if frame.flag is not None:
                    self._enqueue(peer, jsonutil.dumps(protocol.error(f"bad frame: {frame.flag}")))
                    continue
                request = protocol.parse_request(frame.value, allowed=protocol.DEVTOOLS_REQUESTS)
                if isinstance(request, protocol.ProtocolError):
                    self._enqueue(peer, jsonutil.dumps(request.reply()))
                elif isinstance(request, protocol.Subscribe):
                    peer.batch = request.batch
                    peer.hashes_only = request.hashes_only
                    self._subscribe(peer, snapshot=request.snapshot)
                elif isinstance(request, protocol.GetState):
                    self._send_snapshot(peer, id=request.id)
                elif isinstance(request, protocol.Dispatch):
                    outcome = await self.process(DEVTOOLS_SENDER, request.action)
                    answer = protocol.dispatched(
                        request.id,
                        outcome.ok,
                        list(outcome.events),
                        outcome.error,
                        list(outcome.replies),
                    )
                    data = self._encode(answer)
                    if data is None:  # a reply JSON cannot carry: answer without replies
                        answer["replies"] = []
                        data = jsonutil.dumps(answer)
                    self._catch_up()  # its events before its answer
                    self._enqueue(peer, data)
        finally:
            await self._close(peer)

    def _subscribe(self, peer: _Peer, *, snapshot: bool) -> None:
        """The join point: snapshot at the current ``v`` and registration, with no ``await``."""
        self._catch_up()  # the earlier subscribers' events up to v, not the new one's
        if snapshot:
            self._send_snapshot(peer)
        if not peer.dropped:
            self._subscribers[peer.id] = peer

    def _send_snapshot(self, peer: _Peer, *, id: Any = None) -> None:
        self._catch_up()
        data = self._encode(protocol.snapshot(self.v, self.state, self.state_hash(), id=id))
        if data is None:
            data = jsonutil.dumps(protocol.error("the state cannot be sent as JSON", id=id))
        self._enqueue(peer, data)

    # ------------------------------------------------------------------ serving

    async def serve(self, host: str = "127.0.0.1", port: int = 0, **kwargs: Any) -> ServerHandle:
        """Start listening; ``port=0`` picks a free port. Extra arguments go to ``websockets``.

        With a bus, the worker joins it first (and serves only once it has caught up).

        Raises:
            devtools.errors.BusError: the bus cannot be reached or joined.
            OSError: the address cannot be bound.
        """
        if self.bus is not None:
            try:
                await self.bus.start(self)
            except BaseException:
                await self.bus.close()
                raise
        try:
            server = await serve(
                self._handler, host, port, process_request=self._process_request, **kwargs
            )
        except BaseException:
            if self.bus is not None:
                await self.bus.close()
            raise
        bound = server.sockets[0].getsockname()
        return ServerHandle(self, server, host, bound[1])

    def run(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ready: Callable[[ServerHandle], Any] | None = None,
    ) -> None:
        """Serve until interrupted (blocking); ``ready`` is called with the handle once bound."""

        async def main() -> None:
            handle = await self.serve(host, port)
            try:
                if ready is not None:
                    result = ready(handle)
                    if asyncio.iscoroutine(result):
                        await result
                await asyncio.Future()
            finally:
                await handle.close()

        asyncio.run(main())

    async def shutdown(self) -> None:
        """Stop the connections' writer tasks (and leave the bus)."""
        for timer in (self._send_timer, self._hashes_timer):
            if timer is not None:
                timer.cancel()
        self._send_timer = self._hashes_timer = None
        await self._tasks.cancel_all()
        if self.bus is not None:
            await self.bus.close()


def _room_to_write(ws: ServerConnection) -> bool:
    """Whether a message can be written to ``ws`` now without passing its buffer's high-water
    mark (websockets' ``write_limit``), where ``send`` would wait for the socket to drain."""
    if ws.state is not State.OPEN:
        return False
    transport = ws.transport
    return transport.get_write_buffer_size() < transport.get_write_buffer_limits()[1]


class ServerHandle:
    """A running :class:`ReducerServer`: its address and ``close()``."""

    def __init__(self, app: ReducerServer, server: Server, host: str, port: int) -> None:
        self.app = app
        self.server = server
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        """The client endpoint, ``ws://HOST:PORT/``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}/"

    @property
    def devtools_url(self) -> str:
        """The devtools channel, ``ws://HOST:PORT/devtools``."""
        return self.url.rstrip("/") + self.app.devtools_path

    async def close(self) -> None:
        """Stop listening, close every connection and wait until done."""
        self.server.close()
        await self.server.wait_closed()
        await self.app.shutdown()

    async def __aenter__(self) -> ServerHandle:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
