"""The `rdt` commands this package provides: ``tui`` and ``demo``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import typer

from devtools.clikit import ORDER, RECORDING, log_argument, reducer_option, reports_errors

if TYPE_CHECKING:
    from tui.stack import DemoParts


def register(app: typer.Typer, *, demo_parts: Callable[[], DemoParts] | None = None) -> None:
    """Add this package's commands to the `rdt` app.

    Args:
        demo_parts: builds the sample server, recorder and traffic ``rdt demo`` runs (from
            packages the TUI may not import); without it there is no ``demo`` command.
    """
    app.command("tui")(tui)
    if demo_parts is not None:
        app.command("demo")(_demo_command(demo_parts))


@reports_errors
def tui(
    log: str | None = log_argument(required=False),
    reducer: str | None = reducer_option(
        required=False,
        help="Replay states with this reducer: package.module:attr or path/to/file.py:attr.",
    ),
    recording: str | None = RECORDING,
    live: str | None = typer.Option(
        None, "--live", help="Follow a recorder's control endpoint, e.g. ws://127.0.0.1:8766/."
    ),
    token: str | None = typer.Option(
        None, "--token", envvar="RDT_TOKEN", help="The control endpoint's token (or RDT_TOKEN)."
    ),
    order: str = ORDER,
) -> None:
    """Open the terminal time-travel debugger over a log or a live recorder.

    Example: rdt tui orders.rdtlog --reducer samples.sales_order:reducer

    Example: rdt tui logux.rdtlog --reducer samples.logux_counter:reducer --order logux
    """
    from devtools.errors import BadInput
    from tui.launch import live_app, replay_app

    if live is not None:
        if order != "v":
            raise BadInput("--order is for a log's replay, not --live (events fold as they come)")
        live_app(live, token=token, reducer=reducer).run()
        return
    if log is None:
        raise BadInput("give a LOG to replay, or --live ws://HOST:PORT to follow a recorder")
    app, opened = replay_app(log, reducer=reducer, recording=recording, order=order)
    try:
        app.run()
    finally:
        opened.close()


def _demo_command(parts: Callable[[], DemoParts]) -> Callable[..., None]:
    @reports_errors
    def demo(
        headless: bool = typer.Option(
            False, "--headless", help="Print a summary instead of opening the screen (for CI)."
        ),
        messages: int = typer.Option(60, "--messages", help="Messages each traffic client sends."),
        keep: bool = typer.Option(
            False,
            "--keep",
            help="Keep the demo's log (its path is printed) instead of removing it.",
        ),
    ) -> None:
        """Start a sample server, the recorder and traffic on loopback, then open the TUI live.

        The log's path is printed first; it is removed on exit unless --keep.

        Example: rdt demo --headless --keep
        """
        from tui.demo import run_demo

        run_demo(parts(), headless=headless, messages=messages, keep=keep)

    return demo
