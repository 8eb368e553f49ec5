"""The `rdt` commands this package provides: ``state``, ``diff``, ``bisect``, ``what-if``.

Thin: each opens a :class:`~replayer.engine.Replay`, calls it and prints (Rich tree, or JSON
with ``--json``). Bad input is one stderr line and exit 3; a reducer that raises is exit 1 with
the ``v``, the event and the reducer's own traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import typer
from rich.text import Text

from devtools.clikit import (
    JSON,
    LOG,
    RECORDING,
    REDUCER,
    err_console,
    out_console,
    print_json,
    reports_errors,
)
from devtools.errors import BadInput
from devtools.sanitize import visible
from replayer.diff import diff as diff_states
from replayer.diff import without_old
from replayer.engine import Replay
from replayer.errors import ReplayError
from replayer.render import event_text, patch_tree, state_tree, value_text
from replayer.whatif import parse_skip

F = TypeVar("F", bound=Callable[..., Any])

SOURCE = typer.Option(
    "auto",
    "--source",
    help=(
        "auto or events (the recorded events; a recording without any exits 3), or messages "
        "(the client messages, numbered 1, 2, 3 …)."
    ),
)
ALLOW_EMPTY = typer.Option(
    False,
    "--allow-empty",
    help="A recording without events replays as the initial state instead of exiting 3.",
)
EVERY = typer.Option(
    1000,
    "--checkpoint-every",
    min=1,
    help=(
        "Checkpoint spacing K: checkpoints fall on multiples of K "
        "(fewer when large states make saving them costly)."
    ),
)


def reports_replay_errors(func: F) -> F:
    """Like :func:`reports_errors`, and a reducer that raised prints v, event and traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ReplayError as error:
            err_console.print(Text(f"rdt: {visible(str(error))}"))
            err_console.print(Text("event: ") + Text(value_text(error.event, limit=2000)))
            err_console.print(Text(visible(error.traceback, keep_newlines=True).rstrip()))
            raise typer.Exit(error.exit_code) from None

    return reports_errors(wrapper)  # type: ignore[return-value]


def _open(
    log: str,
    reducer: str,
    recording: str | None,
    source: str,
    every: int,
    allow_empty: bool = False,
) -> Replay:
    return Replay.open(
        log,
        reducer=reducer,
        recording=recording,
        source=source,
        checkpoint_every=every,
        progress=sys.stderr.isatty(),
        allow_empty=allow_empty,
    )


def state(
    log: str = LOG,
    reducer: str = REDUCER,
    at: int | None = typer.Option(None, "--at", help="The event v (default: the last)."),
    recording: str | None = RECORDING,
    source: str = SOURCE,
    as_json: bool = JSON,
    every: int = EVERY,
    allow_empty: bool = ALLOW_EMPTY,
) -> None:
    """The state after event V (default: the last).

    Example: rdt state orders.rdtlog --reducer samples.sales_order:reducer --at 120 --json
    """
    with _open(log, reducer, recording, source, every, allow_empty) as replay:
        v = replay.last_v if at is None else replay.check_v(at, "--at")
        value = replay.state_at(v)
    if as_json:
        print_json({"v": v, "state": value})
        return
    out_console().print(state_tree(value, title=f"state after v={v}"))


def diff(
    log: str = LOG,
    a: int = typer.Argument(..., help="From: the state after event A."),
    b: int = typer.Argument(..., help="To: the state after event B."),
    reducer: str = REDUCER,
    recording: str | None = RECORDING,
    source: str = SOURCE,
    as_json: bool = JSON,
    every: int = EVERY,
    allow_empty: bool = ALLOW_EMPTY,
) -> None:
    """The difference between the states after A and after B (RFC 6902 with --json).

    Example: rdt diff orders.rdtlog 100 120 --reducer samples.sales_order:reducer
    """
    with _open(log, reducer, recording, source, every, allow_empty) as replay:
        replay.check_v(a, "A")
        replay.check_v(b, "B")
        patch = diff_states(replay.state_at(a), replay.state_at(b), with_old=True)
    if as_json:
        print_json({"from": a, "to": b, "patch": without_old(patch)})
        return
    out_console().print(patch_tree(patch, title=f"v={a} → v={b}"))


def bisect(
    log: str = LOG,
    reducer: str = REDUCER,
    bad: str = typer.Option(..., "--bad", help="Python expression over state and event."),
    good: int | None = typer.Option(None, "--good", help="A v where EXPR does not hold."),
    bad_at: int | None = typer.Option(None, "--bad-at", help="A v where EXPR holds."),
    recording: str | None = RECORDING,
    source: str = SOURCE,
    as_json: bool = JSON,
    every: int = EVERY,
    allow_empty: bool = ALLOW_EMPTY,
) -> None:
    """The first event after which EXPR holds; exit 0 when found, 1 when never.

    Example: rdt bisect orders.rdtlog --reducer samples.sales_order_buggy:reducer
    --bad "any(o['total'] < 0 for o in state['orders'].values())"
    """
    with _open(log, reducer, recording, source, every, allow_empty) as replay:
        result = replay.bisect(bad, good=good, bad_at=bad_at)
        patch = (
            diff_states(replay.state_at(result.v - 1), replay.state_at(result.v), with_old=True)
            if result.v is not None and not as_json
            else []
        )
    if as_json:
        print_json(result.to_json())
    else:
        console = out_console()
        if result.v is None:
            console.print(Text("the expression never holds", style="bold"))
        else:
            console.print(
                Text("first bad event: ", style="bold") + event_text(result.v, result.event)
            )
            console.print(patch_tree(patch, title=f"what v={result.v} changed"))
            console.print(
                Text(
                    f"{result.checkpoints_touched} checkpoints evaluated, "
                    f"{result.reductions} events replayed in the last window",
                    style="dim",
                )
            )
    if result.v is None:
        raise typer.Exit(1)


def what_if(
    log: str = LOG,
    reducer: str = REDUCER,
    skip: str = typer.Option(..., "--skip", help="Event numbers to leave out: V[,V…]."),
    recording: str | None = RECORDING,
    source: str = SOURCE,
    as_json: bool = JSON,
    every: int = EVERY,
    allow_empty: bool = ALLOW_EMPTY,
) -> None:
    """Replays without the given events and shows how the final state differs.

    Example: rdt what-if orders.rdtlog --reducer samples.sales_order:reducer --skip 12,40
    """
    try:
        skipped = parse_skip(skip)
    except ValueError as error:
        raise BadInput(str(error)) from None
    with _open(log, reducer, recording, source, every, allow_empty) as replay:
        result = replay.what_if(skipped)
        final = replay.state_at()
    if as_json:
        print_json(result.to_json())
        return
    console = out_console()
    where = (
        "the states never diverge"
        if result.first_divergent_v is None
        else f"the timelines diverge at v={result.first_divergent_v}"
    )
    console.print(Text(f"skipping {', '.join(map(str, result.skipped))}: {where}", style="bold"))
    patch = result.diff
    if patch and result.state is not None:
        patch = diff_states(final, result.state, with_old=True)
    console.print(patch_tree(patch, final, title="final state: recorded → what-if"))


def register(app: typer.Typer) -> None:
    """Add this package's commands to the `rdt` app."""
    app.command("state")(reports_replay_errors(state))
    app.command("diff")(reports_replay_errors(diff))
    app.command("bisect")(reports_replay_errors(bisect))
    app.command("what-if")(reports_replay_errors(what_if))
