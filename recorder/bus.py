"""The recorder as one more consumer of the workers' bus (``rdt record --bus URL --stream S``).

The workers publish every accepted event to the NATS JetStream stream ``S`` on subject
``S.events``, one message per event with the JSON body ``{"event": EVENT, "cause": CAUSE}``; the
message's stream sequence is the event's ``v``. Those rules are the workers' own
(:mod:`devtools.bus_protocol`, whose decoder this uses: a message every worker skips is a gap
here). :class:`BusReader` reads the stream from its first message and hands each event to a
callback — the design's "log worker", which keeps the event log. The events before the
stream's first message (dropped by its retention before the recorder read them) are a gap.

It reads with an ephemeral *pull* consumer (no acks, in memory, deleted when the recorder
stops or by the server :data:`INACTIVE` seconds after its last pull), asking every
:data:`PULL_EVERY` seconds for everything new: the events of that time come back to back, so
reading them costs a few wake-ups, not one or three per event as a pushed consumer does in
nats-py (the bus was the larger half of the recorder's CPU, bench/cluster.py). Events are at
most that much later in the log and on the control feed; the workers' own consumers are not
touched. A consumer that skipped events the stream still holds (lost in a reconnect) or that
is gone is made again from the last event read.

``nats-py`` is the optional ``bus`` extra, imported only here and only when ``--bus`` is given
(:func:`require_nats`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from devtools import jsonutil
from devtools.bus_protocol import (
    BadMessage,
    check_stream_name,
    decode_event,
    parse_servers,
)
from devtools.bus_protocol import events_subject as subject
from devtools.errors import BadInput
from devtools.masking import mask

__all__ = ["BusReader", "check", "require_nats", "servers"]

CONNECT_TIMEOUT = 5.0
"""Seconds ``rdt record`` waits for the bus at start before it gives up (exit 3)."""
PULL_EVERY = 0.05
"""Seconds between pulls while the last one emptied the consumer."""
BATCH = 1000
"""Events asked for by one pull (a full batch is followed by the next pull at once)."""
PULL_TIMEOUT = 2.0
"""Seconds to wait for a pull's answer (none: NATS is away; the next pull asks again)."""
INACTIVE = 300.0
"""Seconds after the last pull when the server deletes the consumer (a recorder that died)."""
RETRY = 0.5
"""Seconds between attempts to make the consumer again."""


def require_nats() -> Any:
    """The ``nats`` module.

    Raises:
        BadInput: nats-py is not installed.
    """
    try:
        import nats
    except ImportError:
        raise BadInput(
            "--bus needs nats-py: pip install 'reducer-devtools[bus]' (or pip install nats-py)"
        ) from None
    return nats


def servers(url: str) -> list[str]:
    """The server URLs of ``--bus`` (comma-separated for a NATS cluster; checked before)."""
    found = parse_servers(url)
    return [url] if isinstance(found, str) else list(found)


def check(url: str, stream: str) -> str | None:
    """Why ``--bus url --stream stream`` cannot be read, or ``None`` (the workers' rules)."""
    found = parse_servers(url)
    return found if isinstance(found, str) else check_stream_name(stream)


