"""A running recorder: the writer, the session, the proxy, the devtools link and the control
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
from recorder.devtools_link import DevtoolsLink
from recorder.proxy import Proxy
from recorder.records import row_builder
from recorder.redact import parse_pointers
from recorder.session import Session
from recorder.settings import RecorderSettings, client_tls, server_tls
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
        self.upstream_tls = client_tls(
            settings.upstream, ca=settings.upstream_ca, insecure=settings.insecure
        )
        self.listen_tls = server_tls(settings.listen_cert, settings.listen_key)
        self.warn = warn
        self.proxy = Proxy(
            self.session,
            settings.upstream,
            warn,
            upstream_tls=self.upstream_tls,
            listen_tls=self.listen_tls,
            redact_headers=settings.redact_headers,
            redact_query=settings.redact_query,
        )
        self.link: DevtoolsLink | None = None
        self.control: ControlServer | None = None
        self.port = 0
        """The proxy's bound port."""
        self.control_port: int | None = None
        """The control endpoint's bound port (``None`` when disabled)."""
        self._link_task: asyncio.Task[Any] | None = None
        self._probe_task: asyncio.Task[Any] | None = None
        self._closed = False

    def _open_sink(self) -> Any:
        self.log = Log.open(self.settings.log, create=True)
        writer = self.log.writer(
            name=self.settings.name,
            upstream=self.settings.upstream.url,
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

    async def start(self) -> None:
        """Listen first, then open the log: a recorder that cannot start adds no recording
        and creates no file."""
        settings = self.settings
        if (settings.events_from is not None or settings.protocol == "logux") and (
            settings.devtools_path
        ):
            raise BadInput(
                "--events-from inbound (or --protocol logux) and --devtools-path exclude each "
                "other: events come from the server's devtools channel or from the messages, "
                "not both"
            )
        try:
            self.port = await self.proxy.listen(*settings.listen)
            if settings.control is not None:
                self.control = ControlServer(self)
                self.control_port = await self.control.listen(*settings.control)
            with discard_if_new(settings.log):
                await asyncio.to_thread(self.writer.start)
            if self.session.protocol is not None:
                self.session.server_facts = {
                    EVENTS_FROM: settings.events_from or "messages",
                    "protocol": self.session.protocol.name,
                    "event_types": list(settings.event_types),
                }
            if self.session.server_facts or settings.redact:
                self.session.server({})
            if settings.insecure:
                self.warn(
                    "WARNING: --insecure: the upstream's TLS certificate is NOT checked; "
                    "anyone on the path can read and change this traffic"
                )
            self._probe_task = spawn(self.proxy.probe_upstream(), "rdt-upstream-probe")
            if settings.devtools_path:
                up = settings.upstream
                path = "/" + settings.devtools_path.lstrip("/")
                host = f"[{up.host}]" if ":" in up.host else up.host
                self.link = DevtoolsLink(
                    self.session,
                    f"{up.scheme}://{host}:{up.port}{path}",
                    settings.token,
                    ssl=self.upstream_tls,
                )
                self._link_task = spawn(self.link.run(), "rdt-devtools-link")
        except BaseException:
            await self.close()
            raise

    def replay(self, from_seq: int, kinds: frozenset[str]) -> Iterator[list[Any]]:
        """Pages of this recording's records from the log (run it on a thread)."""
        log = Log.open(self.settings.log)
        try:
            reader = log.reader(self.recording_id)
            yield from iter_pages(reader, from_seq, kinds)
        finally:
            log.close()

    async def wait_joined(self, timeout: float = 10.0) -> None:
        """Wait until the devtools channel is joined (no-op without ``--devtools-path``)."""
        if self.link is not None:
            async with asyncio.timeout(timeout):
                await self.link.joined.wait()

    async def flush(self) -> None:
        """Wait until everything recorded so far is in the log."""
        await asyncio.to_thread(self.writer.flush)

    async def close(self) -> None:
        """Close clients with 1001, stop the link and the control endpoint, flush and close
        the log."""
        if self._closed:
            return
        self._closed = True
        await self.proxy.close()
        if self._probe_task is not None:
            self._probe_task.cancel()
            with contextlib.suppress(BaseException):
                await self._probe_task
        if self.link is not None:
            await self.link.close()
        if self._link_task is not None:
            self._link_task.cancel()
            with contextlib.suppress(BaseException):
                await self._link_task
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
