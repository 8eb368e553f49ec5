"""Workers on a NATS JetStream bus (PROTOCOL.md §9): :class:`NatsBus`, the thin I/O layer.

A :class:`~devtools.server.ReducerServer` given a ``NatsBus`` is one worker of several on one
stream: it publishes each accepted message's events with the expected-last-sequence check
(:mod:`devtools.bus_protocol` builds the headers and reads the acks), folds every event of the
stream through an ordered consumer into the server (``server.fold``), answers snapshot requests
for late joiners and forwards broadcasts to the other workers' clients.

nats-py is the optional ``bus`` extra: it is imported when a bus starts, and missing it is a
:class:`~devtools.errors.BusError` (one line, exit 3), as is an unreachable NATS or a refused
join. Nothing here decides anything the pure module can: this module only moves bytes.

::

    bus = NatsBus.from_options("nats://127.0.0.1:4222", "orders")
    handle = await make_server(token=t, bus=bus).serve("127.0.0.1", 0)   # joins, then listens
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import os
import socket
import uuid
from collections import deque
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

from devtools import jsonutil
from devtools.bus_protocol import (
    CONTEND_AFTER,
    HEADER_MSG_ID,
    Ack,
    BadMessage,
    Conflict,
    JoinPlan,
    JoinRefused,
    PublishFailed,
    PublishOutcome,
    SnapshotOffer,
    SnapshotParts,
    StreamExtent,
    broadcast_subject,
    check_stream_name,
    check_worker_id,
    choose_snapshot,
    contend_subject,
    decode_broadcast,
    decode_contend,
    decode_event,
    default_worker_id,
    encode_broadcast,
    encode_contend,
    encode_event,
    events_subject,
    parse_ack,
    parse_servers,
    parse_snapshot_reply,
    plan_join,
    publish_headers,
    publish_outcome,
    snapshot_parts,
    snapshot_reply,
    snapshot_subject,
)
from devtools.errors import BusError, one_line
from devtools.server_context import Emitted
from devtools.tasks import TaskGroup

if TYPE_CHECKING:
    from devtools.server import ReducerServer

__all__ = ["NatsBus", "require_nats"]

log = logging.getLogger(__name__)

GIVE_WAY = 0.02
"""Seconds a worker holds back a publish for a worker that asked to go first."""

PUBLISH_TRIES = 3
"""How often one message's events are sent when their acks do not come (same message ids:
JetStream's de-duplication makes a re-send harmless)."""


def require_nats() -> ModuleType:
    """The ``nats`` package.

    Raises:
        BusError: nats-py is not installed.
    """
    try:
        import nats
    except ImportError:
        raise BusError(
            "--bus needs nats-py: pip install 'reducer-devtools[bus]' (in a checkout: "
            "pip install -e '.[bus]')"
        ) from None
    return nats


