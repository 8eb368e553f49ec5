"""Secrets never printed: the one masking function every output goes through.

A log target may be a SQLAlchemy URL with a password in it
(``postgresql+psycopg://user:secret@host/db``); it shows up in headlines, ``--json`` documents,
JUnit files, generated tests, error lines and the TUI. :func:`mask` replaces the password of
every URL in a text with ``***`` (``user:***@host``), as well as ``password=…`` parameters and
``Authorization: Bearer …`` values. The consoles (:mod:`devtools.clikit`), :func:`print_json
<devtools.clikit.print_json>`, the JUnit writer, gen-test and the TUI call it; nothing else
decides what a secret looks like.
"""

from __future__ import annotations

import re
import sys
from typing import Any, TextIO

__all__ = ["MASK", "MaskedStream", "mask", "mask_value"]

MASK = "***"

_USERINFO = re.compile(
    r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^\s/:@\"'<>]*):(?P<secret>[^\s/@\"'<>]+)@"
)
"""``scheme://user:password@``: the password (everything up to the ``@``) is the secret."""
_PARAM = re.compile(
    r"(?P<head>\b(?:password|passwd|pwd|sslpassword|token|access_token)=)(?P<secret>[^\s&;\"'<>]+)",
    re.IGNORECASE,
)
"""``password=…`` in a query string or a libpq keyword string."""
_BEARER = re.compile(r"(?P<head>\bBearer\s+)(?P<secret>[A-Za-z0-9._~+/=\-]+)", re.IGNORECASE)


def mask(text: str) -> str:
    """``text`` with every password, ``password=`` value and bearer token replaced by ``***``.

    Returns:
        ``text`` itself when nothing needed masking (the fast path checks for ``:`` and ``=``).
    """
    if "@" in text:
        text = _USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", text)
    if "=" in text:
        text = _PARAM.sub(lambda m: m["head"] + MASK, text)
    if "earer" in text:
        text = _BEARER.sub(lambda m: m["head"] + MASK, text)
    return text


def mask_value(value: Any) -> Any:
    """A JSON-like value with :func:`mask` applied to every string in it (keys included)."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {mask_value(k): mask_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_value(v) for v in value]
    return value


class MaskedStream:
    """A text stream that masks what is written and passes it to ``sys.stdout``/``sys.stderr``.

    The stream is looked up at each write, so a console built once still writes where the
    process's stdout/stderr is at the time (tests swap them).
    """

    def __init__(self, name: str = "stdout", stream: TextIO | None = None) -> None:
        self._name = name
        self._stream = stream

    @property
    def target(self) -> TextIO:
        return self._stream if self._stream is not None else getattr(sys, self._name)

    def write(self, text: str) -> int:
        self.target.write(mask(text))
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def isatty(self) -> bool:
        isatty = getattr(self.target, "isatty", None)
        return bool(isatty and isatty())

    def __getattr__(self, name: str) -> Any:
        return getattr(self.target, name)
