"""The recorder as one more consumer of the workers' bus (``rdt record --bus URL --stream S``).

The workers publish every accepted event to the NATS JetStream stream ``S`` on subject
``S.events``, one message per event with the JSON body ``{"event": EVENT, "cause": CAUSE}``; the
message's stream sequence is the event's ``v``. Those rules are the workers' own
(:mod:`devtools.bus_protocol`, whose decoder this uses: a message every worker skips is a gap
here). :class:`BusReader` reads the stream from its first message with an *ordered consumer*
(ephemeral, flow-controlled, recreated by the client on a gap: nothing on the server to clean
up when the recorder goes away) and hands each event to a callback — the design's "log
worker", which keeps the event log. The events before the stream's first message (dropped by
its retention before the recorder read them) are a gap.

``nats-py`` is the optional ``bus`` extra, imported only here and only when ``--bus`` is given
(:func:`require_nats`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

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
    """Reads every event of one stream, in sequence order, until :meth:`close`.

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
        self._sub: Any = None
        self.last_v = 0
        """The last stream sequence read."""
        self.error: str | None = None
        self._bad_said = False

    async def start(self) -> None:
        """Connect and subscribe (the stream is created if it does not exist yet).

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
        js = self._nc.jetstream()
        try:
            try:
                await js.stream_info(self.stream)
            except NotFoundError:
                try:
                    await js.add_stream(name=self.stream, subjects=[subject(self.stream)])
                except nats.errors.Error:  # a worker created it meanwhile
                    await js.stream_info(self.stream)
            self._sub = await js.subscribe(
                subject(self.stream), stream=self.stream, ordered_consumer=True
            )
        except nats.errors.Error as error:
            await self.close()
            raise BadInput(f"--bus {shown} --stream {self.stream}: {error}") from None

    async def run(self) -> None:
        """Hand over every event until :meth:`close` (run it as a task after :meth:`start`)."""
        sub = self._sub
        if sub is None:
            return
        with contextlib.suppress(asyncio.CancelledError):
            async for msg in sub.messages:
                self._received(msg.metadata.sequence.stream, msg.data)

    def _received(self, v: int, data: bytes) -> None:
        if v <= self.last_v:
            return  # delivered again (the consumer was recreated)
        if v > self.last_v + 1:
            reason = (
                "not in the stream when the recorder read it (dropped by its retention)"
                if self.last_v == 0
                else "skipped by the bus consumer"
            )
            self._on_gap(self.last_v + 1, v - 1, reason)
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

    async def close(self) -> None:
        """Unsubscribe and disconnect."""
        nc, self._nc = self._nc, None
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None
        if nc is not None:
            with contextlib.suppress(Exception):
                await nc.close()
