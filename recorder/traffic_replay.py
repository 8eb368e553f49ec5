"""Replay recorded client traffic against a server, recording the new run (``rdt replay-traffic``).

The I/O shell around :mod:`recorder.replay_plan`: one websocket client
(:class:`~recorder.replay_client.ReplayConnection`) per recorded client connection, opened with
the recorded path, query, subprotocols and resendable headers (:mod:`recorder.resend`), each
recorded client frame sent as recorded (text frames as their exact bytes, binary frames as
binary), and the new run recorded through the recorder's own machinery — a
:class:`~recorder.session.Session` numbering every frame, a
:class:`~recorder.writer.QueueingWriter` writing it, and, when the target has a devtools
channel, a :class:`~recorder.devtools_link.DevtoolsLink` recording its events. Each client sends
``X-Rdt-Connection`` like the proxy does, so the server's events name their cause.

``--pace fast`` sends a burst of up to :data:`FAST_BURST` frames without yielding to the event
loop, then writes each connection's frames in one socket write and lets the replies in; it
waits whenever a connection's send buffer is full, so it goes as fast as the target takes them.

A target that refuses a connection, closes one before the replay is done with it, or stops
replying is reported as a :class:`Problem` naming the recorded connection and frame; the replay
goes on with the other connections and never waits longer than ``reply_timeout`` for anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from devtools.errors import BadInput
from devtools.protocol import CONNECTION_HEADER
from devtools.store import Log
from devtools.tasks import TaskGroup
from recorder.devtools_link import DevtoolsLink
from recorder.http import Head, handshake_facts, upstream_target
from recorder.records import row_builder
from recorder.replay_client import Refused, ReplayConnection, handshake_request, open_connection
from recorder.replay_plan import PACES, Plan, PlannedConnection, Step
from recorder.session import Session
from recorder.settings import RecorderSettings, Upstream
from recorder.writer import QueueingWriter

FAST_BURST = 64
"""``--pace fast``: frames sent between two turns of the event loop."""

OPEN_BACKLOG = 20_000
"""Records queued before the new log is open past which the replay waits for it."""

FLUSH_INTERVAL = 0.01
"""Seconds between the new log's writes (``rdt record``: 0.05): the writer keeps close behind,
so what is left to write once the last reply is in stays small."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where the replay connects: ``ws[s]://host:port[/base]``."""

    scheme: str
    host: str
    port: int
    path: str = ""

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}{self.path or '/'}"

    def connection_url(self, path: str) -> str:
        """The URL of a recorded connection whose request path was ``path``."""
        return f"{self.scheme}://{self.host}:{self.port}{upstream_target(self.path, path or '/')}"


