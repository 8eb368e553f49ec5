"""The ``rdt sample`` command: run a sample server (and optionally traffic against it)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import shutil
from pathlib import Path
from types import ModuleType

import typer

from devtools.clikit import out_console, reports_errors
from devtools.errors import BadInput
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
        help="sales-order, sales-order-buggy, shopping-list, or node-sales-order (the Node "
        "server samples/js/server.mjs: ws + Redux Toolkit + node/rdt-devtools; needs node and "
        "`npm ci --prefix samples/js`).",
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
) -> None:
    """Run a sample reducer server with its devtools channel.

    Prints the client URL, the devtools URL and the token, then serves until Ctrl-C.

    Example: rdt sample sales-order --port 8700 --traffic 50
    """
    if hash_every < 0 or (snapshot_every is not None and snapshot_every < 1):
        raise BadInput("--hash-every must be ≥ 0 and --snapshot-every ≥ 1")
    if name in NODE_SAMPLES:
        _node_sample(name, host, port, token, hash_every, snapshot_every, traffic, duration)
        return
    module = load_sample(name)
    resolved = resolve_token(token)
    server = module.make_server(
        token=resolved.value, hash_every=hash_every, snapshot_every=snapshot_every
    )
    console = out_console()

    async def main() -> None:
        try:
            handle = await server.serve(host, port)
        except OSError as error:
            raise BadInput(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
        try:
            console.print(f"sample:   {name}")
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
            if duration is None:
                console.print("serving; Ctrl-C to stop")
                await child.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(child.wait(), duration)
        finally:
            if child.returncode is None:
                child.terminate()
                await child.wait()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        console.print("stopped")
