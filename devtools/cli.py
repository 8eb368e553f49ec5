"""The ``rdt`` command line: parses options, calls the packages, maps errors to exit codes.

Exit codes everywhere: 0 success, 1 the check found a problem, 2 usage error (Typer's default),
3 bad input (an :class:`~devtools.errors.RdtError`), printed as one line on stderr, no traceback.
Commands are added by each package's ``commands.register(app)``; shared helpers for them
live in :mod:`devtools.clikit`. This is the one module of ``devtools`` that imports the other
packages (DESIGN.md §2), so it is also where ``rdt demo``'s pieces from several packages are
put together (:func:`demo_parts`).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from tui.stack import DemoParts, Stack

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
    from recorder import traffic_commands
    from replayer import commands as replayer_commands
    from replayer import diff_runs_commands, verify_commands
    from samples import commands as sample_commands
    from tui import commands as tui_commands

    for module in (
        core_commands,
        sample_commands,
        recorder_commands,
        traffic_commands,
        replayer_commands,
        diff_runs_commands,
        verify_commands,
    ):
        module.register(app)
    tui_commands.register(app, demo_parts=demo_parts)


def demo_parts() -> DemoParts:
    """What ``rdt demo`` runs: the sales-order sample, the recorder (recording the sample's
    devtools channel, quiet, on ephemeral loopback ports) and the sample's traffic."""
    from recorder.app import start_recorder
    from recorder.settings import RecorderSettings, parse_upstream
    from samples.sales_order import make_server
    from samples.traffic import run_traffic
    from tui.stack import DemoParts

    async def recorder(*, upstream: str, log: str, token: str, name: str) -> Any:
        settings = RecorderSettings(
            upstream=parse_upstream(upstream),
            log=log,
            token=token,
            name=name,
            listen=("127.0.0.1", 0),
            control=("127.0.0.1", 0),
            devtools_path="/devtools",
            stderr=lambda line: None,
        )
        return await start_recorder(settings)

    async def traffic(url: str, *, messages: int) -> Any:
        return await run_traffic(url, sample="sales-order", clients=4, messages=messages, seed=1)

    return DemoParts(make_server=make_server, start_recorder=recorder, run_traffic=traffic)


def demo_stack(log: str | None = None, *, name: str = "demo") -> AbstractAsyncContextManager[Stack]:
    """:func:`tui.stack.demo_stack` running :func:`demo_parts` (for tests and scripts)."""
    from tui.stack import demo_stack as stack

    return stack(log, parts=demo_parts(), name=name)


_register_packages()


def main() -> None:
    """Entry point of the ``rdt`` console script."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