def parse_target(url: str) -> Target:
    """Parse ``--target ws[s]://HOST:PORT[/PATH]``.

    Raises:
        BadInput: another scheme, no host, or a bad port.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise BadInput(f"--target must be a ws:// or wss:// URL, got {url!r}")
    if not parts.hostname:
        raise BadInput(f"--target has no host: {url!r}")
    try:
        port = parts.port or (443 if parts.scheme == "wss" else 80)
    except ValueError as error:
        raise BadInput(f"--target has a bad port: {url!r}") from error
    return Target(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))


@dataclass(frozen=True, slots=True)
class ReplaySettings:
    """How to run one replay."""

    target: Target
    log: str
    """Where the new run is recorded (SQLite path or SQLAlchemy URL)."""
    name: str = "replay"
    pace: str = "replies"
    speed: float = 1.0
    """``original`` pace: recorded gaps divided by this."""
    reply_timeout: float = 10.0
    """Seconds to wait for a connection, a reply or a close before reporting it."""
    devtools_path: str | None = None
    token: str | None = None
    source: str | None = None
    """What was replayed (recorded as the new recording's upstream note)."""
    clock: Callable[[], int] = time.time_ns
    stderr: Callable[[str], None] | None = None

    def __post_init__(self) -> None:
        if self.pace not in PACES:
            raise BadInput(f"--pace must be one of {', '.join(PACES)}, got {self.pace!r}")
        if not self.speed > 0:
            raise BadInput("--speed must be greater than 0")


@dataclass(frozen=True, slots=True)
class Problem:
    """Something the target did that the recording does not show."""

    connection: int
    """The recorded connection id."""
    seq: int | None
    """The recorded ``seq`` of the frame concerned (``None``: the connection as a whole)."""
    kind: str
    """``refused``, ``closed-early``, ``no-reply`` or ``send-failed``."""
    detail: str

    def line(self) -> str:
        where = f"connection {self.connection}"
        if self.seq is not None:
            where += f", frame seq {self.seq}"
        return f"{where}: {self.kind}: {self.detail}"


@dataclass(frozen=True, slots=True)
class ReplayResult:
    log: str
    recording_id: int | None
    connections: int
    sent: int
    received: int
    skipped: int
    events: int
    elapsed: float
    interrupted: bool = False
    problems: tuple[Problem, ...] = field(default_factory=tuple)


class _Client:
    """One replayed connection: its websocket, what it received, and who waits for it."""

    __slots__ = (
        "conn_id",
        "ended",
        "planned",
        "problem",
        "received",
        "stalled",
        "waiter",
        "waiting_for",
        "ws",
    )

    def __init__(self, planned: PlannedConnection, conn_id: int) -> None:
        self.planned = planned
        self.conn_id = conn_id
        self.ws: ReplayConnection | None = None
        self.received = 0
        self.waiting_for = 0
        self.waiter: asyncio.Future[None] | None = None
        self.ended = False
        self.stalled = False
        self.problem = False
        """A problem was reported for it (no more frames are sent on it)."""

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)