class BusReader:
    """Reads every event of one stream, in sequence order: the consumer is made by
    :meth:`start`, the events are read by :meth:`run` until :meth:`drain` or :meth:`close`.

    Args:
        url: ``nats://HOST:PORT``.
        stream: the JetStream stream (created, on subject ``STREAM.events``, if missing).
        on_event: called with ``(v, event, cause)`` for each event.
        on_gap: called with ``(start, end, reason)`` for events that cannot be read.
        warn: one-line notices.
    """

    def __init__(
        self,
        url: str,
        stream: str,
        on_event: Callable[[int, dict[str, Any], Any], None],
        on_gap: Callable[[int, int, str], None],
        *,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.url = url
        self.stream = stream
        self._on_event = on_event
        self._on_gap = on_gap
        self._warn = warn or (lambda line: None)
        self._nc: Any = None
        self._js: Any = None
        self._sub: Any = None
        self._inbox = ""
        self._consumer: str | None = None
        self._next = ""
        self._request = jsonutil.dumps({"batch": BATCH, "no_wait": True})
        self.last_v = 0
        """The last stream sequence read."""
        self.error: str | None = None
        self._bad_said = False
        self._batch = 0
        """Events that came for the pull under way."""
        self._answered = asyncio.Event()
        self._lost = False
        """The consumer is gone, or skipped events: make it again from ``last_v + 1``."""
        self._fresh = True
        """No event read yet from the consumer made last (a jump then is a real gap)."""
        self._stopping = False
        self._running = False
        self._wake = asyncio.Event()
        self._finished = asyncio.Event()

    async def start(self) -> None:
        """Connect and make the consumer (the stream is created if it does not exist yet).

        Raises:
            BadInput: the bus cannot be reached within :data:`CONNECT_TIMEOUT`, or refuses.
        """
        nats = require_nats()
        from nats.js.errors import NotFoundError

        errors: list[BaseException] = []

        async def on_error(error: BaseException) -> None:
            errors.append(error)
            self.error = f"bus: {type(error).__name__}: {error}"

        shown = mask(self.url)
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                self._nc = await nats.connect(
                    servers(self.url),
                    name="rdt-recorder",
                    connect_timeout=2,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    error_cb=on_error,
                )
        except (TimeoutError, OSError, nats.errors.Error) as error:
            last = errors[-1] if errors else error
            why = f"{type(last).__name__}: {last}"
            raise BadInput(f"--bus {shown}: cannot reach it ({why})") from None
        self._js = js = self._nc.jetstream()
        try:
            try:
                await js.stream_info(self.stream)
            except NotFoundError:
                try:
                    await js.add_stream(name=self.stream, subjects=[subject(self.stream)])
                except nats.errors.Error:  # a worker created it meanwhile
                    await js.stream_info(self.stream)
            self._inbox = self._nc.new_inbox()
            self._sub = await self._nc.subscribe(self._inbox, cb=self._on_msg)
            await self._make_consumer()
        except (nats.errors.Error, TimeoutError) as error:
            await self.close()
            raise BadInput(f"--bus {shown} --stream {self.stream}: {error}") from None

    async def _make_consumer(self) -> None:
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        config = ConsumerConfig(
            description="rdt record",
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=self.last_v + 1,
            ack_policy=AckPolicy.NONE,
            filter_subject=subject(self.stream),
            inactive_threshold=INACTIVE,
            mem_storage=True,
        )
        old = self._consumer
        info = await self._js.add_consumer(self.stream, config)
        self._consumer = info.name
        self._next = f"$JS.API.CONSUMER.MSG.NEXT.{self.stream}.{info.name}"
        self._lost, self._fresh = False, True
        if old is not None:
            with contextlib.suppress(Exception):
                await self._js.delete_consumer(self.stream, old)

    async def run(self) -> None:
        """Pull until :meth:`drain` (then once more, for what came meanwhile) or
        :meth:`close` (run it as a task after :meth:`start`)."""
        import nats

        self._running = True
        try:
            while self._nc is not None:
                stopping = self._stopping
                if self._lost:
                    try:
                        await self._make_consumer()
                    except (nats.errors.Error, TimeoutError) as error:
                        self.error = f"bus: cannot read stream {self.stream}: {error}"
                        await asyncio.sleep(RETRY)
                        continue
                got = await self._pull()
                if got >= BATCH or self._lost:
                    continue
                if stopping:
                    return
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(PULL_EVERY):
                        await self._wake.wait()
        finally:
            self._finished.set()

    async def _pull(self) -> int:
        """Ask for the next batch; the number of events that came for it."""
        import nats

        self._batch = 0
        self._answered.clear()
        nc = self._nc
        if nc is None:
            return 0
        try:
            await nc.publish(self._next, self._request, reply=self._inbox)
            async with asyncio.timeout(PULL_TIMEOUT):
                await self._answered.wait()
        except TimeoutError:  # NATS is away (it reconnects), or the consumer is gone
            await self._check_consumer()
        except nats.errors.Error as error:
            self.error = f"bus: {type(error).__name__}: {error}"
            await asyncio.sleep(RETRY)
        return self._batch

    async def _check_consumer(self) -> None:
        """A pull had no answer: a consumer that no longer exists is made again (a pull on
        it is not answered at all)."""
        import nats
        from nats.js.errors import NotFoundError

        if self._consumer is None:
            return
        try:
            await self._js.consumer_info(self.stream, self._consumer, timeout=PULL_TIMEOUT)
        except NotFoundError:
            self._lost = True
        except (nats.errors.Error, TimeoutError):
            pass  # NATS is away: the next pull asks again

    async def _on_msg(self, msg: Any) -> None:
        if not msg.reply:  # a status: the pull is answered
            headers = msg.headers or {}
            status = headers.get("Status")
            if status == "409" and any("deleted" in str(v).lower() for v in headers.values()):
                self._lost = True  # the consumer was deleted while the pull waited
            if status != "100":  # (100: a heartbeat, never asked for)
                self._answered.set()
            return
        self._batch += 1
        self._received(msg.metadata.sequence.stream, msg.data)
        if self._batch >= BATCH or self._lost:
            self._answered.set()

    def _received(self, v: int, data: bytes) -> None:
        if v <= self.last_v:
            return  # came again (an answer to an earlier pull, or a consumer made again)
        if v > self.last_v + 1:
            if not self._fresh:  # skipped: lost in a reconnect? read again from last_v + 1
                self._lost = True
                return
            reason = (
                "not in the stream when the recorder read it (dropped by its retention)"
                if self.last_v == 0
                else "no longer in the stream when the recorder read it (deleted, or dropped "
                "by its retention)"
            )
            self._on_gap(self.last_v + 1, v - 1, reason)
        self._fresh = False
        self.last_v = v
        decoded = decode_event(data, v)
        if isinstance(decoded, BadMessage):
            if not self._bad_said:
                self._bad_said = True
                self._warn(
                    f"bus message {v} of {self.stream} is not an event ({decoded.reason}): "
                    "recorded as a gap"
                )
            self._on_gap(v, v, f"the bus message is not an event: {decoded.reason}"[:200])
            return
        self._on_event(v, decoded.event, decoded.cause)

    async def drain(self, timeout: float = PULL_TIMEOUT + 1) -> None:
        """Read what the stream holds now, then stop reading (the recorder stops)."""
        self._stopping = True
        self._wake.set()
        if not self._running:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._finished.wait()

    async def close(self) -> None:
        """Delete the consumer, unsubscribe and disconnect."""
        nc, self._nc = self._nc, None
        self._wake.set()
        if self._consumer is not None and self._js is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1):
                    await self._js.delete_consumer(self.stream, self._consumer)
            self._consumer = None
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None
        if nc is not None:
            with contextlib.suppress(Exception):
                await nc.close()
