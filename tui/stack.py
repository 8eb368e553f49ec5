"""A loopback stack for ``rdt demo`` (and the live tests): a sample server, the recorder in front
of it with the devtools channel, and a temporary SQLite log. Everything it starts, it stops.

The sample server, the recorder and the traffic belong to packages the TUI may not import
(DESIGN.md §2): they come in as :class:`DemoParts`, which ``devtools.cli.demo_parts()`` (the one
module that may import every package) builds.
"""

from __future__ import annotations

import contextlib
import secrets
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class DemoParts:
    """What the demo runs from the other packages."""

    make_server: Callable[..., Any]
    """``make_server(token=...)`` → a server with ``await .serve(host, port)`` (a sample's)."""
    start_recorder: Callable[..., Awaitable[Any]]
    """``await start_recorder(upstream=, log=, token=, name=)`` → a running recorder on
    ephemeral loopback ports, recording the server's devtools channel."""
    run_traffic: Callable[..., Awaitable[Any]]
    """``await run_traffic(url, messages=)`` → traffic statistics (``sent``, ``received``)."""


@dataclass(frozen=True, slots=True)
class Stack:
    """What is running: the server, the recorder, the log path and the token."""

    server: Any
    recorder: Any
    log: str
    token: str

    @property
    def proxy_url(self) -> str:
        """Where clients connect (through the recorder)."""
        return self.recorder.url

    @property
    def control_url(self) -> str:
        """The recorder's control endpoint (live mode connects here)."""
        return self.recorder.control_url


@contextlib.asynccontextmanager
async def demo_stack(
    log: str | None = None, *, parts: DemoParts, name: str = "demo"
) -> AsyncIterator[Stack]:
    """Run the sample server behind a recorder on 127.0.0.1 (ephemeral ports).

    Args:
        log: where to record; ``None``: a SQLite file in a temporary folder removed afterwards.
        parts: the server, recorder and traffic to run (``devtools.cli.demo_parts()``).
        name: the recording's name.
    """
    token = secrets.token_urlsafe(16)
    with contextlib.ExitStack() as files:
        if log is None:
            folder = files.enter_context(tempfile.TemporaryDirectory(prefix="rdt-demo-"))
            log = str(Path(folder) / "demo.rdtlog")
        server = await parts.make_server(token=token).serve("127.0.0.1", 0)
        try:
            recorder = await parts.start_recorder(
                upstream=f"ws://127.0.0.1:{server.port}/", log=log, token=token, name=name
            )
            try:
                await recorder.wait_joined()
                yield Stack(server, recorder, log, token)
            finally:
                await recorder.close()
        finally:
            await server.close()