class TrafficReplay:
    """Runs a :class:`~recorder.replay_plan.Plan` against a target and records the run.

    Args:
        plan: what to send.
        settings: where and how.
        on_step: called after each step (the command's progress bar).
    """

    def __init__(
        self,
        plan: Plan,
        settings: ReplaySettings,
        *,
        on_step: Callable[[Step], None] | None = None,
    ) -> None:
        self.plan = plan
        self.settings = settings
        self.on_step = on_step
        target = settings.target
        self._recorder_settings = RecorderSettings(
            upstream=Upstream(target.host, target.port, target.path),
            log=settings.log,
            token=settings.token or "",
            name=settings.name,
            control=None,
            devtools_path=settings.devtools_path,
            clock=settings.clock,
            stderr=settings.stderr,
            flush_interval=FLUSH_INTERVAL,
        )
        warn = settings.stderr or (lambda line: print(f"rdt: {line}", file=sys.stderr, flush=True))
        self.log: Log | None = None
        self.recording_id: int | None = None
        self.writer = QueueingWriter(
            self._open_sink,
            interval=self._recorder_settings.flush_interval,
            clock=settings.clock,
            warn=warn,
            build_row=row_builder(framing=lambda: self.session.framing),  # as rdt record
        )
        self.session = Session(self._recorder_settings, self.writer.put, self.writer.put_message)
        self.link: DevtoolsLink | None = None
        self.problems: list[Problem] = []
        self.sent = 0
        self.clients: dict[int, _Client] = {}
        self._tasks = TaskGroup()
        self._closers: list[asyncio.Task[Any]] = []
        self._stopping = False
        self._task: asyncio.Task[Any] | None = None
        self._writer_started: asyncio.Task[None] | None = None

    def stop(self) -> None:
        """Stop the run (Ctrl-C): what was recorded so far is kept."""
        self._stopping = True
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def _open_sink(self) -> Any:
        self.log = Log.open(self.settings.log, create=True)
        writer = self.log.writer(
            name=self.settings.name,
            upstream=self.settings.target.url,
            started_ns=self.settings.clock(),
        )
        self.recording_id = writer.recording_id
        return writer

    # ------------------------------------------------------------------ the run

    async def run(self) -> ReplayResult:
        """Replay the plan; on cancellation (Ctrl-C) stop, keeping what was recorded."""
        started = time.perf_counter()
        interrupted = False
        self._task = asyncio.current_task()
        # the log opens on the writer thread while the first connections open
        self._writer_started = self._tasks.spawn(
            asyncio.to_thread(self.writer.start), "rdt-replay-writer-start"
        )
        try:
            await self._join_devtools()
            await self._steps()
            await self._writer_ready()
            ahead = self._tasks.spawn(self._write_ahead(), "rdt-replay-write-ahead")
            await self._finish_closers()
            await ahead
            await self._settle_events()
        except asyncio.CancelledError:
            if not self._stopping:
                raise
        finally:
            interrupted = self._stopping
            await self._shutdown(interrupted)
        return ReplayResult(
            log=self.settings.log,
            recording_id=self.recording_id,
            connections=len(self.clients),
            sent=self.sent,
            received=sum(c.received for c in self.clients.values()),
            skipped=len(self.plan.skipped),
            events=self.session.events,
            elapsed=time.perf_counter() - started,
            interrupted=interrupted,
            problems=tuple(self.problems),
        )

    async def _write_ahead(self) -> None:
        """Once everything is sent: while the last replies come in, write what was recorded
        so far into the log file for good (a SQLite checkpoint), so that closing the log after
        the last reply has little left to copy and sync."""
        await asyncio.to_thread(self.writer.flush)
        if self.log is not None:
            await asyncio.to_thread(self.log.checkpoint)

    async def _writer_ready(self) -> None:
        """Wait until the new log is open (its error, if it could not be opened, is raised)."""
        assert self._writer_started is not None
        await self._writer_started

    async def _writer_keeping_up(self) -> None:
        """Between sends: the replay does not wait for the new log to be created (on SQLite a
        dozen fsyncs) before its first frames; they wait in the writer's queue meanwhile. A log
        that could not be opened stops the replay here; one still opening once
        :data:`OPEN_BACKLOG` records wait is waited for, so none has to be dropped."""
        started = self._writer_started
        assert started is not None
        if started.done() or self.writer.backlog >= OPEN_BACKLOG:
            await started

    async def _join_devtools(self) -> None:
        settings = self.settings
        if not settings.devtools_path:
            return
        target = settings.target
        path = "/" + settings.devtools_path.lstrip("/")
        url = f"{target.scheme}://{target.host}:{target.port}{path}"
        self.link = DevtoolsLink(self.session, url, settings.token or "")
        self._tasks.spawn(self.link.run(), "rdt-replay-devtools-link")
        try:
            async with asyncio.timeout(settings.reply_timeout):
                await self.link.joined.wait()
        except TimeoutError:
            raise BadInput(
                f"cannot join the devtools channel {url}: {self.link.error or 'no answer'}"
            ) from None

    async def _steps(self) -> None:
        pace = self.settings.pace
        if pace == "fast":
            await self._fast_steps()
            return
        speed = self.settings.speed
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        on_step = self.on_step
        for step in self.plan.steps:
            if self._stopping:
                return
            if pace == "original" and step.at_ns:
                delay = t0 + step.at_ns / 1e9 / speed - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            kind = step.kind
            if kind == "send":
                await self._writer_keeping_up()
                client = self.clients.get(step.connection)
                if client is not None:
                    self._send(client, step)
                    if client.ws is not None:
                        client.ws.flush()
                        await client.ws.drain()
                    if pace == "replies" and not client.stalled and not client.problem:
                        await self._wait_replies(client, step.expect, step.seq)
            elif kind == "open":
                await self._open(step)
            else:
                client = self.clients.get(step.connection)
                if client is not None:
                    if pace == "replies":
                        await self._close(client, step)
                    else:
                        self._spawn_close(client, step)
            if on_step is not None:
                on_step(step)

    async def _fast_steps(self) -> None:
        """``--pace fast``: bursts of sends, one write per connection and burst."""
        on_step = self.on_step
        clients = self.clients
        send = self._send
        dirty: dict[int, ReplayConnection] = {}
        burst = 0
        for step in self.plan.steps:
            if self._stopping:
                return
            kind = step.kind
            if kind == "send":
                client = clients.get(step.connection)
                if client is not None:
                    send(client, step)
                    ws = client.ws
                    if ws is not None:
                        dirty[client.conn_id] = ws
                burst += 1
                if burst >= FAST_BURST:
                    burst = 0
                    await self._flush(dirty)
                    await self._writer_keeping_up()
            else:
                await self._flush(dirty)
                if kind == "open":
                    await self._open(step)
                else:
                    client = clients.get(step.connection)
                    if client is not None:
                        self._spawn_close(client, step)
            if on_step is not None:
                on_step(step)
        await self._flush(dirty)

    @staticmethod
    async def _flush(dirty: dict[int, ReplayConnection]) -> None:
        """Write what each connection queued, let the replies in, wait for full buffers."""
        for ws in dirty.values():
            ws.flush()
        await asyncio.sleep(0)
        for ws in dirty.values():
            await ws.drain()
        dirty.clear()

    def _spawn_close(self, client: _Client, step: Step) -> None:
        task = self._tasks.spawn(self._close(client, step), f"rdt-replay-close-{step.connection}")
        self._closers.append(task)

    # ------------------------------------------------------------------ connections

    async def _open(self, step: Step) -> None:
        planned = next(p for p in self.plan.connections if p.id == step.connection)
        session = self.session
        conn_id = session.connections + 1
        client = _Client(planned, conn_id)
        handshake = planned.handshake
        url = self.settings.target.connection_url(handshake.target)
        forwarded = session.forwarded

        def on_message(payload: bytes, binary: bool) -> None:
            forwarded(conn_id, "out", payload, binary)
            client.received += 1
            if client.waiter is not None and client.received >= client.waiting_for:
                client.wake()

        def on_open(ws: ReplayConnection) -> None:  # before any of its messages
            client.ws = ws
            local = ws.transport.get_extra_info("sockname") if ws.transport is not None else None
            peer = f"{local[0]}:{local[1]}" if local else "?"
            conn = session.open_connection(peer, planned.path, handshake=facts)
            assert conn.id == conn_id

        def on_end() -> None:
            client.ended = True
            client.wake()
            ws = client.ws
            if ws is not None:
                session.close_connection(conn_id, ws.close_code, ws.close_reason)

        protocol, request, headers = handshake_request(
            url, handshake, ((CONNECTION_HEADER, session.header_id(conn_id)),)
        )
        facts = _facts(handshake.target, headers)
        self.clients[planned.id] = client
        try:
            await open_connection(
                protocol,
                request,
                on_open=on_open,
                on_message=on_message,
                on_end=on_end,
                timeout=self.settings.reply_timeout,
            )
        except Refused as error:
            conn = session.open_connection("?", planned.path, handshake=facts)
            session.close_connection(conn.id, None, f"refused: {error}"[:200])
            client.problem = True
            self._report(planned.id, None, "refused", f"the target refused {url}: {error}")

    def _send(self, client: _Client, step: Step) -> None:
        ws = client.ws
        if ws is None or client.problem:
            return
        if ws.closing:
            self._closed_early(client, step.seq)
            return
        ws.send(step.payload, step.binary)
        self.session.forwarded(client.conn_id, "in", step.payload, step.binary)
        self.sent += 1

    async def _wait_replies(self, client: _Client, expect: int, seq: int | None) -> bool:
        """Wait until ``client`` received ``expect`` frames; report when it does not."""
        if client.received >= expect:
            return True
        if client.ws is None or client.ended:
            if not client.problem:
                self._closed_early(client, seq, expect=expect)
            return False
        waiter = asyncio.get_running_loop().create_future()
        client.waiter, client.waiting_for = waiter, expect
        try:
            async with asyncio.timeout(self.settings.reply_timeout):
                await waiter
        except TimeoutError:
            client.waiter = None
            client.stalled = True
            self._report(
                client.planned.id,
                seq,
                "no-reply",
                f"{client.received} of {expect} frames within {self.settings.reply_timeout:g} s",
            )
            return False
        if client.received < expect:
            if not client.problem:
                self._closed_early(client, seq, expect=expect)
            return False
        return True

    async def _close(self, client: _Client, step: Step) -> None:
        ws = client.ws
        if ws is None:
            return
        if not client.stalled and not client.problem:
            await self._wait_replies(client, step.expect, None)
        if not client.ended:
            with contextlib.suppress(Exception):
                await ws.close(client.planned.client_close_code, client.planned.close_reason or "")

    def _closed_early(self, client: _Client, seq: int | None, *, expect: int | None = None) -> None:
        ws = client.ws
        code = ws.close_code if ws is not None else None
        reason = (ws.close_reason if ws is not None else None) or ""
        how = f"the target closed it (code {code}{', ' + reason if reason else ''})"
        if expect is not None:
            how += f" after {client.received} of {expect} frames"
        unsent = sum(
            1
            for s in self.plan.steps
            if s.kind == "send" and s.connection == client.planned.id and s.seq >= (seq or 0)
        )
        if seq is not None and expect is None:
            how += f"; {unsent} frames not sent"
        self._report(client.planned.id, seq, "closed-early", how)
        client.problem = True

    def _report(self, connection: int, seq: int | None, kind: str, detail: str) -> None:
        self.problems.append(Problem(connection, seq, kind, detail))

    # ------------------------------------------------------------------ the end

    async def _finish_closers(self) -> None:
        if self._closers:
            await asyncio.gather(*self._closers, return_exceptions=True)

    async def _settle_events(self) -> None:
        """Give the devtools channel time to deliver the run's last events (until quiet)."""
        if self.link is None:
            return
        seen = -1
        deadline = asyncio.get_running_loop().time() + self.settings.reply_timeout
        while self.session.events != seen and asyncio.get_running_loop().time() < deadline:
            seen = self.session.events
            await asyncio.sleep(0.2)

    async def _shutdown(self, interrupted: bool) -> None:
        for client in self.clients.values():
            ws = client.ws
            if ws is not None and not client.ended:
                with contextlib.suppress(BaseException):
                    async with asyncio.timeout(1.0):
                        await ws.close(1001, "replay stopped" if interrupted else "")
        if self.link is not None:
            with contextlib.suppress(BaseException):
                await self.link.close()
        await self._tasks.cancel_all()
        for conn_id in list(self.session.open):
            self.session.close_connection(conn_id, 1001, "replay stopped")
        await asyncio.to_thread(self.writer.close, ended_ns=self.settings.clock())
        if self.log is not None:
            self.log.close()


_NOT_KEPT = frozenset({"sec-websocket-key", CONNECTION_HEADER.lower()})


def _facts(target: str, headers: tuple[tuple[str, str], ...]) -> dict:
    """What the replay's upgrade request said, stored as the proxy stores a client's."""
    return handshake_facts(Head(f"GET {target} HTTP/1.1", headers), target, drop=_NOT_KEPT)


async def replay_traffic(
    plan: Plan, settings: ReplaySettings, *, on_step: Callable[[Step], None] | None = None
) -> ReplayResult:
    """Run ``plan`` against ``settings.target``, recording the run into ``settings.log``."""
    return await TrafficReplay(plan, settings, on_step=on_step).run()
