"""The ``rdt diff-runs`` command: the first reply (and event) that differs between two runs."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import typer
from rich.text import Text

from devtools.clikit import json_option, log_argument, out_console, print_json, reports_errors
from devtools.errors import BadInput
from devtools.sanitize import visible
from devtools.store import Log, LogReader
from replayer.diff import without_old
from replayer.diff_runs import (
    ConnectionDifference,
    EventComparison,
    Ignore,
    RunDifference,
    compare_events,
    compare_frames,
    pair_connections,
)
from replayer.findings import render_diff

DIFF_RUNS_HELP = """Compare two runs of the same traffic: the first reply that differs.

Matches the client connections of the two recordings in the order they were opened and,
per connection, reports the first frame the server sent that differs (a JSON diff, old → new),
frames missing or extra, and close codes that differ; where both runs have events, the first
v whose event or state hash differs. --ignore leaves a JSON pointer out of every comparison
(repeatable; * matches any key or index: --ignore /ts --ignore /orders/*/updated_ns).
Exit 0 the same, 1 different, 3 bad input.

Example:

    rdt replay-traffic orders.rdtlog --target ws://127.0.0.1:8701 --log new.rdtlog
    rdt diff-runs orders.rdtlog new.rdtlog --ignore /ts
"""

_PREVIEW = 200


def diff_runs(a: LogReader, b: LogReader, ignore: Ignore) -> RunDifference:
    """Compare recording ``a`` with recording ``b`` (the I/O around :mod:`replayer.diff_runs`)."""
    differences: list[ConnectionDifference] = []
    pairs = pair_connections(a.connections(), b.connections())
    frames = 0
    for ca, cb in pairs:
        fa = a.messages(direction="out", connection=ca.id) if ca is not None else ()
        fb = b.messages(direction="out", connection=cb.id) if cb is not None else ()
        difference, compared = compare_frames(ca, cb, fa, fb, ignore)
        frames += compared
        if difference is not None:
            differences.append(difference)
    events: EventComparison | None = None
    if a.first_v() is not None and b.first_v() is not None:
        events = compare_events(a.events(), b.events(), ignore)
    return RunDifference(tuple(differences), len(pairs), frames, events)


def _preview(payload: bytes) -> str:
    text = payload[:_PREVIEW].decode("utf-8", "replace")
    return visible(text) + ("…" if len(payload) > _PREVIEW else "")


def to_json(result: RunDifference) -> dict[str, Any]:
    """The ``--json`` document."""
    connections = []
    for d in result.connections:
        first = None
        if d.first is not None:
            f = d.first
            first = {
                "index": f.index,
                "seq_a": f.seq_a,
                "seq_b": f.seq_b,
                "type_a": f.type_a,
                "type_b": f.type_b,
                "diff": without_old(f.patch) if f.patch is not None else None,
                "a": None if f.patch is not None else _preview(f.payload_a),
                "b": None if f.patch is not None else _preview(f.payload_b),
            }
        connections.append(
            {
                "a": d.a,
                "b": d.b,
                "first_difference": first,
                "frames_a": d.frames_a,
                "frames_b": d.frames_b,
                "missing": d.missing,
                "extra": d.extra,
                "close_a": d.close_a,
                "close_b": d.close_b,
            }
        )
    events = None
    if result.events is not None:
        e = result.events.difference
        events = {
            "compared": result.events.compared,
            "hashes_until": result.events.hashes_until,
            "first_difference": None
            if e is None
            else {
                "v": e.v,
                "kind": e.kind,
                "type_a": e.type_a,
                "type_b": e.type_b,
                "diff": without_old(e.patch) if e.patch is not None else None,
                "hash_a": e.hash_a,
                "hash_b": e.hash_b,
            },
        }
    return {
        "same": result.same,
        "compared_connections": result.compared_connections,
        "compared_frames": result.compared_frames,
        "connections": connections,
        "events": events,
    }


def render(result: RunDifference, name_a: str, name_b: str) -> None:
    """Print the comparison for a person (old → new is A → B)."""
    console = out_console()
    console.print(f"A: {name_a}")
    console.print(f"B: {name_b}")
    for d in result.connections:
        if d.a is None or d.b is None:
            which = f"connection {d.a} only in A" if d.b is None else f"connection {d.b} only in B"
            console.print(f"{which} ({d.frames_a or d.frames_b} frames from the server)")
            continue
        head = f"connection {d.a}" if d.a == d.b else f"connection {d.a} (A) / {d.b} (B)"
        if d.first is not None:
            f = d.first
            kinds = (
                visible(str(f.type_a))
                if f.type_a == f.type_b
                else (f"{visible(str(f.type_a))} → {visible(str(f.type_b))}")
            )
            console.print(
                f"{head}: first differing reply: frame {f.index} from the server "
                f"(A seq {f.seq_a}, B seq {f.seq_b}), type {kinds}"
            )
            if f.patch is not None:
                console.print(render_diff(f.patch))
            else:
                console.print(Text(f"      A: {_preview(f.payload_a)}"))
                console.print(Text(f"      B: {_preview(f.payload_b)}"))
        if d.missing:
            console.print(f"{head}: {d.missing} frames from the server missing in B")
        if d.extra:
            console.print(f"{head}: {d.extra} extra frames from the server in B")
        if d.close_a != d.close_b:
            console.print(f"{head}: close code {d.close_a} → {d.close_b}")
    events = result.events
    if events is None:
        console.print("events: not compared (a run has none)")
    elif events.difference is None:
        line = f"events: {events.compared} the same"
        if events.hashes_until is not None:
            line += f" (state hashes compared up to v {events.hashes_until}: events differ in "
            line += "ignored fields after it)"
        console.print(line)
    else:
        e = events.difference
        if e.kind == "missing":
            console.print(f"events: v {e.v} ({visible(str(e.type_a))}) and later missing in B")
        elif e.kind == "extra":
            console.print(f"events: v {e.v} ({visible(str(e.type_b))}) and later only in B")
        elif e.kind == "hash":
            console.print(
                f"events: first difference at v {e.v} ({visible(str(e.type_a))}): state hash "
                f"{e.hash_a} → {e.hash_b}"
            )
        else:
            console.print(f"events: first difference at v {e.v} ({visible(str(e.type_a))})")
            if e.patch:
                console.print(render_diff(e.patch))
    verdict = "same" if result.same else "different"
    console.print(
        f"{verdict}: {result.compared_connections} connections, "
        f"{result.compared_frames} server frames compared"
    )


def register(app: typer.Typer) -> None:
    """Add `diff-runs` to the `rdt` app."""

    @app.command("diff-runs", help=DIFF_RUNS_HELP)
    @reports_errors
    def diff_runs_command(
        log_a: str = log_argument(help="The first run's log (path or URL)."),
        log_b: str = log_argument(help="The second run's log (path or URL)."),
        recording_a: str = typer.Option(None, help="The recording in LOG_A (default: latest)."),
        recording_b: str = typer.Option(None, help="The recording in LOG_B (default: latest)."),
        ignore: list[str] = typer.Option(None, help="A JSON pointer left out (repeatable)."),
        json_output: bool = json_option(),
    ) -> None:
        try:
            ignored = Ignore.parse(ignore or [])
        except ValueError as error:
            raise BadInput(str(error)) from None
        with ExitStack() as stack:
            store_a = stack.enter_context(Log.open(log_a))
            store_b = store_a if log_b == log_a else stack.enter_context(Log.open(log_b))
            reader_a = store_a.reader(recording_a)
            reader_b = store_b.reader(recording_b)
            result = diff_runs(reader_a, reader_b, ignored)
            name_a = f"{log_a} recording {reader_a.recording.id} ({reader_a.recording.name})"
            name_b = f"{log_b} recording {reader_b.recording.id} ({reader_b.recording.name})"
        if json_output:
            print_json(to_json(result))
        else:
            render(result, visible(name_a), visible(name_b))
        if not result.same:
            raise typer.Exit(1)
