"""The ``rdt sample`` command: run a sample server (and optionally traffic against it)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import shutil
import signal
import socket
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import typer

from devtools.clikit import out_console, reports_errors
from devtools.errors import BadInput
from devtools.tasks import spawn
from devtools.tokens import resolve_token

SAMPLE_MODULES = {
    "sales-order": "samples.sales_order",
    "sales-order-buggy": "samples.sales_order_buggy",
    "shopping-list": "samples.shopping_list",
}
"""Sample names as ``rdt sample`` takes them, and their modules."""

NODE_SAMPLES = {"node-sales-order": "server.mjs"}
"""Samples served by Node (files in samples/js/), with the traffic of the Python twin's name."""

NODE_TRAFFIC = {"node-sales-order": "sales-order"}

LOGUX_SAMPLES = {"logux-counter": "logux_server.mjs"}
"""Samples that are real @logux/server servers (files in samples/js/): no devtools channel,
record them with ``rdt record --protocol logux`` (or ``auto``)."""

JS_DIR = Path(__file__).resolve().parent / "js"

DEFAULT_PORT = 8700


def load_sample(name: str) -> ModuleType:
    """The module of sample ``name`` (it exports ``reducer``, ``MIDDLEWARE``, ``make_server``).

    Raises:
        BadInput: no sample has that name.
    """
    module = SAMPLE_MODULES.get(name)
    if module is None:
        raise BadInput(f"unknown sample {name!r} (known: {', '.join(SAMPLE_MODULES)})")
    return importlib.import_module(module)


def register(app: typer.Typer) -> None:
    """Add these commands to the `rdt` app."""
    app.command("sample")(sample)


