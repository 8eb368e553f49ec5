"""The `rdt record` and `rdt inject` commands."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from typing import Any

import typer

from devtools import jsonutil, protocol
from devtools.clikit import json_option, out_console, print_json, reports_errors
from devtools.control_client import ControlClient, ControlRefused
from devtools.errors import BadInput, InvalidJSON
from devtools.masking import mask
from devtools.tokens import resolve_token
from recorder.protocols import check_protocol, protocol_for
from recorder.redact import parse_pointers
from recorder.settings import (
    DEFAULT_CONTROL,
    DEFAULT_LISTEN,
    DEFAULT_MAX_RECORD,
    RecorderSettings,
    client_tls,
    parse_devtools_url,
    parse_hostport,
    parse_size,
    parse_upstream,
    server_tls,
)
from recorder.writer import DEFAULT_MAX_QUEUE_BYTES

RECORD_HELP = """Record: a proxy between clients and an upstream websocket server.

Forwards every frame unchanged both ways and records each message (and, with
--devtools-path, the server's events and snapshots) into LOG. Stop with Ctrl-C.

A server without a devtools channel: --events-from inbound makes every inbound JSON
message with a string "type" (matching an --event-types glob, when given) the next
event v, with "ts" (integer ns, when the recorder read it) and "sender" (the
connection id) added, and marks the recording as having events derived from messages.
This assumes the server dispatches each such message, unchanged, as one action, in
the order the recorder forwarded them (a plain ws + Redux server does); messages it
refuses or handles without an action become events too, so narrow with --event-types.
See docs/PROTOCOL.md in the repository.

Example:

    rdt record --upstream ws://127.0.0.1:9000 --log orders.rdtlog --devtools-path /devtools

Several workers of one service (each folds the same events and serves its own
devtools channel): --devtools URL for each (repeatable; the upstream's own channel,
with --devtools-path, is worker 1). The recorder stores one copy of the events and
every worker's state hash after each, and says (on stderr, on the control feed) when
a worker disagrees with the others; rdt verify reports it as worker-divergence. With
--bus nats://HOST:PORT --stream S the recorder also reads the events straight from the
workers' NATS JetStream stream (the bus extra: pip install 'reducer-devtools[bus]');
--upstream is optional then.

Example, three workers, events from their bus:

    rdt record --bus nats://127.0.0.1:4222 --stream orders --devtools
    ws://10.0.0.1:9000/devtools --devtools ws://10.0.0.2:9000/devtools --devtools
    ws://10.0.0.3:9000/devtools --token "$RDT_TOKEN" --log cluster.rdtlog

Example, a server without a devtools channel:

    rdt record --upstream ws://127.0.0.1:9000 --log orders.rdtlog --events-from inbound
    --event-types 'order/*'
"""

INJECT_HELP = """Inject an action into the live server through a running recorder.

Prints the outcome (the injected message's seq, the events it produced, the replies);
exits 1 when the server refused it.

Example:

    rdt inject '{"type": "order/create", "customer": "ACME"}' --token "$RDT_TOKEN"
"""


def _default_log() -> str:
    return time.strftime("./rdt-%Y%m%d-%H%M%S.rdtlog")


def build_settings(
    *,
    upstream: str | None,
    listen: str | None,
    log: str | None,
    name: str | None,
    devtools_path: str | None,
    control: str | None,
    events_from: str | None = None,
    event_types: list[str] | None = None,
    protocol: str = "auto",
    max_frame_size: str | None = None,
    token: str,
    redact: list[str] | None,
    allow_origin: list[str] | None,
    upstream_ca: str | None = None,
    insecure: bool = False,
    listen_cert: str | None = None,
    listen_key: str | None = None,
    redact_header: list[str] | None = None,
    redact_query: list[str] | None = None,
    max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES,
    devtools: list[str] | None = None,
    bus: str | None = None,
    stream: str | None = None,
) -> RecorderSettings:
    """Turn the command's options into settings (raises ``BadInput`` for bad ones)."""
    parse_pointers(redact or [])
    check_protocol(protocol)
    protocol_for(events_from, tuple(event_types or ()), "plain" if protocol == "auto" else protocol)
    if events_from is not None and devtools_path:
        raise BadInput(
            "--events-from inbound and --devtools-path exclude each other: events come from "
            "the server's devtools channel or from the client messages, not both"
        )
    if protocol == "logux" and devtools_path:
        raise BadInput(
            "--protocol logux and --devtools-path exclude each other: Logux events come from "
            "its sync messages"
        )
    urls = tuple(devtools or ())
    for url in urls:
        parse_devtools_url(url)
    if (bus is None) != (stream is None):
        raise BadInput("--bus and --stream go together: the bus's URL and its stream")
    if bus is not None and stream is not None:
        from recorder.bus import check

        problem = check(bus, stream)
        if problem is not None:
            raise BadInput(problem)
    if (urls or bus) and (events_from is not None or protocol == "logux"):
        raise BadInput(
            "--devtools and --bus record the workers' own events: they exclude "
            "--events-from inbound and --protocol logux"
        )
    if upstream is None and not urls and bus is None:
        raise BadInput("give --upstream ws://HOST:PORT (or --devtools URL, or --bus)")
    if upstream is None and devtools_path:
        raise BadInput("--devtools-path is a path on --upstream: give --upstream too")
    limit = parse_size(max_frame_size) if max_frame_size is not None else DEFAULT_MAX_RECORD
    parsed = parse_upstream(upstream) if upstream is not None else None
    if parsed is not None:
        client_tls(parsed, ca=upstream_ca, insecure=insecure)  # bad TLS options: exit 3 now
    server_tls(listen_cert, listen_key)
    if bus is not None:
        from recorder.bus import require_nats

        require_nats()
    return RecorderSettings(
        upstream=parsed,
        devtools_urls=urls,
        bus=bus,
        stream=stream,
        log=log or _default_log(),
        token=token,
        name=name or "recording",
        listen=parse_hostport(listen, "--listen") if listen else DEFAULT_LISTEN,
        control=parse_hostport(control, "--control") if control else DEFAULT_CONTROL,
        devtools_path=devtools_path,
        events_from=events_from,
        protocol=protocol,
        max_record_size=limit,
        event_types=tuple(event_types or ()),
        redact=tuple(redact or ()),
        allow_origins=tuple(allow_origin or ()),
        upstream_ca=upstream_ca,
        insecure=insecure,
        listen_cert=listen_cert,
        listen_key=listen_key,
        redact_headers=tuple(redact_header or ()),
        redact_query=tuple(redact_query or ()),
        max_queue_bytes=max_queue_bytes,
    )


async def _run_record(settings: RecorderSettings, token_generated: bool) -> None:
    from recorder.app import start_recorder

    # The writer thread holds the GIL while it batches rows; hand it back to the forwarding
    # loop sooner than the default 5 ms so traffic never waits behind the store.
    sys.setswitchinterval(0.0005)

    try:
        handle = await start_recorder(settings)
    except OSError as error:
        raise BadInput(f"cannot listen: {error}") from error
    console = out_console()
    sources = [settings.upstream.url] if settings.upstream is not None else []
    sources += [f"worker {i}: {link.url}" for i, link in enumerate(handle.links, 1)]
    if settings.bus is not None:
        sources.append(f"bus {mask(settings.bus)} stream {settings.stream}")
    console.print(f"recording {', '.join(sources)} -> {settings.log}")
    if handle.proxy is not None:
        console.print(f"listening on {handle.url}")
    if handle.control_url:
        console.print(f"control endpoint {handle.control_url}")
    if token_generated:
        console.print(f"token {settings.token}")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await handle.close()
        counts = (
            f"{handle.session.connections} connections, {handle.session.messages} messages, "
            f"{handle.session.events} events"
        )
        console.print(f"stopped; recorded {counts} in {settings.log}")
        failures = handle.proxy.health.summary() if handle.proxy is not None else None
        if failures:
            console.print(failures)


async def _run_inject(url: str, token: str, action: dict[str, Any], via: str) -> dict[str, Any]:
    """The endpoint's answer: ``@@devtools/injected``, or the ``@@devtools/error`` it sent."""
    async with ControlClient(url, token) as client:
        try:
            return await client.inject(action, via=via)
        except ControlRefused as refused:
            return refused.answer
        except TimeoutError:
            raise BadInput(f"the control endpoint {url} did not answer within 30 s") from None


def register(app: typer.Typer) -> None:
    """Add `record` and `inject` to the `rdt` app."""

    @app.command("record", help=RECORD_HELP)
    @reports_errors
    def record(
        upstream: str = typer.Option(
            None,
            help="The server: ws://HOST:PORT[/PATH] or wss://… (TLS, system trust store); "
            "optional with --devtools or --bus.",
        ),
        listen: str = typer.Option(None, help="Where clients connect (default 127.0.0.1:8765)."),
        log: str = typer.Option(
            None, help="SQLite path or SQLAlchemy URL (default ./rdt-<timestamp>.rdtlog)."
        ),
        name: str = typer.Option(None, help="The recording's name."),
        devtools_path: str = typer.Option(
            None, help="Record the server's events via its devtools channel at this path."
        ),
        devtools: list[str] = typer.Option(
            None,
            "--devtools",
            metavar="URL",
            help="Another worker's devtools channel, ws[s]://HOST:PORT/PATH (repeatable; "
            "--token is sent to each, never put it in the URL).",
        ),
        bus: str = typer.Option(
            None,
            "--bus",
            metavar="nats://HOST:PORT",
            help="Read the events from the workers' NATS JetStream bus (with --stream).",
        ),
        stream: str = typer.Option(
            None, "--stream", metavar="S", help="The bus's stream (subject S.events)."
        ),
        events_from: str = typer.Option(
            None,
            "--events-from",
            metavar="inbound",
            help=(
                "No devtools channel: each typed inbound JSON message becomes the next event "
                "(assumes the server dispatches each as an action, in forwarding order)."
            ),
        ),
        event_types: list[str] = typer.Option(
            None,
            "--event-types",
            metavar="GLOB",
            help="With --events-from: only message types matching GLOB are events (repeatable).",
        ),
        protocol: str = typer.Option(
            "auto",
            "--protocol",
            metavar="auto|plain|logux",
            help=(
                "How messages are typed. logux: JSON arrays typed by their first element, every "
                "sync action an event; auto: logux when the first client frame is "
                '["connect", …], else plain.'
            ),
        ),
        max_frame_size: str = typer.Option(
            None,
            "--max-frame-size",
            metavar="SIZE",
            help="Store frames up to SIZE (bytes, or 512KiB, 2MiB; default 4MiB); larger "
            "ones are forwarded, stored as too-large.",
        ),
        control: str = typer.Option(None, help="Control endpoint (default 127.0.0.1:8766)."),
        token: str = typer.Option(None, help="Devtools token (default: $RDT_TOKEN or generated)."),
        redact: list[str] = typer.Option(None, help="JSON pointer removed before storing."),
        allow_origin: list[str] = typer.Option(
            None, help="An Origin the control endpoint accepts."
        ),
        upstream_ca: str = typer.Option(
            None, help="PEM file of CA certificates trusted for a wss:// upstream."
        ),
        insecure: bool = typer.Option(
            False, "--insecure", help="Do NOT check the wss:// upstream's certificate."
        ),
        listen_cert: str = typer.Option(
            None, help="PEM certificate: clients connect with wss:// (TLS listener)."
        ),
        listen_key: str = typer.Option(None, help="The listener's private key (PEM)."),
        redact_header: list[str] = typer.Option(
            None, help="A handshake header whose value is never stored."
        ),
        redact_query: list[str] = typer.Option(
            None, help="A query parameter of the upgrade whose value is never stored."
        ),
        max_queue_bytes: int = typer.Option(
            DEFAULT_MAX_QUEUE_BYTES,
            "--max-queue-bytes",
            min=1024,
            help=(
                "Bytes of records waiting for the store held in memory (default 64 MiB); "
                "past it messages are not recorded but marked as gaps with counts, and the "
                "forwarded traffic never waits."
            ),
        ),
    ) -> None:
        resolved = resolve_token(token)
        settings = build_settings(
            upstream=upstream,
            listen=listen,
            log=log,
            name=name,
            devtools_path=devtools_path,
            control=control,
            events_from=events_from,
            event_types=event_types,
            protocol=protocol,
            max_frame_size=max_frame_size,
            token=resolved.value,
            redact=redact,
            allow_origin=allow_origin,
            upstream_ca=upstream_ca,
            insecure=insecure,
            listen_cert=listen_cert,
            listen_key=listen_key,
            redact_header=redact_header,
            redact_query=redact_query,
            max_queue_bytes=max_queue_bytes,
            devtools=devtools,
            bus=bus,
            stream=stream,
        )
        asyncio.run(_run_record(settings, resolved.generated))

    @app.command("inject", help=INJECT_HELP)
    @reports_errors
    def inject(
        action_json: str = typer.Argument(..., metavar="ACTION_JSON", help="The action object."),
        control: str = typer.Option(
            "ws://127.0.0.1:8766/", help="The recorder's control endpoint."
        ),
        token: str = typer.Option(None, help="The recorder's token (default: $RDT_TOKEN)."),
        via: str = typer.Option(
            "devtools",
            help="devtools, client, or logux (as a Logux client: connect, then sync the "
            "action; prints the server's logux/processed or logux/undo).",
        ),
        json_output: bool = json_option("Print the answer as one JSON document."),
    ) -> None:
        try:
            action = jsonutil.loads(action_json)
        except ValueError as error:
            raise InvalidJSON(f"ACTION_JSON is not valid JSON: {error}") from None
        if not isinstance(action, dict) or not isinstance(action.get("type"), str):
            raise InvalidJSON("ACTION_JSON must be a JSON object with a string 'type'")
        if via not in ("devtools", "client", "logux"):
            raise BadInput("--via must be devtools, client or logux")
        resolved = resolve_token(token)
        if resolved.generated:
            raise BadInput("no token: pass --token or set RDT_TOKEN")
        answer = asyncio.run(_run_inject(control, resolved.value, action, via))
        if json_output:
            print_json(answer)
        else:
            _print_outcome(answer)
        if answer.get("type") != protocol.INJECTED or not answer.get("ok"):
            raise typer.Exit(1)


def _print_outcome(answer: dict[str, Any]) -> None:
    console = out_console()
    if answer.get("type") != protocol.INJECTED:
        console.print(f"error: {answer.get('error')}")
        return
    status = "ok" if answer.get("ok") else f"failed: {answer.get('error')}"
    console.print(f"{status}; seq {answer.get('seq')}; events {answer.get('events') or []}")
    if "logux" in answer:
        logux = answer["logux"]
        text = jsonutil.dumps(logux).decode("utf-8", "replace") if logux else "no answer"
        console.print(f"logux {text}")
    for reply in answer.get("replies") or []:
        console.print("reply " + jsonutil.dumps(reply).decode("utf-8", "replace"))
