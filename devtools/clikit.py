"""Helpers every package's commands share: error reporting, consoles, JSON output.

Kept apart from :mod:`devtools.cli` so that ``<pkg>/commands.py`` can import them without a cycle.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import typer
from rich.console import Console

from devtools.errors import RdtError
from devtools.jsonutil import dumps

F = TypeVar("F", bound=Callable[..., Any])

err_console = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)
"""stderr; never renders markup (messages may quote recorded data)."""


def out_console() -> Console:
    """A stdout console that never renders markup or highlights (recorded data is untrusted)."""
    return Console(highlight=False, markup=False, emoji=False)


def fail(error: RdtError) -> typer.Exit:
    """Print ``error`` as one line on stderr and return the ``Exit`` to raise."""
    message = " ".join(str(error).split()) or type(error).__name__
    err_console.print(f"rdt: {message}")
    return typer.Exit(error.exit_code)


def reports_errors(func: F) -> F:
    """Decorate a command so an :class:`RdtError` becomes one stderr line and its exit code."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except RdtError as error:
            raise fail(error) from None

    return wrapper  # type: ignore[return-value]


def print_json(value: Any) -> None:
    """Write ``value`` as one JSON document (a line) on stdout."""
    sys.stdout.buffer.write(dumps(value) + b"\n")
    sys.stdout.flush()
