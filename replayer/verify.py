"""`rdt verify`: is the reducer deterministic on this log, and does it match production?

For one log, :func:`verify_log` runs the replay in N worker processes at once
(:mod:`replayer.verify_runner`, forked from one server per ``PYTHONHASHSEED`` 1, 2, … that
:mod:`replayer.verify_pool` keeps; runs after the first also warm the reducer up on the first
events, so state a module carries across calls shows). Each run
reports the state hash at ``v = 0``, every K events and at the end, plus what its guards saw.
Then, in at most two more rounds of fresh workers:

- the first checkpoint where two runs disagree gives a window; per-event hashes in that window
  name the first divergent ``v``, and the two runs' states there give the diff;
- the first recorded hash that the replay does not match gives a window after the last one it
  does; per-event hashes there are compared with every hash the log recorded in it, which pins
  the ``v`` when the server hashed every event, and a window otherwise (said so in the detail);
- a mutation seen at a checkpoint is pinned by a per-event deep check from the start, which
  gives the first event whose reduction changed its input and the JSON path;
- a state JSON cannot carry at a checkpoint is pinned by per-event checks in its window.

The pure comparisons (:func:`first_mismatch`, :func:`recorded_window`) are tested directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from devtools.errors import LogError, ReducerLoadError
from replayer.diff import diff
from replayer.findings import Finding, LogResult, sort_findings
from replayer.verify_pool import run_workers

__all__ = [
    "VerifyOptions",
    "first_mismatch",
    "recorded_window",
    "run_workers",
    "verify_log",
    "verify_logs",
]

INIT_EVENT = {"type": "@@INIT"}


@dataclass(frozen=True, slots=True)
class VerifyOptions:
    """How to verify."""

    runs: int = 2
    """How many worker processes replay each log (at least 2 for the cross-run check)."""
    checkpoint_every: int = 1000
    """K: hashes are compared at every K-th event (and the last)."""
    recording: int | str | None = None
    """The recording (id or name); ``None`` takes the latest."""
    seeds: tuple[int, ...] | None = None
    """``PYTHONHASHSEED`` per run; default ``1, 2, … runs``."""

    def seed_list(self) -> list[int]:
        if self.seeds:
            return list(self.seeds)
        return list(range(1, max(self.runs, 1) + 1))


# --------------------------------------------------------------------------- pure comparisons


def first_mismatch(
    a: Sequence[Sequence[Any]], b: Sequence[Sequence[Any]]
) -> tuple[int | None, int] | None:
    """The first ``v`` both lists of ``[v, hash, …]`` have where the hashes differ.

    Only points where both hashes are known count. Returns ``(the last v where they agreed or
    None, the first v where they differ)``, or ``None`` when they never differ.
    """
    other = {row[0]: row[1] for row in b}
    last_equal: int | None = None
    for row in a:
        v, h = row[0], row[1]
        if v not in other or h is None or other[v] is None:
            continue
        if h != other[v]:
            return last_equal, v
        last_equal = v
    return None


def recorded_window(
    replayed: dict[int, str | None], recorded: Iterable[tuple[int, str]], after: int | None
) -> tuple[int | None, int] | None:
    """Where replayed hashes first disagree with recorded ones.

    Args:
        replayed: ``v`` → the replay's hash after it.
        recorded: ``(v, hash)`` the server recorded, in ``v`` order.
        after: the last ``v`` known to match before these (``None``: none known).

    Returns:
        ``(the last recorded v that matched, the first that did not)`` or ``None``.
    """
    last = after
    for v, h in recorded:
        mine = replayed.get(v)
        if mine is None:
            continue
        if mine != h:
            return last, v
        last = v
    return None


# --------------------------------------------------------------------------- workers


# --------------------------------------------------------------------------- verify


class _Plan:
    """Extra work for one run configuration in a localising round."""

    def __init__(self) -> None:
        self.ranges: list[list[int]] = []
        self.keep: set[int] = set()
        self.scan_to: int | None = None
        self.stop_at: int | None = None

    def need(self, v: int) -> None:
        self.stop_at = v if self.stop_at is None else max(self.stop_at, v)

    def request(self, base: dict[str, Any]) -> dict[str, Any]:
        return {
            **base,
            "compare_recorded": False,
            "hash_ranges": self.ranges,
            "keep_states": sorted(self.keep),
            "mutation_scan_to": self.scan_to,
            "stop_at": self.stop_at,
            "window_states": True,
        }


def _raise_worker_error(results: Sequence[dict[str, Any]]) -> None:
    for result in results:
        error = result.get("error")
        if error is None:
            continue
        if error.get("kind") == "reducer":
            raise ReducerLoadError(error["message"])
        raise LogError(error["message"])


def verify_log(log: str, reducer: str, options: VerifyOptions | None = None) -> LogResult:
    """Verify one log; bad input raises, problems found are findings.

    Raises:
        LogError: the log cannot be opened or read, or has no such recording.
        ReducerLoadError: the reducer cannot be imported.
    """
    from devtools.store import Log
    from replayer.source import open_source

    options = options or VerifyOptions()
    with Log.open(log) as opened:
        reader = opened.reader(options.recording)
        recording_id = reader.recording.id
        source = open_source(reader, "auto")

        def event_at(v: int | None, start_v: int) -> Any:
            if v is None:
                return None
            if v <= start_v:
                return dict(INIT_EVENT) if v == 0 else None
            return source.event(v)

        seeds = options.seed_list()
        K = max(options.checkpoint_every, 1)
        base = {
            "log": log,
            "recording": recording_id,
            "reducer": reducer,
            "checkpoint_every": K,
        }

        def config(i: int) -> dict[str, Any]:
            return {**base, "warmup": 0 if i == 0 else K}

        first = run_workers(
            [(seed, {**config(i), "compare_recorded": i == 0}) for i, seed in enumerate(seeds)]
        )
        _raise_worker_error(first)
        return _conclude(log, reader, seeds, config, first, event_at, K)


def _conclude(
    log: str,
    reader: Any,
    seeds: list[int],
    config: Any,
    first: list[dict[str, Any]],
    event_at: Any,
    K: int,
) -> LogResult:
    findings: list[Finding] = []
    plans: dict[int, _Plan] = {}
    ok_runs = [i for i, r in enumerate(first) if "crash" not in r]
    start_v = next((first[i].get("start_v", 0) for i in ok_runs), 0)
    last_v = next((first[i].get("last_v", 0) for i in ok_runs), 0)

    def plan(i: int) -> _Plan:
        return plans.setdefault(i, _Plan())

    # ---- crashes and exceptions
    for i, result in enumerate(first):
        if "crash" in result:
            crash = result["crash"]
            findings.append(
                Finding(
                    kind="exception",
                    v=None,
                    detail=f"the worker with PYTHONHASHSEED={seeds[i]} died "
                    f"(exit {crash['returncode']}) without a result:\n{crash['stderr']}",
                )
            )
    exc = next((first[i]["exception"] for i in ok_runs if "exception" in first[i]), None)
    if exc is not None:
        findings.append(
            Finding(
                kind="exception",
                v=exc["v"],
                event=event_at(exc["v"], start_v),
                detail=exc["traceback"].rstrip(),
                help="a reducer must handle every event the log holds; fix it or skip "
                "the event with `rdt what-if`",
            )
        )

    # ---- clock and randomness calls (all runs, first v per call site)
    sites: dict[tuple[str, str, int], dict[str, Any]] = {}
    for i in ok_runs:
        for call in first[i].get("calls", ()):
            key = (call["name"], call["file"], call["line"])
            if key not in sites or call["v"] < sites[key]["v"]:
                sites[key] = call
    for call in sorted(sites.values(), key=lambda c: c["v"]):
        findings.append(
            Finding(
                kind="nondeterministic-call",
                v=call["v"],
                event=event_at(call["v"], start_v),
                detail=f"{call['name']}() called at {call['file']}:{call['line']} "
                f"in {call['function']}() ({call['count']} time"
                f"{'s' if call['count'] != 1 else ''} in this run, first at v={call['v']})",
                note="a replay reads a different clock or random value than production did, "
                "so its state can differ",
                help='read the time from event["ts"] and derive ids and randomness from the '
                "event (or do it in middleware, which puts the result in the event)",
                extra={"call": call},
            )
        )

    # ---- hash divergence between runs: the earliest window
    divergence: tuple[int, int | None, int] | None = None
    for i in ok_runs[1:]:
        if 0 not in ok_runs:
            break
        found = first_mismatch(first[0]["checkpoints"], first[i]["checkpoints"])
        if found is not None and (divergence is None or found[1] < divergence[2]):
            divergence = (i, found[0], found[1])
    if divergence is not None and divergence[2] > start_v:
        i, lo, hi = divergence
        lo = start_v if lo is None else lo
        for run in (0, i):
            plan(run).ranges.append([lo, hi])
            plan(run).need(hi)

    # ---- recorded hashes
    rec = first[0].get("recorded_hash") if 0 in ok_runs else None
    recorded_in_window: list[tuple[int, str]] = []
    if rec is not None:
        lo = rec["match_v"] if rec["match_v"] is not None else start_v
        hi = rec["mismatch_v"]
        recorded_in_window = [(e.v, e.hash) for e in reader.events(lo + 1, hi) if e.hash]
        plan(0).ranges.append([lo, hi])
        plan(0).need(hi)

    # ---- unserializable: the run that saw it first
    unser = [(first[i]["unserializable"], i) for i in ok_runs if "unserializable" in first[i]]
    unser_run: int | None = None
    if unser:
        unser_bad, unser_run = min(unser, key=lambda pair: pair[0]["v"])
        lo, hi = unser_bad["window"]
        if hi > lo:
            plan(unser_run).ranges.append([lo, hi])
            plan(unser_run).need(hi)

    # ---- mutation: pinned by a per-event deep check from the start
    muts = [(first[i]["mutation"], i) for i in ok_runs if "mutation" in first[i]]
    mut_run: int | None = None
    if muts:
        detected, mut_run = min(muts, key=lambda pair: pair[0]["v"])
        end = detected["window"][1]
        plan(mut_run).scan_to = end
        plan(mut_run).need(end)

    second = _round(seeds, config, plans)

    # ---- second-round conclusions, and the states the third round must fetch
    states_plans: dict[int, _Plan] = {}

    def splan(i: int) -> _Plan:
        return states_plans.setdefault(i, _Plan())

    exact_divergence: int | None = None
    if divergence is not None:
        i = divergence[0]
        a, b = second.get(0, {}), second.get(i, {})
        found = first_mismatch(a.get("event_hashes", ()), b.get("event_hashes", ()))
        if divergence[2] == start_v:
            found = (None, start_v)  # the initial states differ already
        if found is not None:
            exact_divergence = found[1]
            for run in (0, i):
                if str(exact_divergence) not in second.get(run, {}).get("states", {}):
                    splan(run).keep.add(exact_divergence)
                    splan(run).need(exact_divergence)

    rec_exact: tuple[int | None, int] | None = None
    if rec is not None:
        replayed = {row[0]: row[1] for row in second.get(0, {}).get("event_hashes", ())}
        rec_exact = recorded_window(replayed, recorded_in_window, rec["match_v"])
        if rec_exact is not None:
            v = rec_exact[1]
            wanted = {v - 1, v} if v - 1 >= start_v else {v}
            have = second.get(0, {}).get("states", {})
            if any(str(w) not in have for w in wanted):
                splan(0).keep.update(wanted)
                splan(0).need(v)

    third = _round(seeds, config, states_plans)
    for run, result in second.items():
        # states the second round already sent
        merged = third.setdefault(run, {"states": {}})
        merged.setdefault("states", {})
        for key, value in result.get("states", {}).items():
            merged["states"].setdefault(key, value)

    # ---- findings from the localised facts
    if divergence is not None:
        i, lo, hi = divergence
        findings.append(
            _divergence_finding(
                i, lo, hi, exact_divergence, seeds, third, event_at, start_v, second
            )
        )
    if rec is not None:
        findings.append(_recorded_finding(rec, rec_exact, third.get(0, {}), event_at, start_v))
    if 0 in ok_runs and "recorded_snapshot" in first[0]:
        snap = first[0]["recorded_snapshot"]
        since = snap.get("last_match")
        window = f"v={since + 1}..{snap['v']}" if since is not None else f"v≤{snap['v']}"
        findings.append(
            Finding(
                kind="recorded-snapshot",
                v=snap["v"],
                event=event_at(snap["v"], start_v),
                diff=snap["diff"],
                detail=f"the server's snapshot after v={snap['v']} differs from the replayed "
                f"state; the divergence began in {window} (compare any recorded hashes there)",
                note="the code replayed now behaves differently from the code that produced "
                "the log",
                help="if the change is intended, record a fresh log; otherwise find the change "
                "with `git bisect run rdt verify … --git-bisect`",
                extra={"diff_label": "diff (recorded → replayed)"},
            )
        )
    if unser:
        findings.append(_unserializable_finding(unser_bad, unser_run, second, event_at, start_v))
    if muts:
        findings.append(_mutation_finding(detected, second.get(mut_run, {}), event_at, start_v))
    return LogResult(
        log=log,
        findings=sort_findings(findings),
        info={
            "events": max(last_v - start_v, 0),
            "runs": len(seeds),
            "seeds": [str(s) for s in seeds],
            "checkpoint_every": K,
        },
    )


def _round(seeds: list[int], config: Any, plans: dict[int, _Plan]) -> dict[int, dict[str, Any]]:
    if not plans:
        return {}
    order = sorted(plans)
    results = run_workers([(seeds[i], plans[i].request(config(i))) for i in order])
    return dict(zip(order, results, strict=True))


def _divergence_finding(
    i: int,
    lo: int | None,
    hi: int,
    exact: int | None,
    seeds: list[int],
    third: dict[int, dict[str, Any]],
    event_at: Any,
    start_v: int,
    second: dict[int, dict[str, Any]],
) -> Finding:
    note = (
        f"runs with PYTHONHASHSEED={seeds[0]} and {seeds[i]} gave different states from the "
        "same events"
    )
    extra: dict[str, Any] = {"seeds": [seeds[0], seeds[i]], "window": [lo, hi]}
    if exact is None:
        return Finding(
            kind="hash-divergence",
            v=hi,
            event=event_at(hi, start_v),
            detail=f"the runs' checkpoint hashes differ at v={hi} (they agreed at v={lo}); a "
            "per-event rerun of the window did not reproduce it, so the state went wrong "
            f"somewhere in v={(lo or 0) + 1}..{hi} — a random or clock value is the usual cause",
            note=note,
            extra=extra,
        )
    a = third.get(0, {}).get("states", {}).get(str(exact))
    b = third.get(i, {}).get("states", {}).get(str(exact))
    patch = diff(a, b) if a is not None and b is not None else None
    extra["diff_label"] = f"diff (PYTHONHASHSEED={seeds[0]} → {seeds[i]})"
    warmed = " (after warming the reducer up)" if i else ""
    return Finding(
        kind="hash-divergence",
        v=exact,
        event=event_at(exact, start_v),
        diff=patch,
        detail=f"state differs between runs after v={exact}; run {i + 1}{warmed} gave another "
        "state than run 1 from the same events",
        note=note + "; the reducer depends on hash order (iterating a set or a dict built "
        "from one), on module-level state kept across calls, or on a random source",
        help="iterate over sorted(...) instead of a set, and keep everything the reducer "
        "remembers in the state it returns",
        extra=extra,
    )


def _recorded_finding(
    rec: dict[str, Any],
    exact: tuple[int | None, int] | None,
    third: dict[str, Any],
    event_at: Any,
    start_v: int,
) -> Finding:
    good, bad = exact if exact is not None else (rec["match_v"], rec["mismatch_v"])
    states = third.get("states", {})
    after, before = states.get(str(bad)), states.get(str(bad - 1))
    patch = diff(before, after) if after is not None and before is not None else None
    since = "the start" if good is None else f"v={good}"
    if good is not None and bad - good == 1:
        detail = (
            f"the replayed state after v={bad} does not match the hash the server recorded "
            f"there (the recorded hash at v={good} matches)"
        )
    else:
        first_bad = (good if good is not None else start_v) + 1
        detail = (
            f"the log has recorded hashes only every few events: the last one that matches is "
            f"at {since} and the first that does not at v={bad}, so the state went wrong "
            f"somewhere in the window v={first_bad}..{bad}"
        )
    return Finding(
        kind="recorded-hash",
        v=bad,
        event=event_at(bad, start_v),
        diff=patch,
        detail=detail,
        note="the code replayed now behaves differently from the code that produced the log; "
        "the diff shows what this event did in the replay (the log holds only a hash of the "
        "server's state)",
        help="if the change is intended, record a fresh log; otherwise find the commit with "
        "`git bisect run rdt verify … --git-bisect`",
        extra={
            "window": [good, bad],
            "exact": good is not None and bad - good == 1,
            "diff_label": f"what v={bad} did in the replay",
        },
    )


def _unserializable_finding(
    bad: dict[str, Any],
    run: int | None,
    second: dict[int, dict[str, Any]],
    event_at: Any,
    start_v: int,
) -> Finding:
    v, pointer, problem = bad["v"], bad["pointer"], bad["problem"]
    for row in (second.get(run, {}) if run is not None else {}).get("event_hashes", ()):
        if row[1] is None and len(row) > 2 and row[2]:
            v, pointer, problem = row[0], row[2]["pointer"], row[2]["problem"]
            break
    where = pointer or "the root"
    return Finding(
        kind="unserializable",
        v=v,
        event=event_at(v, start_v),
        detail=f"the state after v={v} is not JSON at {where}: {problem}",
        help="keep states to dicts, lists, strings, finite numbers, booleans and null "
        "(a sorted list for a set, an integer of ns or an ISO string for a time)",
        extra={"path": pointer},
    )


def _mutation_finding(
    detected: dict[str, Any], scan: dict[str, Any], event_at: Any, start_v: int
) -> Finding:
    exact = scan.get("mutation_exact")
    if exact is not None:
        v, path, patch = exact["v"], exact["path"], exact["diff"]
        detail = f"reducing v={v} changed its input state at {path or 'the root'}"
    else:
        lo, hi = detected["window"]
        v, path, patch = hi, None, None
        detail = (
            f"a state kept from v={lo} had changed by v={hi}: a reduction in v={lo + 1}..{hi} "
            "changed its input (a per-event rerun did not reproduce it)"
        )
    return Finding(
        kind="mutation",
        v=v,
        event=event_at(v, start_v),
        diff=patch,
        detail=detail,
        note="a reducer must return a new state and leave its input alone: checkpoints, "
        "snapshots and the devtools' time travel all keep earlier states",
        help="copy what you change ({**state, key: new}, [*items, new]) instead of assigning "
        "into the state you were given",
        extra={"path": path, "diff_label": "diff (input before → after the call)"},
    )


def verify_logs(
    logs: Sequence[str], reducer: str, options: VerifyOptions | None = None
) -> list[LogResult]:
    """:func:`verify_log` for each log in turn.

    Raises:
        RdtError: the first log or reducer that cannot be replayed.
    """
    return [verify_log(log, reducer, options) for log in logs]
