"""A running recorder: the writer, the session, the proxy, the devtools links (one, or one per
worker merged by :class:`~recorder.workers.WorkerMerge`), the bus reader and the control
endpoint wired together. :func:`start_recorder` is the in-process API (the CLI, ``rdt demo``, the
TUI's live mode and the tests use it)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from devtools.errors import BadInput
from devtools.masking import mask
from devtools.schema import EVENTS_FROM
from devtools.store import Log, discard_if_new
from devtools.tasks import spawn
from recorder.control import ControlServer, iter_pages
from recorder.devtools_link import READ_EVERY, DevtoolsLink
from recorder.proxy import Proxy
from recorder.records import row_builder
from recorder.redact import parse_pointers
from recorder.session import Session
from recorder.settings import (
    RecorderSettings,
    Upstream,
    client_tls,
    parse_devtools_url,
    server_tls,
)
from recorder.workers import WorkerMerge
from recorder.writer import QueueingWriter


class RecorderHandle:
    """A recorder running on the current event loop."""

    def __init__(self, settings: RecorderSettings) -> None:
        self.settings = settings
        warn = settings.stderr or (
            lambda line: print(f"rdt: {mask(line)}", file=sys.stderr, flush=True)
        )
        self.log: Log | None = None
        self.recording_id: int | None = None
        self.writer = QueueingWriter(
            self._open_sink,
            interval=settings.flush_interval,
            limit=settings.queue_limit,
            max_bytes=settings.max_queue_bytes,
            clock=settings.clock,
            warn=warn,
            build_row=row_builder(
                parse_pointers(settings.redact),
                settings.max_record_size,
                lambda: self.session.framing,
            ),
        )
        self.session = Session(settings, self.writer.put, self.writer.put_message)
        self.upstream_tls = (
            None
            if settings.upstream is None
            else client_tls(settings.upstream, ca=settings.upstream_ca, insecure=settings.insecure)
        )
        self.listen_tls = server_tls(settings.listen_cert, settings.listen_key)
        self.warn = warn
        self.proxy: Proxy | None = (
            None
            if settings.upstream is None
            else Proxy(
                self.session,
                settings.upstream,
                warn,
                upstream_tls=self.upstream_tls,
                listen_tls=self.listen_tls,
                redact_headers=settings.redact_headers,
                redact_query=settings.redact_query,
            )
        )
        """The recording proxy (``None`` without ``--upstream``)."""
        self.link: DevtoolsLink | None = None
        """The devtools channel of the upstream (or of worker 1): ``via: devtools`` injects."""
        self.links: list[DevtoolsLink] = []
        """Every devtools channel followed, worker 1 first."""
        self.merge: WorkerMerge | None = (
            WorkerMerge(self.session, bus=settings.bus is not None, warn=warn)
            if settings.several_workers
            else None
        )
        """Several workers: their reports merged (``None`` for one server)."""
        self.bus: Any = None
        """The :class:`recorder.bus.BusReader` with ``--bus``."""
        self._tasks: list[asyncio.Task[Any]] = []
        self.control: ControlServer | None = None
        self.port = 0
        """The proxy's bound port."""
        self.control_port: int | None = None
        """The control endpoint's bound port (``None`` when disabled)."""
        self._probe_task: asyncio.Task[Any] | None = None
        self._closed = False

    def _open_sink(self) -> Any:
        self.log = Log.open(self.settings.log, create=True)
        upstream = self.settings.upstream
        writer = self.log.writer(
            name=self.settings.name,
            upstream=upstream.url if upstream is not None else None,
            started_ns=self.settings.clock(),
        )
        self.recording_id = writer.recording_id
        return writer

    @property
    def url(self) -> str:
        """Where clients connect: ``ws://HOST:PORT/`` (``wss://`` with a TLS listener)."""
        scheme = "wss" if self.listen_tls is not None else "ws"
        return f"{scheme}://{self.settings.listen[0]}:{self.port}/"

    @property
    def control_url(self) -> str | None:
        """The control endpoint, ``ws://HOST:PORT/`` (``None`` when disabled)."""
        if self.control_port is None or self.settings.control is None:
            return None
        return f"ws://{self.settings.control[0]}:{self.control_port}/"

    def _check(self) -> None:
        settings = self.settings
        if (settings.events_from is not None or settings.protocol == "logux") and (
            settings.devtools_path or settings.several_workers
        ):
            raise BadInput(
                "--events-from inbound (or --protocol logux) and --devtools-path, --devtools "
                "or --bus exclude each other: events come from the server's devtools channels "
                "or from the messages, not both"
            )
        if (settings.bus is None) != (settings.stream is None):
            raise BadInput("--bus and --stream go together: the bus's URL and its stream")
        if settings.upstream is None:
            if settings.devtools_path:
                raise BadInput("--devtools-path is a path on --upstream: give --upstream too")
            if not settings.several_workers:
                raise BadInput("give --upstream (or --devtools URL or --bus) to record")
        if settings.bus is not None:
            from recorder.bus import require_nats

            require_nats()

    async def start(self) -> None:
        """Listen first, then open the log: a recorder that cannot start adds no recording
        and creates no file."""
        settings = self.settings
        self._check()
        try:
            if self.proxy is not None:
                self.port = await self.proxy.listen(*settings.listen)
            if settings.control is not None:
                self.control = ControlServer(self)
                self.control_port = await self.control.listen(*settings.control)
            if settings.bus is not None:
                from recorder.bus import BusReader

                self.bus = BusReader(
                    settings.bus,
                    settings.stream or "",
                    self._bus_event,
                    lambda start, end, why: self.session.gap("events", start, end, why),
                    warn=self.warn,
                )
                await self.bus.start()
            with discard_if_new(settings.log):
                await asyncio.to_thread(self.writer.start)
            if self.session.protocol is not None:
                self.session.server_facts = {
                    EVENTS_FROM: settings.events_from or "messages",
                    "protocol": self.session.protocol.name,
                    "event_types": list(settings.event_types),
                }
            if settings.bus is not None:
                self.session.server_facts["bus"] = {
                    "url": mask(settings.bus),
                    "stream": settings.stream,
                }
            if self.session.server_facts or settings.redact:
                self.session.server({})
            if settings.insecure:
                self.warn(
                    "WARNING: --insecure: the upstream's TLS certificate is NOT checked; "
                    "anyone on the path can read and change this traffic"
                )
            if self.proxy is not None:
                self._probe_task = spawn(self.proxy.probe_upstream(), "rdt-upstream-probe")
            self._start_links()
            if self.bus is not None:
                self._tasks.append(spawn(self.bus.run(), "rdt-bus-reader"))
        except BaseException:
            await self.close()
            raise

    def _bus_event(self, v: int, event: dict[str, Any], cause: Any) -> None:
        assert self.merge is not None
        self.merge.bus_event(v, event, cause)

    def _start_links(self) -> None:
        settings = self.settings
        channels: list[tuple[str, Any]] = []
        if settings.devtools_path and settings.upstream is not None:
            up = settings.upstream
            path = "/" + settings.devtools_path.lstrip("/")
            host = f"[{up.host}]" if ":" in up.host else up.host
            channels.append((f"{up.scheme}://{host}:{up.port}{path}", self.upstream_tls))
        for url in settings.devtools_urls:
            channels.append((url, self._channel_tls(parse_devtools_url(url))))
        for url, tls in channels:
            reports = self.merge.add(url) if self.merge is not None else None
            link = DevtoolsLink(
                self.session,
                url,
                settings.token,
                ssl=tls,
                reports=reports,
                rest=READ_EVERY if self.merge is not None else 0.0,
                # with a bus, the events come from it: the workers need only send their hashes
                hashes_only=self.merge is not None and self.merge.bus,
            )
            if self.merge is not None and reports is not None:
                self.merge.ask_state[reports.index] = link.get_state
            self.links.append(link)
            self._tasks.append(spawn(link.run(), f"rdt-devtools-link-{len(self.links)}"))
        self.link = self.links[0] if self.links else None

    def _channel_tls(self, channel: Upstream) -> Any:
        """A ``wss://`` worker channel's TLS: as the upstream's (``--upstream-ca``,
        ``--insecure``); ``None`` for ``ws://``."""
        if not channel.tls:
            return None
        settings = self.settings
        return client_tls(channel, ca=settings.upstream_ca, insecure=settings.insecure)

    def replay(self, from_seq: int, kinds: frozenset[str]) -> Iterator[list[Any]]:
        """Pages of this recording's records from the log (run it on a thread)."""
        log = Log.open(self.settings.log)
        try:
            reader = log.reader(self.recording_id)
            yield from iter_pages(reader, from_seq, kinds)
        finally:
            log.close()

    async def wait_joined(self, timeout: float = 10.0) -> None:
        """Wait until every devtools channel is joined (no-op without one)."""
        async with asyncio.timeout(timeout):
            for link in self.links:
                await link.joined.wait()

    async def flush(self) -> None:
        """Wait until everything recorded so far is in the log (what resting worker links
        have already received included)."""
        if any(link.rest for link in self.links):
            for link in self.links:
                link.read_now()
            for _ in range(2):  # the resumed transports read in the next turn of the loop
                await asyncio.sleep(0)
        await asyncio.to_thread(self.writer.flush)

    async def close(self) -> None:
        """Close clients with 1001, stop the link and the control endpoint, flush and close
        the log."""
        if self._closed:
            return
        self._closed = True
        if self.proxy is not None:
            await self.proxy.close()
        if self._probe_task is not None:
            self._probe_task.cancel()
            with contextlib.suppress(BaseException):
                await self._probe_task
        if self.bus is not None:  # the events the stream holds now, before the merge ends
            await self.bus.drain()
        if self.merge is not None:
            await self.merge.close()
        for link in self.links:
            await link.close()
        if self.bus is not None:
            await self.bus.close()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        if self.control is not None:
            await self.control.close()
        for conn_id in list(self.session.open):
            self.session.close_connection(conn_id, 1001, "recorder stopping")
        await asyncio.to_thread(self.writer.close, ended_ns=self.settings.clock())
        if self.log is not None:
            self.log.close()

    async def __aenter__(self) -> RecorderHandle:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def start_recorder(settings: RecorderSettings) -> RecorderHandle:
    """Start a recorder on the running loop; ``await handle.close()`` to stop it.

    Raises:
        devtools.errors.LogError: the log cannot be opened or created.
        OSError: a listening address is taken.
    """
    handle = RecorderHandle(settings)
    await handle.start()
    return handle
