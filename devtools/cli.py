"""The ``rdt`` command line: parses options, calls the packages, maps errors to exit codes.

Exit codes everywhere: 0 success, 1 the check found a problem, 2 usage error (Typer's default),
3 bad input (an :class:`~devtools.errors.RdtError`), printed as one line on stderr, no traceback.
Commands of the other packages are added by their ``commands.register(app)``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import typer
from rich.console import Console

from devtools.errors import RdtError

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="rdt",
    help="Reducer DevTools: record, replay, verify and time-travel-debug reducer-based backends.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

err_console = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)


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


def _register_packages() -> None:
    from devtools import commands as core_commands
    from recorder import commands as recorder_commands
    from replayer import commands as replayer_commands
    from tui import commands as tui_commands

    for module in (core_commands, recorder_commands, replayer_commands, tui_commands):
        module.register(app)


_register_packages()


def main() -> None:
    """Entry point of the ``rdt`` console script."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
