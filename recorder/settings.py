"""The recorder's settings: one frozen object built by the CLI (or a test) and passed down."""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from devtools.errors import BadInput

DEFAULT_LISTEN = ("127.0.0.1", 8765)
DEFAULT_CONTROL = ("127.0.0.1", 8766)
DEFAULT_MAX_RECORD = 2**20
"""Frames larger than this are forwarded but stored as their size and the flag ``too-large``."""


@dataclass(frozen=True, slots=True)
class Upstream:
    """Where the proxy connects: ``ws://host:port/path``."""

    host: str
    port: int
    path: str = ""
    """The base path (no trailing slash); a client's path is appended to it."""

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}{self.path or '/'}"


def parse_upstream(url: str) -> Upstream:
    """Parse ``ws://HOST:PORT[/PATH]``.

    Raises:
        BadInput: for another scheme, or a URL without a host.
    """
    parts = urlsplit(url)
    if parts.scheme != "ws":
        raise BadInput(f"--upstream must be a ws:// URL, got {url!r}")
    if not parts.hostname:
        raise BadInput(f"--upstream has no host: {url!r}")
    try:
        port = parts.port or 80
    except ValueError as error:
        raise BadInput(f"--upstream has a bad port: {url!r}") from error
    return Upstream(parts.hostname, port, parts.path.rstrip("/"))


def parse_hostport(value: str, option: str) -> tuple[str, int]:
    """Parse ``HOST:PORT`` (``PORT`` alone means 127.0.0.1).

    Raises:
        BadInput: when the port is not a number in 0..65535.
    """
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", value
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise BadInput(f"{option} must be HOST:PORT, got {value!r}")
    return (host.strip("[]") or "127.0.0.1", number)


def _counter() -> Callable[[], int]:
    return itertools.count(1).__next__


@dataclass(frozen=True, slots=True)
class RecorderSettings:
    """Everything a recorder needs to run. Clock and id sources are injectable for tests."""

    upstream: Upstream
    log: str
    """Where to record: a SQLite path or a SQLAlchemy URL."""
    token: str
    """Required on the control endpoint and sent to the server's devtools channel."""
    name: str = "recording"
    listen: tuple[str, int] = DEFAULT_LISTEN
    control: tuple[str, int] | None = DEFAULT_CONTROL
    """``None``: no control endpoint."""
    devtools_path: str | None = None
    events_from: str | None = None
    """``inbound``: every typed client message becomes the next event (no devtools channel)."""
    event_types: tuple[str, ...] = ()
    """With ``events_from``: globs of the message types that are events (empty: all)."""
    redact: tuple[str, ...] = ()
    """JSON pointers removed from messages, events and snapshots before they are stored."""
    allow_origins: tuple[str, ...] = ()
    """``Origin`` values the control endpoint accepts (any other Origin header is refused)."""
    max_record_size: int = DEFAULT_MAX_RECORD
    flush_interval: float = 0.05
    """Seconds between writer flushes (the bar: at most 0.1)."""
    queue_limit: int = 200_000
    """Records held in memory for the writer; beyond this they are dropped and marked as a gap."""
    clock: Callable[[], int] = time.time_ns
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))
    """Prefix of the ``X-Rdt-Connection`` ids this recorder sends upstream."""
    stderr: Callable[[str], None] | None = None
    """Where warnings go (``None``: ``sys.stderr``)."""
