"""Which recorded handshake facts a traffic replay sends again: the one allow/deny rule.

Pure: from a connection's recorded path and ``connections.handshake`` facts (see
:func:`recorder.http.handshake_facts`) to the :class:`Handshake` that ``rdt replay-traffic``
opens the connection with. The facts come from a log, so they are untrusted: anything
malformed is left out, never raised.

The rule (:func:`header_verdict`):

- never resent: hop-by-hop headers (:data:`HOP_BY_HOP`, and any header the recorded
  ``Connection`` header names), the websocket handshake's own headers (the client computes
  ``Sec-WebSocket-Key``/``-Version``/``-Extensions`` afresh; ``Sec-WebSocket-Protocol`` is sent
  from the recorded ``subprotocols``), ``Host`` (the target's), body framing
  (``Content-Length``, ``Transfer-Encoding``), and rdt's own ``X-Rdt-Connection`` /
  ``X-Rdt-Inject`` (the replay sets its own connection id);
- never resent: a header whose value the recording redacted (``<redacted>``);
- ``Authorization`` and ``Cookie`` are resent only when the log holds their values unredacted.
  ``rdt record`` never stores them, so with its logs they stay out (give them with
  ``--header``); a log written by another tool that kept them gets them resent, as the
  recorded client sent them;
- a header whose name is not an HTTP token or whose value holds CR, LF, NUL or another control
  character is left out (it could not have come from a real request; it would split the head).

The request target is the recorded path and query; query parameters whose value the recording
redacted are left out. The offered subprotocols are the recorded ones; ``permessage-deflate`` is
offered when the recorded client offered it (or when the log has no handshake facts).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from devtools.protocol import CONNECTION_HEADER
from recorder.http import REDACTED

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
"""Headers that describe one hop (RFC 9110 §7.6.1), never forwarded by a replay."""

NEVER_RESENT = HOP_BY_HOP | frozenset(
    {
        "host",
        "content-length",
        "expect",
        "http2-settings",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-accept",
        "sec-websocket-protocol",
        CONNECTION_HEADER.lower(),
        "x-rdt-inject",
    }
)
"""Headers a replay never sends from the recording (nor from ``--header``)."""

CREDENTIALS = frozenset({"authorization", "cookie"})
"""Resent only when recorded unredacted (``rdt record`` always redacts them)."""

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
"""What a header value may hold (as websockets checks it): no CR, LF, NUL or other controls."""
_TARGET = re.compile(r"/[\x21-\x7e]*")


@dataclass(frozen=True, slots=True)
class Handshake:
    """How a replay opens one recorded connection."""

    target: str
    """The request path and query (appended to the target's base path)."""
    subprotocols: tuple[str, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    """Recorded headers safe to resend, in recorded order (repeats kept)."""
    deflate: bool = True
    """Whether to offer ``permessage-deflate``."""
    left_out: tuple[str, ...] = ()
    """The recorded headers not resent, as ``name (why)``."""


def header_verdict(
    name: str, value: str, *, hop_by_hop: frozenset[str] = frozenset()
) -> str | None:
    """Why recorded header ``name: value`` is not resent, or ``None`` when it is.

    Args:
        hop_by_hop: further header names (lower case) the recorded ``Connection`` header named.
    """
    lower = name.lower()
    if not _TOKEN.fullmatch(name) or _VALUE.fullmatch(value) is None:
        return "malformed"
    if lower in NEVER_RESENT or lower in hop_by_hop:
        return "hop-by-hop or handshake"
    if value == REDACTED:
        return "redacted"
    return None


def extra_header(text: str) -> tuple[str, str]:
    """Parse ``--header 'Name: value'``.

    Raises:
        ValueError: not ``Name: value``, or a header a replay never sends.
    """
    name, sep, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not _TOKEN.fullmatch(name) or _VALUE.fullmatch(value) is None:
        raise ValueError(f"--header must look like 'Name: value', got {text!r}")
    if name.lower() in NEVER_RESENT:
        raise ValueError(f"--header {name} cannot be set: the replay's client sets it itself")
    return name, value


def resend_target(path: str, facts: object) -> str:
    """The request target to open: the recorded one without redacted query parameters."""
    target = facts.get("target") if isinstance(facts, dict) else None
    if not isinstance(target, str) or _TARGET.fullmatch(target) is None:
        return path if isinstance(path, str) and _TARGET.fullmatch(path) else "/"
    head, sep, query = target.partition("?")
    if not sep:
        return head
    kept = [item for item in query.split("&") if item.partition("=")[2] != REDACTED]
    return head + ("?" + "&".join(kept) if kept else "")


def resend_handshake(path: str, facts: object, extra: Sequence[tuple[str, str]] = ()) -> Handshake:
    """The handshake a replay sends for a connection recorded with ``path`` and ``facts``.

    Args:
        path: the recorded ``connections.path``.
        facts: the recorded ``connections.handshake`` (``None`` for older logs).
        extra: ``--header`` values (see :func:`extra_header`); they replace recorded headers of
            the same name.
    """
    target = resend_target(path, facts)
    if not isinstance(facts, dict):
        return Handshake(target, headers=tuple(extra))
    pairs = [
        (h[0], h[1])
        for h in facts.get("headers") or ()
        if isinstance(h, list | tuple) and len(h) == 2 and all(isinstance(x, str) for x in h)
    ]
    named = {
        token.strip().lower()
        for name, value in pairs
        if name.lower() == "connection"
        for token in value.split(",")
    }
    replaced = {name.lower() for name, _ in extra}
    headers: list[tuple[str, str]] = []
    left_out: list[str] = []
    for name, value in pairs:
        if name.lower() in replaced:
            continue
        why = header_verdict(name, value, hop_by_hop=frozenset(named))
        if why is None:
            headers.append((name, value))
        elif name.lower() not in _ALWAYS_DROPPED:
            left_out.append(f"{name} ({why})")
    headers.extend(extra)
    return Handshake(
        target,
        subprotocols=tuple(_subprotocols(facts.get("subprotocols"))),
        headers=tuple(headers),
        deflate="permessage-deflate" in str(facts.get("extensions") or "").lower(),
        left_out=tuple(left_out),
    )


_ALWAYS_DROPPED = frozenset(
    {
        "host",
        "connection",
        "upgrade",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
    }
)
"""Left out of every replay without saying so (every handshake has them)."""


def _subprotocols(value: object) -> Iterable[str]:
    if not isinstance(value, list):
        return ()
    return [p for p in value if isinstance(p, str) and _TOKEN.fullmatch(p)]