class NatsBus:
    """One worker's link to the stream ``stream`` on the NATS servers ``servers``.

    Args:
        servers: NATS URLs (several for a cluster).
        stream: the JetStream stream (created when missing) holding ``STREAM.events``.
        worker_id: this worker's id, unique among the stream's workers (default
            ``HOSTNAME-PID``).
        ack_timeout: seconds to wait for a publish's ack before sending it again.
        fold_timeout: seconds a message waits for its own events to come back from the stream.
        snapshot_wait: seconds a joiner waits for the first snapshot answer.
        snapshot_grace: seconds it then waits for the other workers' answers.
        connect_timeout: seconds for the first connection to NATS.
    """

    def __init__(
        self,
        servers: Sequence[str],
        stream: str,
        *,
        worker_id: str | None = None,
        ack_timeout: float = 5.0,
        fold_timeout: float = 10.0,
        snapshot_wait: float = 2.0,
        snapshot_grace: float = 0.25,
        connect_timeout: float = 3.0,
    ) -> None:
        self.servers = tuple(servers)
        self.stream = stream
        self.worker_id = worker_id or default_worker_id(socket.gethostname(), os.getpid())
        self.ack_timeout = ack_timeout
        self.fold_timeout = fold_timeout
        self.snapshot_wait = snapshot_wait
        self.snapshot_grace = snapshot_grace
        self.connect_timeout = connect_timeout
        self.failure: str | None = None
        """Why this worker cannot go on (see :class:`devtools.bus_protocol.EventBus`)."""
        self.joined: JoinPlan | None = None
        """Where this worker joined the stream, once it has."""
        self._subject = events_subject(stream)
        self._nc: Any = None
        self._server: ReducerServer | None = None
        self._tasks = TaskGroup()
        self._acks: dict[str, asyncio.Future[Ack]] = {}
        self._ack_prefix = ""
        self._stream_sub: Any = None  # the ordered consumer folding the stream here
        self._tokens = itertools.count(1)
        self._waiters: list[tuple[int, int, asyncio.Future[bool]]] = []
        self._parked: list[tuple[int, int, dict[str, Any]]] = []
        self._give_way: tuple[str, float] | None = None
        """``(message id, until)``: another worker asked to go first; hold back the next
        publish until that message is folded (``_gave_way``), or this loop time."""
        self._gave_way = asyncio.Event()
        self._own_ids: deque[str] = deque(maxlen=256)
        """The message ids of this worker's latest publishes (to tell its events apart)."""
        self._claim: tuple[int, str, asyncio.Future[int]] | None = None
        """The ``v`` and message id this worker is publishing, and a future set when the
        stream's event at that ``v`` turns out to be another worker's."""
        self._order = itertools.count()
        self._connecting_errors: list[str] = []
        self._closed = False

    @classmethod
    def from_options(cls, url: str, stream: str | None, worker_id: str | None) -> NatsBus:
        """A bus from ``--bus URL --stream S [--worker-id ID]``, checked before anything runs.

        Raises:
            BusError: a bad URL, stream name or worker id, no ``--stream``, or no nats-py.
        """
        servers = parse_servers(url)
        if isinstance(servers, str):
            raise BusError(servers)
        if not stream:
            raise BusError("--bus needs --stream S (the JetStream stream the workers share)")
        error = check_stream_name(stream) or (
            check_worker_id(worker_id) if worker_id is not None else None
        )
        if error:
            raise BusError(error)
        require_nats()
        return cls(servers, stream, worker_id=worker_id)

    @property
    def url(self) -> str:
        """The NATS servers as ``--bus`` takes them."""
        return ",".join(self.servers)

    # ------------------------------------------------------------------ joining

    async def start(self, server: ReducerServer) -> None:
        """Connect, make sure the stream exists, adopt the best snapshot, fold the stream up to
        its end, then answer snapshot requests and forwarded broadcasts.

        Raises:
            BusError: NATS cannot be reached, has no JetStream, or the join is refused.
        """
        nats = require_nats()
        self._server = server
        self._nc = await self._connect(nats)
        js = self._nc.jetstream()
        await self._ensure_stream(js)
        offers = await self._ask_snapshots()
        offer = choose_snapshot(offers, name=server.name, version=server.version)
        plan = plan_join(self.stream, offer, await self._extent(js))
        if isinstance(plan, JoinRefused):
            raise BusError(plan.error)
        if plan.offer is not None:
            server.adopt(plan.v, plan.offer.state)
        self._ack_prefix = self._nc.new_inbox()
        await self._nc.subscribe(f"{self._ack_prefix}.*", cb=self._on_ack)
        try:
            await self._consume_from(plan.v + 1)
        except Exception as error:
            raise BusError(f"cannot consume stream {self.stream}: {one_line(error)}") from None
        await self._catch_up(plan.catch_up_to)
        await self._nc.subscribe(snapshot_subject(self.stream), cb=self._on_snapshot_request)
        await self._nc.subscribe(broadcast_subject(self.stream), cb=self._on_broadcast)
        await self._nc.subscribe(contend_subject(self.stream), cb=self._on_contend)
        self.joined = plan
        log.info("worker %s joined stream %s at v=%d", self.worker_id, self.stream, plan.v)

    async def _connect(self, nats: ModuleType) -> Any:
        try:
            nc = await nats.connect(
                servers=list(self.servers),
                name=f"rdt worker {self.worker_id}",
                connect_timeout=self.connect_timeout,
                max_reconnect_attempts=1,  # the first connection: fail fast, in one line
                reconnect_time_wait=0.2,
                error_cb=self._on_error,
                disconnected_cb=self._on_disconnected,
                reconnected_cb=self._on_reconnected,
            )
        except Exception as error:
            why = self._connecting_errors[-1] if self._connecting_errors else one_line(error)
            raise BusError(f"cannot connect to NATS at {self.url}: {why}") from None
        # once connected, a worker rides out NATS restarts: reconnect for ever
        nc.options["max_reconnect_attempts"] = -1
        nc.options["reconnect_time_wait"] = 2
        self._connecting_errors = []
        return nc

    async def _ensure_stream(self, js: Any) -> None:
        from nats.errors import Error as NatsError
        from nats.js.errors import NotFoundError

        try:
            try:
                info = await js.stream_info(self.stream)
            except NotFoundError:
                try:
                    info = await js.add_stream(name=self.stream, subjects=[self._subject])
                except NatsError as error:  # another worker created it meanwhile?
                    try:
                        info = await js.stream_info(self.stream)
                    except NotFoundError:
                        raise BusError(
                            f"cannot create stream {self.stream}: {_describe(error)}"
                        ) from None
        except (NatsError, TimeoutError) as error:
            raise BusError(
                f"NATS at {self.url} answers no JetStream request ({_describe(error)}): "
                "is JetStream enabled (nats-server -js)?"
            ) from None
        if self._subject not in (info.config.subjects or []):
            raise BusError(
                f"stream {self.stream} exists but does not hold subject {self._subject}: "
                "use another --stream"
            )

    async def _extent(self, js: Any) -> StreamExtent:
        info = await js.stream_info(self.stream)
        state = info.state
        return StreamExtent(state.first_seq, state.last_seq, state.messages)

    async def _ask_snapshots(self) -> list[SnapshotOffer]:
        """Every running worker's answer on ``_rdt.S.snapshot`` (none: an empty list)."""
        inbox = self._nc.new_inbox()
        answers: asyncio.Queue[Any] = asyncio.Queue()

        async def collect(msg: Any) -> None:
            answers.put_nowait(msg)

        sub = await self._nc.subscribe(inbox, cb=collect)
        offers: list[SnapshotOffer] = []
        parts = SnapshotParts()
        try:
            request = jsonutil.dumps({"worker": self.worker_id})
            await self._nc.publish(snapshot_subject(self.stream), request, reply=inbox)
            wait = self.snapshot_wait
            while True:
                try:
                    msg = await asyncio.wait_for(answers.get(), wait)
                except TimeoutError:
                    break
                if msg.headers and msg.headers.get("Status") == "503":
                    break  # no worker listens
                data = parts.add(msg.data, msg.headers)
                if data is None:  # a part of an answer: wait for the rest as for an answer
                    continue
                offer = parse_snapshot_reply(data)
                if offer is None:
                    log.warning("ignoring a malformed snapshot answer on %s", self.stream)
                else:
                    offers.append(offer)
                wait = self.snapshot_grace  # the first answer came: wait a little for others
        finally:
            await sub.unsubscribe()
        return offers

    async def _catch_up(self, target: int) -> None:
        """Wait until the stream's events up to ``target`` are folded (while they come)."""
        server = self._server
        assert server is not None
        while server.v < target:
            before = server.v
            if await self.wait_folded(target):
                return
            if self.failure is not None:
                raise BusError(self.failure)
            if server.v == before:
                raise BusError(
                    f"stream {self.stream}: no event after v={before} came in "
                    f"{self.fold_timeout:g} s while catching up to v={target}"
                )

    # ------------------------------------------------------------------ folding

    async def _consume_from(self, seq: int) -> None:
        """Fold the stream from message ``seq`` on (an ordered push consumer of its own)."""
        from nats.js.api import ConsumerConfig, DeliverPolicy

        assert self._nc is not None
        self._stream_sub = await self._nc.jetstream().subscribe(
            self._subject,
            stream=self.stream,
            cb=self._on_stream_message,
            ordered_consumer=True,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=seq
            ),
        )

    async def _consume_again(self) -> None:
        """After a reconnection: a new consumer from the next event to fold. The old one's
        consumer may be gone with a restarted server, and nats-py would notice only after
        several missed heartbeats (~20 s in which no event is folded here and every publish
        of this worker answers "stored but not folded"). What both deliver twice is skipped."""
        old, server = self._stream_sub, self._server
        if server is None or self._closed:
            return
        try:
            await self._consume_from(server.v + 1)
        except Exception as error:
            log.warning(
                "worker %s: cannot consume stream %s again: %s",
                self.worker_id,
                self.stream,
                _describe(error),
            )
            return  # the old consumer's own reset is left to recover
        if old is not None:
            with contextlib.suppress(Exception):
                await old.unsubscribe()

    async def _on_stream_message(self, msg: Any) -> None:
        """Each message of the stream, in order (a callback: nats-py's ``messages`` iterator
        costs a task and an ``asyncio.wait`` per message; its callback loop takes what is
        queued without waking up again)."""
        try:
            self._fold(msg.metadata.sequence.stream, msg.data, msg.headers)
        except Exception as error:
            self._fail(f"bus: the stream consumer stopped: {one_line(error)}")

    def _fold(self, seq: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        """Fold the stream's message ``seq`` into the server. Synchronous (the join rule)."""
        server = self._server
        if server is None or self.failure is not None or seq <= server.v:
            return  # a re-delivery after the ordered consumer was reset
        if seq != server.v + 1:
            self._fail(
                f"bus: stream {self.stream} skips from v={server.v} to seq {seq} (events "
                "deleted, or removed by its retention): this worker's state cannot follow it"
            )
            return
        item = decode_event(data, seq)
        if isinstance(item, BadMessage):
            log.warning("stream %s seq %d is no event (%s): skipped", self.stream, seq, item.reason)
            server.fold(seq, None, None)
        else:
            server.fold(seq, item.event, item.cause)
        msg_id = (headers or {}).get(HEADER_MSG_ID)
        if self._give_way is not None and msg_id == self._give_way[0]:
            self._gave_way.set()
        if msg_id not in self._own_ids:
            claim = self._claim
            if claim is not None and claim[0] == seq and not claim[2].done():
                claim[2].set_result(seq)  # another worker's event took our v: we lost
        self._release(server.v)

    def _release(self, v: int) -> None:
        while self._waiters and self._waiters[0][0] <= v:
            _, _, future = heapq.heappop(self._waiters)
            if not future.done():
                future.set_result(True)
        while self._parked and self._parked[0][0] <= v and self._server is not None:
            self._server.deliver_broadcast(heapq.heappop(self._parked)[2])

    def _fail(self, reason: str) -> None:
        if self.failure is None:
            self.failure = reason
            log.error("worker %s: %s", self.worker_id, reason)
        for _, _, future in self._waiters:
            if not future.done():
                future.set_result(False)
        self._waiters.clear()

    async def wait_folded(self, v: int, timeout: float | None = None) -> bool:
        """Wait until event ``v`` is folded here (at most ``timeout``, default
        ``fold_timeout`` seconds)."""
        server = self._server
        if server is None or self.failure is not None:
            return False
        if server.v >= v:
            return True
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (v, next(self._order), future))
        try:
            return await asyncio.wait_for(future, self.fold_timeout if timeout is None else timeout)
        except TimeoutError:
            return False

    # ------------------------------------------------------------------ publishing

    async def append(self, emitted: Sequence[Emitted], *, conflicts: int = 0) -> PublishOutcome:
        """Publish one message's events in order, pipelined, each with its expected last
        sequence (and, after the first, the previous event's message id).

        A conflict is known as soon as this worker folds another worker's event at the first
        ``v`` (the stream's refusal comes later): losing costs no more time than winning, so
        a worker that just lost is not always the last to retry. A message that lost
        ``CONTEND_AFTER`` times asks the other workers to give way (``_rdt.S.contend``), and
        this worker gives way to those who asked, for :data:`GIVE_WAY` seconds at most: without
        it, the worker that just won is ready first again and one worker can starve the others.
        """
        if self._nc is None or self._server is None:
            return PublishFailed("bus: not connected")
        first_v = emitted[0].event["v"]
        ids = [f"rdt-{uuid.uuid4().hex}" for _ in emitted]
        if conflicts >= CONTEND_AFTER:
            contend = encode_contend(self.worker_id, first_v, ids[0])
            self._tasks.spawn(self._send(contend_subject(self.stream), contend), "bus contend")
        else:
            await self._hold_back()
        if self._server.v >= first_v:
            return Conflict(self._server.v)  # another worker's event is folded already
        lost: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._own_ids.extend(ids)
        self._claim = (first_v, ids[0], lost)
        try:
            return await self._publish(emitted, first_v, ids, lost)
        finally:
            self._claim = None
            lost.cancel()

    async def _publish(
        self,
        emitted: Sequence[Emitted],
        first_v: int,
        ids: list[str],
        lost: asyncio.Future[int],
    ) -> PublishOutcome:
        from nats.errors import Error as NatsError

        messages = [
            (
                encode_event(e.event, e.cause),
                publish_headers(self.stream, ids[i], first_v - 1 + i, ids[i - 1] if i else None),
            )
            for i, e in enumerate(emitted)
        ]
        for attempt in range(1, PUBLISH_TRIES + 1):
            loop = asyncio.get_running_loop()
            pending: list[tuple[str, asyncio.Future[Ack]]] = []
            try:
                for body, headers in messages:
                    token = str(next(self._tokens))
                    future: asyncio.Future[Ack] = loop.create_future()
                    self._acks[token] = future
                    pending.append((token, future))
                    reply = f"{self._ack_prefix}.{token}"
                    await self._nc.publish(self._subject, body, reply=reply, headers=headers)
                futures = [future for _, future in pending]
                await _first_of(lost, futures, self.ack_timeout)
                if lost.done():
                    return Conflict(lost.result())
                if not all(future.done() for future in futures):
                    log.warning(
                        "no ack for v=%d in %gs (try %d)", first_v, self.ack_timeout, attempt
                    )
                    continue
                acks = [future.result() for future in futures]
            except NatsError as error:
                return PublishFailed(f"bus: cannot publish: {_describe(error)}")
            finally:
                for token, future in pending:
                    self._acks.pop(token, None)
                    future.cancel()
            return publish_outcome(acks, first_v)
        return PublishFailed(
            f"bus: NATS did not acknowledge event v={first_v} in {PUBLISH_TRIES} tries"
        )

    async def _on_ack(self, msg: Any) -> None:
        future = self._acks.pop(msg.subject.rpartition(".")[2], None)
        if future is not None and not future.done():
            status = msg.headers.get("Status") if msg.headers else None
            future.set_result(parse_ack(msg.data, status))

    # ------------------------------------------------------------------ serving the others

    async def _on_snapshot_request(self, msg: Any) -> None:
        server = self._server
        if not msg.reply or server is None or self.failure is not None:
            return
        try:
            data = jsonutil.dumps(
                snapshot_reply(
                    v=server.v,
                    state=server.state,
                    hash=server.state_hash(),
                    worker=self.worker_id,
                    name=server.name,
                    version=server.version,
                )
            )
        except TypeError as error:
            log.warning("cannot answer a snapshot request: %s", error)
            return
        parts = snapshot_parts(data, self._nc.max_payload, uuid.uuid4().hex)
        try:
            for body, headers in parts:  # a state past NATS's max_payload goes in parts
                await self._nc.publish(msg.reply, body, headers=headers or None)
        except Exception as error:
            log.warning("cannot answer a snapshot request: %s", _describe(error))

    def broadcast(self, after: int, message: dict[str, Any]) -> None:
        """Forward ``message`` to the other workers' clients (delivered after event ``after``)."""
        if self._nc is None or self._closed:
            return
        data = encode_broadcast(self.worker_id, after, message)
        self._tasks.spawn(self._send(broadcast_subject(self.stream), data), "bus broadcast")

    async def _send(self, subject: str, data: bytes) -> None:
        """A core-NATS message to the other workers (at most once: loss only costs time)."""
        try:
            await self._nc.publish(subject, data)
        except Exception as error:
            log.warning("cannot send on %s: %s", subject, _describe(error))

    async def _on_contend(self, msg: Any) -> None:
        item = decode_contend(msg.data)
        if item is not None and item.worker != self.worker_id:
            self._give_way = (item.id, asyncio.get_running_loop().time() + GIVE_WAY)
            self._gave_way.clear()

    async def _hold_back(self) -> None:
        """Give way to the worker that asked: wait until its message is folded here, or a new
        request replaces it, at most until the request's deadline."""
        loop = asyncio.get_running_loop()
        latest = loop.time() + GIVE_WAY  # however often the request is renewed
        while self._give_way is not None:
            _, until = self._give_way
            remaining = min(until, latest) - loop.time()
            if remaining <= 0 or self._gave_way.is_set():
                self._give_way = None
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._gave_way.wait(), remaining)

    async def _on_broadcast(self, msg: Any) -> None:
        item = decode_broadcast(msg.data)
        server = self._server
        if item is None or item.worker == self.worker_id or server is None:
            return
        if server.v >= item.after:
            server.deliver_broadcast(item.message)
        else:
            heapq.heappush(self._parked, (item.after, next(self._order), item.message))

    # ------------------------------------------------------------------ connection events

    async def _on_error(self, error: Exception) -> None:
        if self._nc is None:
            self._connecting_errors.append(_describe(error))
        else:
            log.warning("nats: %s", _describe(error))

    async def _on_disconnected(self) -> None:
        if not self._closed:
            log.warning("worker %s: disconnected from NATS, reconnecting", self.worker_id)

    async def _on_reconnected(self) -> None:
        log.warning("worker %s: reconnected to NATS", self.worker_id)
        if self._stream_sub is not None and not self._closed:
            self._tasks.spawn(self._consume_again(), f"bus consumer {self.stream} again")

    async def close(self) -> None:
        """Stop consuming and answering, and close the connection (idempotent)."""
        if self._closed:
            return
        self._closed = True
        await self._tasks.cancel_all()
        for _, _, future in self._waiters:
            if not future.done():
                future.set_result(False)
        self._waiters.clear()
        if self._nc is not None:
            try:
                await self._nc.close()
            except Exception as error:
                log.warning("closing the NATS connection: %s", _describe(error))


async def _first_of(
    alarm: asyncio.Future[Any], futures: Sequence[asyncio.Future[Any]], timeout: float
) -> None:
    """Wait until ``alarm`` is done, or every one of ``futures`` is, or ``timeout`` passed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    waiting = {alarm, *futures}
    while not alarm.done() and any(not f.done() for f in futures):
        remaining = deadline - loop.time()
        if remaining <= 0:
            return
        await asyncio.wait(waiting, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
        waiting = {f for f in waiting if not f.done()}


def _describe(error: BaseException) -> str:
    """A nats-py error as one line (its JetStream errors keep the words in ``description``)."""
    description = getattr(error, "description", None)
    return one_line(Exception(description)) if description else one_line(error)
