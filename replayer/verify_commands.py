"""The `rdt` commands for determinism and regression checks: ``verify``, ``compare``, ``gen-test``.

Thin: parse options, call :mod:`replayer.verify`, :mod:`replayer.compare`,
:mod:`replayer.gentest`, print (a compiler-style report, or JSON with ``--json``) and map the
verdict to the exit code: 0 clean, 1 a finding, 3 bad input (one stderr line). With
``--git-bisect``, input that cannot be replayed (an unreadable log, a reducer that cannot be
imported) exits 125 instead, so ``git bisect run`` skips that commit.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.text import Text

from devtools.clikit import (
    JSON,
    LOG,
    RECORDING,
    REDUCER,
    err_console,
    fail,
    log_argument,
    out_console,
    print_json,
    reports_errors,
)
from devtools.errors import RdtError
from devtools.sanitize import visible

GIT_BISECT_SKIP = 125


def verify(
    logs: list[str] = log_argument(many=True, help="One or more logs (SQLite files or URLs)."),
    reducer: str = REDUCER,
    runs: int = typer.Option(2, "--runs", min=1, help="Worker processes per log (hash seeds)."),
    junit: Path | None = typer.Option(None, "--junit", help="Write a JUnit XML report here."),
    as_json: bool = JSON,
    git_bisect: bool = typer.Option(
        False, "--git-bisect", help="Exit 125 (skip) when the log or reducer cannot be replayed."
    ),
    recording: str | None = RECORDING,
    every: int = typer.Option(
        1000, "--checkpoint-every", min=1, help="Compare hashes every K events (K)."
    ),
    allow_empty: bool = typer.Option(
        False,
        "--allow-empty",
        help="A recording without events is ok, with a note (default: exit 3, never ok).",
    ),
) -> None:
    """Check that the reducer replays each log deterministically and as production did.

    Replays every log in separate processes with different PYTHONHASHSEEDs, compares the state
    hashes between runs and with the hashes and snapshots recorded in the log, and guards
    against mutation of the input state, clock and random calls, and states JSON cannot carry.
    Exit 0 clean, 1 a finding, 3 bad input (125 with --git-bisect). A recording with no events
    is never ok: exit 3, unless --allow-empty.

    The headline (first_divergent_v): where the log recorded hashes or snapshots, the first
    event at which a fresh replay disagrees with them; otherwise the earliest finding. A
    divergence seen only between runs is its own hash-divergence finding with its v and a
    cause: hidden-state (a run warmed up first differs from a fresh one: module-level state
    kept across calls) or hash-seed (fresh runs with different seeds differ). The summary line
    names the kind that decided the headline.

    Example: rdt verify orders.rdtlog --reducer samples.sales_order:reducer --junit verify.xml
    """
    from replayer.junit import junit_xml
    from replayer.verify import VerifyOptions, verify_log

    options = VerifyOptions(
        runs=runs, checkpoint_every=every, recording=recording, allow_empty=allow_empty
    )
    results = []
    durations = []
    try:
        for log in logs:
            started = time.perf_counter()
            results.append(verify_log(log, reducer, options))
            durations.append(time.perf_counter() - started)
    except RdtError as error:
        if git_bisect and error.exit_code == 3:
            message = " ".join(str(error).split())
            err_console.print(Text(f"rdt: {visible(message)} (cannot replay: git bisect skip)"))
            raise typer.Exit(GIT_BISECT_SKIP) from None
        raise fail(error) from None
    if junit is not None:
        try:
            junit.write_bytes(junit_xml(results, durations=durations))
        except OSError as error:
            from devtools.errors import BadInput

            raise fail(BadInput(f"cannot write {junit}: {error.strerror or error}")) from None
    if as_json:
        if len(results) == 1:
            print_json(results[0].to_json())
        else:
            print_json([r.to_json(with_log=True) for r in results])
    else:
        console = out_console()
        for result in results:
            console.print(result)
    if not all(r.ok for r in results):
        raise typer.Exit(1)


def compare(
    log: str = LOG,
    reducer: str = REDUCER,
    against: str = typer.Option(
        ..., "--against", help="The other reducer version (REF; Python or JavaScript)."
    ),
    as_json: bool = JSON,
    recording: str | None = RECORDING,
) -> None:
    """The first event at which two reducer versions disagree, with the diff.

    Exit 0 when they agree on every event, 1 when they differ.

    Example: rdt compare orders.rdtlog --reducer samples.sales_order:reducer
    --against new/sales_order.py:reducer
    """
    from replayer.compare import compare_reducers

    result = compare_reducers(log, reducer, against, recording=recording)
    if as_json:
        print_json(result.to_json())
    else:
        out_console().print(result)
    if not result.ok:
        raise typer.Exit(1)


def gen_test(
    log: str = LOG,
    reducer: str = REDUCER,
    from_v: int = typer.Option(..., "--from", help="The first event of the slice."),
    to_v: int = typer.Option(..., "--to", help="The last event of the slice."),
    out: Path | None = typer.Option(
        None, "-o", "--output", help="The test file (default: stdout)."
    ),
    recording: str | None = RECORDING,
) -> None:
    """Write a regression test that replays events FROM..TO and asserts their states.

    The slice (its starting state and events) is embedded as data; the test passes now and
    fails when the reducer's behaviour on that slice changes. A Python reducer gets a pytest
    file; a JavaScript reducer a `node --test` file (name it FILE.test.mjs) that shows what
    changed when it fails.

    Example: rdt gen-test orders.rdtlog --reducer samples.sales_order:reducer --from 100
    --to 120 -o tests/test_orders_slice.py
    """
    from replayer.gentest import generate_test

    source = generate_test(log, reducer, from_v, to_v, recording=recording, out=out)
    if out is None:
        typer.echo(source, nl=False)
        return
    try:
        out.write_text(source, encoding="utf-8")
    except OSError as error:
        from devtools.errors import BadInput

        raise BadInput(f"cannot write {out}: {error.strerror or error}") from None
    err_console.print(Text(f"wrote {visible(str(out))} (events v={from_v}..{to_v})"))


def register(app: typer.Typer) -> None:
    """Add these commands to the `rdt` app."""
    app.command("verify")(verify)
    app.command("compare")(reports_errors(compare))
    app.command("gen-test")(reports_errors(gen_test))
