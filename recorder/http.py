"""Pure helpers for the proxy's HTTP/1.1 upgrade: split a header block, rebuild a request."""

from __future__ import annotations

from dataclasses import dataclass

MAX_HEAD = 64 * 1024
"""The longest request or response head accepted (bytes up to the blank line)."""


@dataclass(frozen=True, slots=True)
class Head:
    """A parsed request or response head."""

    start: str
    """The request line or status line."""
    headers: tuple[tuple[str, str], ...]

    def get(self, name: str) -> str | None:
        """All values of header ``name`` joined with ``, `` (``None`` when absent)."""
        lower = name.lower()
        values = [value for key, value in self.headers if key.lower() == lower]
        return ", ".join(values) if values else None


def split_head(buffer: bytes) -> tuple[Head, bytes] | None:
    """The head at the start of ``buffer`` and the bytes after it, or ``None`` if incomplete.

    Raises:
        ValueError: when the head is malformed or longer than :data:`MAX_HEAD`.
    """
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        if len(buffer) > MAX_HEAD:
            raise ValueError("HTTP head too long")
        return None
    lines = buffer[:end].decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise ValueError("malformed HTTP header line")
        headers.append((name.strip(), value.strip()))
    return Head(lines[0], tuple(headers)), buffer[end + 4 :]


def request_target(head: Head) -> str:
    """The request-target of a request line (``/path?query``).

    Raises:
        ValueError: when the request line is not ``GET TARGET HTTP/1.1``.
    """
    parts = head.start.split(" ")
    if len(parts) != 3 or parts[0] != "GET" or not parts[2].startswith("HTTP/"):
        raise ValueError(f"not a websocket upgrade request: {head.start[:80]!r}")
    return parts[1]


def upstream_target(base: str, target: str) -> str:
    """Join the upstream's base path and a client's request-target."""
    if not base:
        return target
    path, sep, query = target.partition("?")
    joined = base if path in ("", "/") else base + path
    return joined + sep + query


def status_code(head: Head) -> int | None:
    """The status code of a response head, or ``None`` when the status line is malformed."""
    parts = head.start.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return None
    return int(parts[1])


def build_request(
    target: str,
    headers: tuple[tuple[str, str], ...],
    *,
    host: str,
    drop: set[str],
    extra: tuple[tuple[str, str], ...] = (),
) -> bytes:
    """A GET request head with the client's headers, ``Host`` replaced, ``drop`` removed."""
    lines = [f"GET {target} HTTP/1.1", f"Host: {host}"]
    dropped = {name.lower() for name in drop} | {"host"}
    lines += [f"{k}: {v}" for k, v in headers if k.lower() not in dropped]
    lines += [f"{k}: {v}" for k, v in extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def error_response(status: int, reason: str, body: str) -> bytes:
    """A complete plain-text HTTP error response that closes the connection."""
    data = body.encode("utf-8")
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    ).encode("latin-1") + data


ALWAYS_REDACTED = ("authorization", "proxy-authorization", "cookie")
"""Headers whose values are never stored, whatever ``--redact-header`` says."""
REDACTED = "<redacted>"


def redact_target(target: str, names: frozenset[str]) -> str:
    """``target`` with the values of the query parameters named in ``names`` replaced."""
    path, sep, query = target.partition("?")
    if not sep or not names:
        return target
    parts = []
    for item in query.split("&"):
        key, eq, _ = item.partition("=")
        parts.append(f"{key}={REDACTED}" if eq and key.lower() in names else item)
    return path + "?" + "&".join(parts)


def handshake_facts(
    head: Head,
    target: str,
    *,
    redact_headers: frozenset[str] = frozenset(),
    redact_query: frozenset[str] = frozenset(),
    drop: frozenset[str] = frozenset(),
) -> dict:
    """What a client's upgrade request said, as stored with its connection.

    ``target`` (path and query, the named query parameters' values redacted), ``origin``,
    ``user_agent``, the offered ``subprotocols`` and ``extensions``, and every header as
    ``[name, value]`` — the values of :data:`ALWAYS_REDACTED` and ``redact_headers`` (lower
    case names) replaced, so they never reach the log. ``drop`` names headers left out.
    """
    hidden = redact_headers | frozenset(ALWAYS_REDACTED)

    def value(name: str) -> str | None:
        found = head.get(name)
        return REDACTED if found is not None and name.lower() in hidden else found

    protocols = value("Sec-WebSocket-Protocol")
    return {
        "target": redact_target(target, redact_query),
        "origin": value("Origin"),
        "user_agent": value("User-Agent"),
        "subprotocols": [p.strip() for p in protocols.split(",")] if protocols else [],
        "extensions": value("Sec-WebSocket-Extensions"),
        "headers": [
            [name, REDACTED if name.lower() in hidden else text]
            for name, text in head.headers
            if name.lower() not in drop
        ],
    }
