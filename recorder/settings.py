"""The recorder's settings: one frozen object built by the CLI (or a test) and passed down."""

from __future__ import annotations

import itertools
import re
import secrets
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from devtools.errors import BadInput
from recorder.writer import DEFAULT_MAX_QUEUE_BYTES

DEFAULT_LISTEN = ("127.0.0.1", 8765)
DEFAULT_CONTROL = ("127.0.0.1", 8766)
DEFAULT_MAX_RECORD = 4 * 2**20
"""Frames larger than this are forwarded but stored as their size and the flag ``too-large``
(4 MiB: a Logux offline backlog of 12,000 small actions is one 1.07 MB ``sync`` frame; this
holds about 45,000 such actions; the capture holds at most this much per connection and
direction while a message is incomplete)."""

_SIZE = re.compile(r"\s*(\d+)\s*(|b|kib|kb|k|mib|mb|m|gib|gb|g)\s*", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30}


def parse_size(text: str, option: str = "--max-frame-size") -> int:
    """Parse a size: bytes, or with a ``KiB``/``MiB``/``GiB`` suffix (``K``/``KB`` alike).

    Raises:
        BadInput: anything else, or a size below 1 byte.
    """
    match = _SIZE.fullmatch(text)
    if match is None or int(match.group(1)) < 1:
        raise BadInput(f"{option} must be a size such as 1048576, 512KiB or 2MiB, got {text!r}")
    return int(match.group(1)) * _UNITS[match.group(2)[:1].lower()]


@dataclass(frozen=True, slots=True)
class Upstream:
    """Where the proxy connects: ``ws://host:port/path`` or ``wss://…`` (TLS)."""

    host: str
    port: int
    path: str = ""
    """The base path (no trailing slash); a client's path is appended to it."""
    tls: bool = False
    """``wss://``: connect with TLS (SNI ``host``, the certificate checked for ``host``)."""

    @property
    def scheme(self) -> str:
        return "wss" if self.tls else "ws"

    @property
    def host_header(self) -> str:
        """The ``Host`` sent upstream: ``host`` alone on the scheme's default port."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == (443 if self.tls else 80) else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.path or '/'}"


def parse_upstream(url: str) -> Upstream:
    """Parse ``ws://HOST[:PORT][/PATH]`` or ``wss://HOST[:PORT][/PATH]``.

    Raises:
        BadInput: for another scheme, or a URL without a host.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise BadInput(f"--upstream must be a ws:// URL or a wss:// URL, got {url!r}")
    if not parts.hostname:
        raise BadInput(f"--upstream has no host: {url!r}")
    tls = parts.scheme == "wss"
    try:
        port = parts.port or (443 if tls else 80)
    except ValueError as error:
        raise BadInput(f"--upstream has a bad port: {url!r}") from error
    return Upstream(parts.hostname, port, parts.path.rstrip("/"), tls)


def client_tls(upstream: Upstream, *, ca: str | None = None, insecure: bool = False) -> Any:
    """The ``ssl.SSLContext`` for a ``wss://`` upstream (``None`` for ``ws://``).

    The system trust store, plus ``ca`` (a PEM file) when given; ``insecure`` turns
    certificate and host name checks off.

    Raises:
        BadInput: ``ca`` cannot be read, or TLS options on a ``ws://`` upstream.
    """
    if not upstream.tls:
        if ca or insecure:
            raise BadInput("--upstream-ca and --insecure need a wss:// --upstream")
        return None
    context = ssl.create_default_context()
    if ca:
        try:
            context.load_verify_locations(cafile=ca)
        except (OSError, ssl.SSLError) as error:
            raise BadInput(f"--upstream-ca {ca}: cannot load it ({error})") from None
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def server_tls(cert: str | None, key: str | None) -> Any:
    """The ``ssl.SSLContext`` of the TLS listener (``None`` without ``--listen-cert``).

    Raises:
        BadInput: only one of the two given, or they cannot be loaded.
    """
    if not cert and not key:
        return None
    if not cert:
        raise BadInput("--listen-key needs --listen-cert")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key or None)
    except (OSError, ssl.SSLError) as error:
        raise BadInput(f"--listen-cert {cert}: cannot load it ({error})") from None
    return context


def parse_devtools_url(url: str) -> Upstream:
    """Parse a ``--devtools`` URL: ``ws[s]://HOST[:PORT]/PATH`` (its token comes from
    ``--token``, never from the URL).

    Raises:
        BadInput: another scheme, no host, a bad port, or credentials or a fragment in it.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise BadInput(f"--devtools must be a ws:// or wss:// URL with a host, got {url!r}")
    if parts.username or parts.password or parts.fragment or parts.query:
        raise BadInput(
            "--devtools: keep tokens and credentials out of the URL (its query, fragment and "
            "user info); the recorder sends --token to every channel"
        )
    tls = parts.scheme == "wss"
    try:
        port = parts.port or (443 if tls else 80)
    except ValueError:
        raise BadInput(f"--devtools has a bad port: {url!r}") from None
    return Upstream(parts.hostname, port, parts.path.rstrip("/"), tls)


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

    upstream: Upstream | None
    """Where the proxy connects; ``None``: no proxy (a recorder of workers' channels or a bus
    only, ``--devtools URL`` / ``--bus``)."""
    log: str
    """Where to record: a SQLite path or a SQLAlchemy URL."""
    token: str
    """Required on the control endpoint and sent to the server's devtools channel."""
    name: str = "recording"
    listen: tuple[str, int] = DEFAULT_LISTEN
    control: tuple[str, int] | None = DEFAULT_CONTROL
    """``None``: no control endpoint."""
    devtools_path: str | None = None
    devtools_urls: tuple[str, ...] = ()
    """More workers' devtools channels (``--devtools URL``, repeatable): a recording of several
    workers (the upstream's own channel, with ``devtools_path``, is worker 1)."""
    bus: str | None = None
    """``nats://HOST:PORT``: read the events from the workers' bus (``--bus``)."""
    stream: str | None = None
    """The bus's JetStream stream (``--stream``)."""
    events_from: str | None = None
    """``inbound``: every typed client message becomes the next event (no devtools channel)."""
    protocol: str = "auto"
    """``plain``, ``logux`` or ``auto`` (Logux when a client's first frame is ``["connect", …]``):
    how messages are typed and, for Logux, events derived from ``sync`` actions."""
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
    max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES
    """Bytes held in memory for the writer (``--max-queue-bytes``); beyond this too."""
    clock: Callable[[], int] = time.time_ns
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))
    """Prefix of the ``X-Rdt-Connection`` ids this recorder sends upstream."""
    stderr: Callable[[str], None] | None = None
    """Where warnings go (``None``: ``sys.stderr``)."""
    upstream_ca: str | None = None
    """A PEM file of CA certificates trusted for a ``wss://`` upstream, besides the system's."""
    insecure: bool = False
    """Do not check the ``wss://`` upstream's certificate (said loudly at start)."""
    listen_cert: str | None = None
    """PEM certificate (chain) of the TLS listener: clients connect with ``wss://``."""
    listen_key: str | None = None
    """Its private key (``None``: in the certificate file)."""
    redact_headers: tuple[str, ...] = ()
    """Handshake headers never stored (their names are kept, their values are not)."""
    redact_query: tuple[str, ...] = ()
    """Query parameters of the upgrade's target whose values are never stored."""

    @property
    def several_workers(self) -> bool:
        """Whether this records several workers (``--devtools URL`` or ``--bus``): worker
        tables, one copy of the events, disagreements."""
        return bool(self.devtools_urls) or self.bus is not None