@reports_errors
def sample(
    name: str = typer.Argument(
        ...,
        help="sales-order, sales-order-buggy, shopping-list, node-sales-order (the Node "
        "server samples/js/server.mjs: ws + Redux Toolkit + node/rdt-devtools), or "
        "logux-counter (samples/js/logux_server.mjs, a real @logux/server; no devtools "
        "channel). The Node ones need node and `npm ci --prefix samples/js`.",
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(DEFAULT_PORT, "--port", help="Port to listen on (0: any free)."),
    token: str | None = typer.Option(
        None, "--token", help="Devtools channel token (default: RDT_TOKEN, else generated)."
    ),
    hash_every: int = typer.Option(1, "--hash-every", help="Send the state hash every K events."),
    snapshot_every: int | None = typer.Option(
        None, "--snapshot-every", help="Also send devtools subscribers a snapshot every K events."
    ),
    traffic: int = typer.Option(
        0, "--traffic", help="Once up, send N seeded messages from each of 4 clients."
    ),
    duration: float | None = typer.Option(
        None, "--duration", help="Stop after this many seconds (default: run until Ctrl-C)."
    ),
    bus: str | None = typer.Option(
        None,
        "--bus",
        metavar="URL",
        help="Run as one worker of several on a NATS JetStream bus, e.g. nats://HOST:4222 "
        "(comma-separated for a cluster; needs the 'bus' extra, nats-py). Python samples only.",
    ),
    stream: str | None = typer.Option(
        None, "--stream", help="The JetStream stream the workers share (created when missing)."
    ),
    worker_id: str | None = typer.Option(
        None, "--worker-id", help="This worker's id on the bus (default: HOSTNAME-PID)."
    ),
) -> None:
    """Run a sample reducer server with its devtools channel.

    Prints the client URL, the devtools URL and the token, then serves until Ctrl-C. With
    --bus it is one worker of several sharing a NATS JetStream stream (docs/BUS.md).

    Example: rdt sample sales-order --port 8700 --traffic 50

    Example: rdt sample sales-order --bus nats://127.0.0.1:4222 --stream orders --port 8701
    """
    if hash_every < 0 or (snapshot_every is not None and snapshot_every < 1):
        raise BadInput("--hash-every must be ≥ 0 and --snapshot-every ≥ 1")
    if bus is None and (stream is not None or worker_id is not None):
        raise BadInput("--stream and --worker-id go with --bus")
    if bus is not None and name not in SAMPLE_MODULES:
        raise BadInput(f"--bus runs the Python samples only ({', '.join(SAMPLE_MODULES)})")
    if name in LOGUX_SAMPLES:
        if traffic:
            raise BadInput(f"{name} takes no --traffic (send Logux clients to it instead)")
        _logux_sample(name, host, port, duration)
        return
    if name in NODE_SAMPLES:
        _node_sample(name, host, port, token, hash_every, snapshot_every, traffic, duration)
        return
    module = load_sample(name)
    resolved = resolve_token(token)
    extra: dict[str, Any] = {}
    if bus is not None:
        from devtools.bus import NatsBus

        extra["bus"] = NatsBus.from_options(bus, stream, worker_id)
    server = module.make_server(
        token=resolved.value, hash_every=hash_every, snapshot_every=snapshot_every, **extra
    )
    console = out_console()

    async def main() -> None:
        try:
            handle = await server.serve(host, port)
        except OSError as error:
            raise BadInput(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
        try:
            console.print(f"sample:   {name}")
            if server.bus is not None:
                _print_worker(console, server.bus)
            console.print(f"clients:  {handle.url}")
            console.print(f"devtools: {handle.devtools_url}")
            if resolved.generated:
                console.print(f"token:    {resolved.value}")
            else:
                console.print(f"token:    (from {'--token' if token else 'RDT_TOKEN'})")
            if traffic:
                from samples.traffic import run_traffic

                stats = await run_traffic(handle.url, sample=name, messages=traffic)
                console.print(
                    f"traffic:  {stats.sent} sent, {stats.received} received, "
                    f"{stats.errors} errors in {stats.elapsed:.2f} s; v={server.v}"
                )
            if duration is None:
                console.print("serving; Ctrl-C to stop")
                await asyncio.Future()
            else:
                await asyncio.sleep(duration)
        finally:
            await handle.close()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        console.print("stopped")


def _print_worker(console: Any, bus: Any) -> None:
    """The bus lines of ``rdt sample --bus``: worker id, bus and where it joined."""
    console.print(f"worker:   {bus.worker_id}", soft_wrap=True)
    console.print(f"bus:      {bus.url} stream {bus.stream}", soft_wrap=True)
    plan = bus.joined
    if plan is not None:
        start = (
            f"the snapshot of worker {plan.offer.worker}"
            if plan.offer is not None
            else "the stream's start"
        )
        line = f"joined:   v={plan.v} from {start}; caught up to v={plan.catch_up_to}"
        console.print(line, soft_wrap=True)


def node_command(name: str) -> list[str]:
    """The command line that starts Node sample ``name``.

    Raises:
        BadInput: node is not on PATH, or samples/js's packages are not installed.
    """
    node = shutil.which("node")
    if node is None:
        raise BadInput(f"{name} needs Node.js: no `node` on PATH (install Node.js 18 or later)")
    if not (JS_DIR / "node_modules" / "rdt-devtools" / "package.json").is_file():
        raise BadInput(f"{name} needs its packages: run `npm ci --prefix {JS_DIR}`")
    return [node, str(JS_DIR / NODE_SAMPLES[name])]


def _node_sample(
    name: str,
    host: str,
    port: int,
    token: str | None,
    hash_every: int,
    snapshot_every: int | None,
    traffic: int,
    duration: float | None,
) -> None:
    """Run a Node sample as a child process (the token through RDT_TOKEN, not argv)."""
    command = node_command(name)
    resolved = resolve_token(token)
    args = [*command, "--host", host, "--port", str(port), "--hash-every", str(hash_every)]
    if snapshot_every is not None:
        args += ["--snapshot-every", str(snapshot_every)]
    env = {**os.environ, "RDT_TOKEN": resolved.value}
    console = out_console()

    async def main() -> None:
        child = await asyncio.create_subprocess_exec(
            *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        try:
            urls: dict[str, str] = {}
            async with asyncio.timeout(30):
                while "devtools" not in urls:
                    line = (await child.stdout.readline()).decode()
                    if not line:
                        # it exited: reap it here, before the message (no terminate race)
                        err = (await child.stderr.read()).decode().strip().splitlines()
                        await child.wait()
                        raise BadInput(err[-1] if err else f"{name} exited before listening")
                    key, _, value = line.partition(":")
                    urls[key.strip()] = value.strip()
            console.print(f"sample:   {name} (node, pid {child.pid})")
            console.print(f"clients:  {urls['clients']}")
            console.print(f"devtools: {urls['devtools']}")
            if resolved.generated:
                console.print(f"token:    {resolved.value}")
            else:
                console.print(f"token:    (from {'--token' if token else 'RDT_TOKEN'})")
            if traffic:
                from samples.traffic import run_traffic

                stats = await run_traffic(
                    urls["clients"], sample=NODE_TRAFFIC[name], messages=traffic
                )
                console.print(
                    f"traffic:  {stats.sent} sent, {stats.received} received, "
                    f"{stats.errors} errors in {stats.elapsed:.2f} s"
                )
            await _serve(child, duration, console)
        finally:
            await _stop(child)

    _run_child_sample(main, console)


def logux_command(name: str, host: str, port: int) -> list[str]:
    """The command line that starts Logux sample ``name`` on ``host:port``.

    Raises:
        BadInput: node is not on PATH, or samples/js's packages are not installed.
    """
    node = shutil.which("node")
    if node is None:
        raise BadInput(f"{name} needs Node.js: no `node` on PATH (install Node.js 18 or later)")
    if not (JS_DIR / "node_modules" / "@logux" / "server" / "package.json").is_file():
        raise BadInput(f"{name} needs its packages: run `npm ci --prefix {JS_DIR}`")
    return [node, str(JS_DIR / LOGUX_SAMPLES[name]), str(port), host]


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _first_fatal(name: str, lines: deque[str]) -> str | None:
    """Why a dead Logux server died: the first line of its FATAL/ERROR report, else its last."""
    for line in lines:
        if line.startswith(("FATAL", "ERROR")):
            head = " ".join(line.split("\x0b")[0].split())  # Logux wraps its report with \v
            return f"{name} could not start: {head}"
    return lines[-1] if lines else None


def _logux_sample(name: str, host: str, port: int, duration: float | None) -> None:
    """Run a Logux sample as a child process until it exits, ``duration`` or Ctrl-C.

    Its output is drained all along (Logux logs every action; a full pipe would stall it), and
    the last line of its stderr is the one-line error when it exits before listening.
    """
    command = logux_command(name, host, port)
    if port == 0:  # Logux prints the port it was given: choose a free one here
        command[2] = str(port := _free_port(host))
    console = out_console()

    async def main() -> None:
        child = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        errors: deque[str] = deque(maxlen=20)

        async def drain(stream: asyncio.StreamReader, keep: deque[str] | None) -> None:
            while line := await stream.readline():
                if keep is not None and line.strip():
                    keep.append(line.decode("utf-8", "replace").strip())

        assert child.stdout is not None and child.stderr is not None
        err_task = spawn(drain(child.stderr, errors), "rdt-sample-stderr")
        out_task: asyncio.Task[None] | None = None
        try:
            async with asyncio.timeout(30):
                while True:
                    line = (await child.stdout.readline()).decode()
                    if not line:
                        await err_task
                        await child.wait()
                        raise BadInput(
                            _first_fatal(name, errors) or f"{name} exited before listening"
                        )
                    if line.startswith("listening"):
                        break
            out_task = spawn(drain(child.stdout, None), "rdt-sample-stdout")
            shown = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
            url = f"ws://{shown}:{port}/"
            console.print(f"sample:   {name} (node, pid {child.pid})")
            console.print(f"clients:  {url}")
            console.print("protocol: logux (no devtools channel)")
            console.print(f"record:   rdt record --upstream {url} --protocol logux")
            await _serve(child, duration, console)
        finally:
            await _stop(child)
            for task in (err_task, out_task):
                if task is not None:
                    task.cancel()

    _run_child_sample(main, console)


def _run_child_sample(main: Callable[[], Awaitable[None]], console: Any) -> None:
    """Run a child-process sample's ``main`` until it returns, Ctrl-C or SIGTERM.

    SIGTERM cancels ``main`` so its ``finally`` stops the child: the signal's default action
    would end rdt at once and leave the Node server running, orphaned.
    """

    async def guarded() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            await main()
        finally:
            loop.remove_signal_handler(signal.SIGTERM)

    try:
        asyncio.run(guarded())
    except (KeyboardInterrupt, asyncio.CancelledError):
        console.print("stopped")


async def _serve(child: Any, duration: float | None, console: Any) -> None:
    """Wait while a sample's child process serves: until it exits, or ``duration`` seconds
    (``None``: until Ctrl-C)."""
    if duration is None:
        console.print("serving; Ctrl-C to stop")
        await child.wait()
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(child.wait(), duration)


async def _stop(child: Any) -> None:
    """Stop a sample's child process if it still runs, and reap it."""
    if child.returncode is None:
        child.terminate()
        await child.wait()
