"""The ``rdt replay-traffic`` command: re-send a recording's client frames to a server."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from typing import Any

import typer

from devtools.clikit import RECORDING, err_console, log_argument, out_console, reports_errors
from devtools.errors import BadInput
from devtools.sanitize import visible
from devtools.store import Log
from recorder.replay_plan import PACES, Plan, Step, build_plan, select_connections
from recorder.resend import extra_header
from recorder.traffic_replay import ReplayResult, ReplaySettings, TrafficReplay, parse_target

REPLAY_HELP = """Replay recorded client traffic against a server, recording the new run.

Opens one connection per recorded client connection, at the recorded points, with the
recorded path and query, the recorded subprotocols and the recorded handshake headers that are
safe to resend, and sends each recorded client frame byte for byte, in the recorded order per
connection and across connections.

Handshake headers: hop-by-hop and websocket headers (Host, Connection, Upgrade,
Sec-WebSocket-*, Content-Length, ...) and rdt's own X-Rdt-Connection are never resent; neither
is any header or query parameter the recording redacted. Authorization and Cookie are resent
only when the log holds them unredacted — `rdt record` never stores them, so give them with
--header 'Authorization: Bearer ...' when the target needs them.

--pace replies (the default) waits after each frame until the target has
sent as many frames on that connection as the recording shows; original keeps the recorded
gaps (divided by --speed); fast sends as fast as the target takes them. The new run goes into
--log (with the server's events when --devtools-path is given); compare the two runs with
`rdt diff-runs`. Exit 0 when the target behaved, 1 when a problem was reported (a refused
connection, an early close, no reply), 130 on Ctrl-C (what was recorded is kept).

Example:

    rdt replay-traffic orders.rdtlog --target ws://127.0.0.1:8701 --log new.rdtlog
"""


def _default_log() -> str:
    return time.strftime("./rdt-replay-%Y%m%d-%H%M%S.rdtlog")


def load_plan(
    log: str,
    recording: str | None,
    *,
    connections: str | None,
    skip_flagged: bool,
    headers: list[str] | None = None,
) -> tuple[Plan, str]:
    """The plan of recording ``recording`` of ``log`` and that recording's name.

    Raises:
        BadInput: the log, the recording, ``connections`` or a ``--header`` is wrong.
    """
    try:
        extra = [extra_header(text) for text in headers or ()]
    except ValueError as error:
        raise BadInput(str(error)) from None
    with Log.open(log) as store:
        reader = store.reader(recording)
        conns = reader.connections()
        try:
            only = select_connections(conns, connections)
        except ValueError as error:
            raise BadInput(str(error)) from None
        plan = build_plan(
            conns, reader.messages(), only=only, skip_flagged=skip_flagged, extra_headers=extra
        )
        return plan, reader.recording.name


class _Bar:
    """A Rich progress bar on stderr, advanced once per sent frame (none when piped)."""

    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self.progress = Progress(
            "replaying",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.task = self.progress.add_task("replay", total=total)
        self.progress.start()

    def step(self, step: Step) -> None:
        if step.kind == "send":
            self.progress.advance(self.task)

    def close(self) -> None:
        self.progress.stop()


async def _run(replay: TrafficReplay) -> ReplayResult:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, replay.stop)
    try:
        return await replay.run()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _summary(result: ReplayResult, plan: Plan) -> str:
    line = (
        f"{result.connections} connections, {result.sent} of {plan.frames} frames sent, "
        f"{result.received} received"
    )
    if result.skipped:
        line += f", {result.skipped} skipped"
    if result.events:
        line += f", {result.events} events"
    rate = result.sent / result.elapsed if result.elapsed > 0 else 0.0
    return line + f" in {result.elapsed:.2f} s ({rate:,.0f} frames/s)"


def register(app: typer.Typer) -> None:
    """Add `replay-traffic` to the `rdt` app."""

    @app.command("replay-traffic", help=REPLAY_HELP)
    @reports_errors
    def replay_traffic(
        log: str = log_argument(help="The log with the recorded traffic (path or URL)."),
        target: str = typer.Option(..., help="The server: ws[s]://HOST:PORT[/PATH]."),
        recording: str = RECORDING,
        connections: str = typer.Option(
            "all", help="Which recorded client connections: all, or ids like 1,2,5."
        ),
        pace: str = typer.Option("replies", help="replies, original or fast."),
        speed: float = typer.Option(1.0, help="With --pace original: play X times as fast."),
        new_log: str = typer.Option(
            None, "--log", help="Where the new run is recorded (default ./rdt-replay-<ts>.rdtlog)."
        ),
        name: str = typer.Option(None, help="The new recording's name (default replay-of-NAME)."),
        devtools_path: str = typer.Option(
            None, help="Also record the target's events via its devtools channel at this path."
        ),
        token: str = typer.Option(None, help="The target's devtools token (default $RDT_TOKEN)."),
        skip_flagged: bool = typer.Option(
            False, help="Leave out frames that are not valid JSON messages (binary included)."
        ),
        reply_timeout: float = typer.Option(
            10.0, help="Seconds to wait for a connection, a reply or a close before reporting."
        ),
        header: list[str] = typer.Option(
            None,
            "--header",
            help="A handshake header for every connection, 'Name: value' (repeatable; replaces "
            "a recorded header of that name).",
        ),
    ) -> None:
        if pace not in PACES:
            raise BadInput(f"--pace must be one of {', '.join(PACES)}, got {pace!r}")
        if not reply_timeout > 0:
            raise BadInput("--reply-timeout must be greater than 0")
        parsed = parse_target(target)
        if devtools_path:
            import os

            token = token or os.environ.get("RDT_TOKEN")
            if not token:
                raise BadInput("--devtools-path needs the target's token: --token or RDT_TOKEN")
        plan, source_name = load_plan(
            log, recording, connections=connections, skip_flagged=skip_flagged, headers=header
        )
        settings = ReplaySettings(
            target=parsed,
            log=new_log or _default_log(),
            name=name or f"replay-of-{source_name}",
            pace=pace,
            speed=speed,
            reply_timeout=reply_timeout,
            devtools_path=devtools_path,
            token=token,
            source=log,
        )
        bar = _Bar(plan.frames) if sys.stderr.isatty() else None
        replay = TrafficReplay(plan, settings, on_step=bar.step if bar else None)
        try:
            result = asyncio.run(_run(replay))
        finally:
            if bar is not None:
                bar.close()
        _report(result, plan)
        if result.interrupted:
            raise typer.Exit(130)
        if result.problems:
            raise typer.Exit(1)


def _report(result: ReplayResult, plan: Plan) -> None:
    console = out_console()
    for skipped in plan.skipped:
        console.print(
            f"skipped connection {skipped.connection}, frame seq {skipped.seq}: {skipped.reason}"
        )
    left_out = sorted({why for c in plan.connections for why in c.handshake.left_out})
    if left_out:
        console.print(f"recorded handshake headers not resent: {visible(', '.join(left_out))}")
    for problem in result.problems:
        err_console.print(f"rdt: {problem.line()}")
    state = "stopped" if result.interrupted else "replayed"
    console.print(f"{state}: {_summary(result, plan)}")
    ref: Any = result.recording_id
    console.print(f"recorded as recording {ref} in {result.log}")
