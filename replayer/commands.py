"""The `rdt` commands this package provides: ``state``, ``diff``, ``bisect``, ``what-if``,
``search``.

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
    ORDER,
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
from replayer.whatif import parse_action, parse_skip

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
    order: str = "v",
) -> Replay:
    return Replay.open(
        log,
        reducer=reducer,
        recording=recording,
        source=source,
        checkpoint_every=every,
        progress=sys.stderr.isatty(),
        allow_empty=allow_empty,
        order=order,
    )


def _in_order(replay: Replay) -> str:
    """What a title adds in another order than ``v``: `` (logux order)``."""
    return "" if replay.order == "v" else f" ({replay.order} order)"


def _with_order(replay: Replay, doc: dict[str, Any]) -> dict[str, Any]:
    """A ``--json`` document, with ``"order"`` added in another order than ``v``."""
    return doc if replay.order == "v" else {**doc, "order": replay.order}


def state(
    log: str = LOG,
    reducer: str = REDUCER,
    at: int | None = typer.Option(None, "--at", help="The event v (default: the last)."),
    recording: str | None = RECORDING,
    source: str = SOURCE,
    as_json: bool = JSON,
    every: int = EVERY,
    allow_empty: bool = ALLOW_EMPTY,
    order: str = ORDER,
) -> None:
    """The state after event V (default: the last).

    With --order logux, the state after the events up to and including V in Logux's order
    (default: after all of them; the v shown is the event folded last).

    Example: rdt state orders.rdtlog --reducer samples.sales_order:reducer --at 120 --json

    Example: rdt state logux.rdtlog --reducer samples.logux_counter:reducer --order logux
    """
    with _open(log, reducer, recording, source, every, allow_empty, order) as replay:
        v = replay.final_v if at is None else replay.check_v(at, "--at")
        value = replay.state_at(v)
        title = f"state after v={v}{_in_order(replay)}"
        doc = _with_order(replay, {"v": v, "state": value})
    if as_json:
        print_json(doc)
        return
    out_console().print(state_tree(value, title=title))


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
    order: str = ORDER,
) -> None:
    """The difference between the states after A and after B (RFC 6902 with --json).

    Example: rdt diff orders.rdtlog 100 120 --reducer samples.sales_order:reducer
    """
    with _open(log, reducer, recording, source, every, allow_empty, order) as replay:
        replay.check_v(a, "A")
        replay.check_v(b, "B")
        patch = diff_states(replay.state_at(a), replay.state_at(b), with_old=True)
        title = f"v={a} → v={b}{_in_order(replay)}"
        doc = _with_order(replay, {"from": a, "to": b, "patch": without_old(patch)})
    if as_json:
        print_json(doc)
        return
    out_console().print(patch_tree(patch, title=title))


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
    order: str = ORDER,
) -> None:
    """The first event after which EXPR holds; exit 0 when found, 1 when never.

    Example: rdt bisect orders.rdtlog --reducer samples.sales_order_buggy:reducer
    --bad "any(o['total'] < 0 for o in state['orders'].values())"
    """
    with _open(log, reducer, recording, source, every, allow_empty, order) as replay:
        result = replay.bisect(bad, good=good, bad_at=bad_at)
        patch = (
            diff_states(
                replay.state_at(replay.previous_v(result.v)),
                replay.state_at(result.v),
                with_old=True,
            )
            if result.v is not None and not as_json
            else []
        )
        doc = _with_order(replay, result.to_json())
    if as_json:
        print_json(doc)
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
    skip: str | None = typer.Option(None, "--skip", help="Event numbers to leave out: V[,V…]."),
    insert_after: tuple[int, str] | None = typer.Option(
        None,
        "--insert-after",
        metavar="V ACTION_JSON",
        help="Reduce a hypothetical action (a JSON object with a type) right after event V.",
    ),
    recording: str | None = RECORDING,
    source: str = SOURCE,
    as_json: bool = JSON,
    every: int = EVERY,
    allow_empty: bool = ALLOW_EMPTY,
    order: str = ORDER,
) -> None:
    """Replays without the given events (or with one more) and shows how the final state differs.

    Example: rdt what-if orders.rdtlog --reducer samples.sales_order:reducer --skip 12,40

    Example: rdt what-if orders.rdtlog --reducer samples.sales_order:reducer
    --insert-after 12 '{"type": "order/cancelled", "order": "o1"}'
    """
    after, action_text = insert_after if insert_after else (None, None)
    inserting = after is not None
    if inserting == (skip is not None):
        raise BadInput("what-if needs one of --skip V[,V…] or --insert-after V ACTION_JSON")
    try:
        skipped = parse_skip(skip) if skip is not None else []
        action = parse_action(action_text) if inserting else None
    except ValueError as error:
        raise BadInput(str(error)) from None
    with _open(log, reducer, recording, source, every, allow_empty, order) as replay:
        result = replay.what_if_insert(after, action) if inserting else replay.what_if(skipped)
        final = replay.state_at()
        doc = _with_order(replay, result.to_json())
    if as_json:
        print_json(doc)
        return
    console = out_console()
    where = (
        "the states never diverge"
        if result.first_divergent_v is None
        else f"the timelines diverge at v={result.first_divergent_v}"
    )
    if inserting:
        what = f"inserting {visible(str(action.get('type')))} after v={after}"
    else:
        what = f"skipping {', '.join(map(str, result.skipped))}"
    console.print(Text(f"{what}: {where}", style="bold"))
    patch = result.diff
    if patch and result.state is not None:
        patch = diff_states(final, result.state, with_old=True)
    console.print(patch_tree(patch, final, title="final state: recorded → what-if"))


def search(
    log: str = LOG,
    reducer: str = REDUCER,
    path: str | None = typer.Option(
        None, "--path", help="A JSON Pointer (/orders/o1/total): where its value changes."
    ),
    grep: str | None = typer.Option(
        None,
        "--grep",
        help=(
            "A regex matched against each line of the state as indented JSON, one line at a "
            "time ('\"total\": 12', '\"orders\": {'; no indentation, no trailing comma; never "
            "across lines): where it starts or stops matching."
        ),
    ),
    where: str | None = typer.Option(
        None, "--where", help="A Python expression over state and event: where it flips."
    ),
    from_v: int | None = typer.Option(None, "--from", help="The first event searched."),
    to_v: int | None = typer.Option(None, "--to", help="The last event searched."),
    recording: str | None = RECORDING,
    source: str = SOURCE,
    as_json: bool = typer.Option(
        False, "--json", help='JSON Lines: one {"v", "old", "new"} per change.'
    ),
    every: int = EVERY,
    order: str = ORDER,
) -> None:
    """The events at which a value, a match or a predicate changes; exit 1 when none does.

    One pass over the log. With --path, a side where the pointer leads nowhere is left out of
    the JSON line (the value appears or disappears). With --grep, the state matches when one of
    its lines does: the state is written as indented JSON, one line per key or list item, and
    the regex is searched in each line without its indentation and trailing comma (so a match
    never spans lines; ^ and $ are the line's ends).

    Example: rdt search orders.rdtlog --reducer samples.sales_order:reducer --path /orders/o1/total
    """
    from replayer import search as finder

    watch = finder.probe(path=path, grep=grep, where=where)
    found = 0
    console = out_console()
    with _open(log, reducer, recording, source, every, order=order) as replay:
        where_ = finder.span(replay, from_v, to_v)
        order_note = _in_order(replay)
        bar = _SearchBar(where_) if sys.stderr.isatty() and not as_json else None
        try:
            start = replay.state_at(where_.start_v)
            first = watch(start, None, where_.start_v)
            if not as_json:
                console.print(
                    Text(
                        f"{watch.kind} {watch.text!r}, v {where_.first_v}..{where_.to_v}"
                        f"{order_note}; at v {where_.start_v}: {_observed(first)}",
                        style="bold",
                    )
                )
            for change in finder.search(
                replay, watch, from_v=from_v, to_v=to_v, progress=bar.advance if bar else None
            ):
                found += 1
                if as_json:
                    print_json(change.to_json())
                else:
                    console.print(_change_text(change))
        finally:
            if bar is not None:
                bar.close()
    if not as_json:
        console.print(Text(f"{found} change{'s' if found != 1 else ''}", style="dim"))
    if not found:
        raise typer.Exit(1)


def _observed(value: Any) -> str:
    from replayer.search import ABSENT

    return "absent" if value is ABSENT else value_text(value, limit=200)


def _change_text(change: Any) -> Text:
    text = Text(f"v {change.v:<8} ", style="bold")
    text.append(f"{visible(change.type or '-'):<24} ", style="cyan")
    text.append(f"{change.what:<11}")
    from replayer.search import ABSENT

    if change.old is not ABSENT and change.what not in ("starts", "stops"):
        text.append(value_text(change.old, limit=200), style="red")
        if change.new is not ABSENT:
            text.append(" → ")
    if change.new is not ABSENT and change.what not in ("starts", "stops"):
        text.append(value_text(change.new, limit=200), style="green")
    return text


class _SearchBar:
    """A transient Rich progress bar on stderr."""

    def __init__(self, where: Any) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self.start_v = where.start_step
        self.progress = Progress(
            "searching",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
            redirect_stdout=False,
        )
        self.task = self.progress.add_task("search", total=where.to_step - where.start_step)
        self.progress.start()

    def advance(self, v: int) -> None:
        self.progress.update(self.task, completed=v - self.start_v)

    def close(self) -> None:
        self.progress.stop()


def register(app: typer.Typer) -> None:
    """Add this package's commands to the `rdt` app."""
    app.command("search")(reports_replay_errors(search))
    app.command("state")(reports_replay_errors(state))
    app.command("diff")(reports_replay_errors(diff))
    app.command("bisect")(reports_replay_errors(bisect))
    app.command("what-if")(reports_replay_errors(what_if))
