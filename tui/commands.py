"""The `rdt` commands this package provides: ``tui`` and ``demo``."""

from __future__ import annotations

import typer

from devtools.clikit import reports_errors


def register(app: typer.Typer) -> None:
    """Add this package's commands to the `rdt` app."""
    app.command("tui")(tui)
    app.command("demo")(demo)


@reports_errors
def tui(
    log: str | None = typer.Argument(None, help="The log: a SQLite path or a SQLAlchemy URL."),
    reducer: str | None = typer.Option(
        None, "--reducer", help="Replay states with this reducer (pkg.mod:attr or file.py:attr)."
    ),
    recording: str | None = typer.Option(
        None, "--recording", help="The recording id or name (default: the latest)."
    ),
    live: str | None = typer.Option(
        None, "--live", help="Follow a recorder's control endpoint, e.g. ws://127.0.0.1:8766/."
    ),
    token: str | None = typer.Option(
        None, "--token", envvar="RDT_TOKEN", help="The control endpoint's token (or RDT_TOKEN)."
    ),
) -> None:
    """Open the terminal time-travel debugger over a log or a live recorder.

    Example: rdt tui orders.rdtlog --reducer samples.sales_order:reducer
    """
    from devtools.errors import BadInput
    from tui.launch import live_app, replay_app

    if live is not None:
        live_app(live, token=token, reducer=reducer).run()
        return
    if log is None:
        raise BadInput("give a LOG to replay, or --live ws://HOST:PORT to follow a recorder")
    app, opened = replay_app(log, reducer=reducer, recording=recording)
    try:
        app.run()
    finally:
        opened.close()


@reports_errors
def demo(
    headless: bool = typer.Option(
        False, "--headless", help="Print a summary instead of opening the screen (for CI)."
    ),
    messages: int = typer.Option(60, "--messages", help="Messages each traffic client sends."),
) -> None:
    """Start a sample server, the recorder and traffic on loopback, then open the TUI live.

    Example: rdt demo --headless
    """
    from tui.demo import run_demo

    run_demo(headless=headless, messages=messages)
