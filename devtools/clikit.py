"""What every package's commands share: the common options, error reporting, consoles, JSON.

Kept apart from :mod:`devtools.cli` so that ``<pkg>/commands.py`` can import them without a cycle.

The shared options are defined here once, with one help text each; a command declares them as
defaults (Typer's style)::

    def state(log: str = LOG, reducer: str = REDUCER, recording: str | None = RECORDING,
              as_json: bool = JSON) -> None: ...

:data:`LOG` (the ``LOG`` argument), :data:`RECORDING` (``--recording/-r``, resolved by
:meth:`devtools.store.Log.recording`: pass the text through unchanged), :data:`JSON`
(``--json``, one document), :data:`REDUCER` (``--reducer``, required) and :data:`ORDER`
(``--order v|logux``, the fold order of the commands that show states:
:mod:`replayer.order` checks the value). The factories give
the variants: :func:`log_argument` (optional, or several), :func:`json_option` (another help
line, e.g. JSON Lines) and :func:`reducer_option` (optional).
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
from devtools.masking import MaskedStream, mask

F = TypeVar("F", bound=Callable[..., Any])

LOG_HELP = "The log: a SQLite file path or a SQLAlchemy URL (anything with ://)."
RECORDING_HELP = (
    "The recording: an id or a name (default: the latest). A number is an id, or the name of a "
    "recording when no recording has that id; when it is one recording's id and another's "
    "name, rdt stops: write id:N or name:N."
)
JSON_HELP = "Print one JSON document."
REDUCER_HELP = (
    "The reducer: package.module:attr, path/to/file.py:attr, or a JavaScript reducer "
    "path/to/file.js|.mjs|.cjs:name (run in a Node worker; :default for a default export)."
)

ORDER_HELP = (
    "v|logux. v (default): fold the events in the order they were recorded. logux: in Logux's "
    "own order (meta.time, then the id's node, counter and time), the order a Logux log "
    "applies them; v numbers stay the recorded ones, and a state at V is the state after the "
    "events up to and including V in that order. Only for a Logux recording (exit 3 else)."
)


def log_argument(*, required: bool = True, many: bool = False, help: str = LOG_HELP) -> Any:
    """The ``LOG`` argument (``many``: one or more logs)."""
    return typer.Argument(... if required else None, metavar="LOG..." if many else "LOG", help=help)


def recording_option() -> Any:
    """``--recording/-r REF`` (see :data:`RECORDING_HELP`)."""
    return typer.Option(None, "--recording", "-r", metavar="REF", help=RECORDING_HELP)


def json_option(help: str = JSON_HELP) -> Any:
    """``--json``."""
    return typer.Option(False, "--json", help=help)


def reducer_option(*, required: bool = True, help: str = REDUCER_HELP) -> Any:
    """``--reducer REF``."""
    return typer.Option(... if required else None, "--reducer", metavar="REF", help=help)


def order_option(help: str = ORDER_HELP) -> Any:
    """``--order v|logux``."""
    return typer.Option("v", "--order", metavar="ORDER", help=help)


LOG = log_argument()
ORDER = order_option()
RECORDING = recording_option()
JSON = json_option()
REDUCER = reducer_option()

err_console = Console(
    file=MaskedStream("stderr"), stderr=True, highlight=False, markup=False, soft_wrap=True
)
"""stderr; never renders markup (messages may quote recorded data); passwords masked."""


def out_console() -> Console:
    """A stdout console that never renders markup or highlights (recorded data is untrusted)
    and masks every password it prints (:func:`devtools.masking.mask`)."""
    return Console(file=MaskedStream("stdout"), highlight=False, markup=False, emoji=False)


def fail(error: RdtError) -> typer.Exit:
    """Print ``error`` as one line on stderr and return the ``Exit`` to raise."""
    message = mask(" ".join(str(error).split())) or type(error).__name__
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
    """Write ``value`` as one JSON document (a line) on stdout, passwords masked."""
    data = dumps(value)
    if b"@" in data or b"=" in data or b"earer" in data:
        data = mask(data.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")
    sys.stdout.buffer.write(data + b"\n")
    sys.stdout.flush()
