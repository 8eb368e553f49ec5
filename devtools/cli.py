"""The ``rdt`` command line: parses options, calls the packages, maps errors to exit codes.

Exit codes everywhere: 0 success, 1 the check found a problem, 2 usage error (Typer's default),
3 bad input (an :class:`~devtools.errors.RdtError`), printed as one line on stderr, no traceback.
Commands are added by each package's ``commands.register(app)``; shared helpers for them
live in :mod:`devtools.clikit`.
"""

from __future__ import annotations

import sys

import typer

app = typer.Typer(
    name="rdt",
    help="Reducer DevTools: record, replay, verify and time-travel-debug reducer-based backends.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _register_packages() -> None:
    from devtools import commands as core_commands
    from recorder import commands as recorder_commands
    from replayer import commands as replayer_commands
    from replayer import verify_commands
    from samples import commands as sample_commands
    from tui import commands as tui_commands

    for module in (
        core_commands,
        sample_commands,
        recorder_commands,
        replayer_commands,
        verify_commands,
        tui_commands,
    ):
        module.register(app)


_register_packages()


def main() -> None:
    """Entry point of the ``rdt`` console script."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
