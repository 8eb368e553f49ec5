"""A loopback stack for ``rdt demo`` (and the live tests): a sample server, the recorder in front
of it with the devtools channel, and a temporary SQLite log. Everything it starts, it stops."""

from __future__ import annotations

import contextlib
import secrets
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


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
async def demo_stack(log: str | None = None, *, name: str = "demo") -> AsyncIterator[Stack]:
    """Run the sales-order sample behind a recorder on 127.0.0.1 (ephemeral ports).

    Args:
        log: where to record; ``None``: a SQLite file in a temporary folder removed afterwards.
        name: the recording's name.
    """
    from recorder.app import start_recorder
    from recorder.settings import RecorderSettings, parse_upstream
    from samples.sales_order import make_server

    token = secrets.token_urlsafe(16)
    with contextlib.ExitStack() as files:
        if log is None:
            folder = files.enter_context(tempfile.TemporaryDirectory(prefix="rdt-demo-"))
            log = str(Path(folder) / "demo.rdtlog")
        server = await make_server(token=token).serve("127.0.0.1", 0)
        try:
            settings = RecorderSettings(
                upstream=parse_upstream(f"ws://127.0.0.1:{server.port}/"),
                log=log,
                token=token,
                name=name,
                listen=("127.0.0.1", 0),
                control=("127.0.0.1", 0),
                devtools_path="/devtools",
                stderr=lambda line: None,
            )
            recorder = await start_recorder(settings)
            try:
                await recorder.wait_joined()
                yield Stack(server, recorder, log, token)
            finally:
                await recorder.close()
        finally:
            await server.close()
