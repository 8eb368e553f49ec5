"""The devtools token: where it comes from and how a handshake's token is checked.

The devtools channel and the recorder's control endpoint both require ``Authorization: Bearer
TOKEN`` on the websocket handshake (PROTOCOL.md §1–§2). The token is the ``--token`` option, else
the ``RDT_TOKEN`` environment variable, else a freshly generated one that the caller prints so the
user can pass it on. Comparison is constant time (:func:`hmac.compare_digest`).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

ENV_VAR = "RDT_TOKEN"
"""The environment variable read when no ``--token`` is given."""

TokenSource = Literal["option", "env", "generated"]


@dataclass(frozen=True, slots=True)
class ResolvedToken:
    """A token and where it came from (a ``generated`` token is for the caller to print)."""

    value: str
    source: TokenSource

    @property
    def generated(self) -> bool:
        return self.source == "generated"


def generate_token() -> str:
    """A new random URL-safe token (32 bytes of entropy)."""
    return secrets.token_urlsafe(32)


def resolve_token(option: str | None, environ: Mapping[str, str] | None = None) -> ResolvedToken:
    """The token to require: ``option``, else ``environ["RDT_TOKEN"]``, else a generated one.

    Args:
        option: the ``--token`` value, or ``None`` when not given. An empty string counts as
            not given.
        environ: the environment to read (defaults to ``os.environ``).
    """
    if option:
        return ResolvedToken(option, "option")
    if environ is None:
        import os

        environ = os.environ
    from_env = environ.get(ENV_VAR, "")
    if from_env:
        return ResolvedToken(from_env, "env")
    return ResolvedToken(generate_token(), "generated")


def bearer_header(token: str) -> dict[str, str]:
    """The handshake header a client sends: ``{"Authorization": "Bearer TOKEN"}``."""
    return {"Authorization": f"Bearer {token}"}


def parse_bearer(value: str | None) -> str | None:
    """The token in an ``Authorization`` header value, or ``None`` if it is not a bearer token.

    The scheme is case-insensitive (RFC 7235); surrounding whitespace is ignored.
    """
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token or None


def token_matches(expected: str, presented: str | None) -> bool:
    """Whether ``presented`` equals ``expected``, compared in constant time.

    ``None`` (no token) never matches, nor does anything against an empty expected token.
    """
    if presented is None or not expected:
        return False
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


def authorized(expected: str, authorization: str | None) -> bool:
    """Whether an ``Authorization`` header value carries the expected bearer token."""
    return token_matches(expected, parse_bearer(authorization))
