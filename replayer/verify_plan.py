"""`rdt verify`'s decisions, without I/O: worker results in, the next requests and findings out.

:class:`VerifyPlanner` is fed :class:`~replayer.verify_messages.RunResult` values by an executor
(:mod:`replayer.verify_pool` runs Python workers; one for another language answers the same
requests) and never reads the log, starts a process or looks at a clock::

    planner = VerifyPlanner(runs, checkpoint_every=K, log=path, event_at=lookup)
    requests = planner.start()
    while requests:
        requests = planner.feed(executor.run(requests))
    return planner.result()

What it needs from the log comes as data: the recorded hashes of a window arrive in a worker's
result (``RunRequest.recorded_between``). The one look-up it is handed, ``event_at(v)``, only
decorates findings with the event at their ``v`` in :meth:`VerifyPlanner.result`; no decision
depends on it.

Rounds (at most three):

1. every run configuration replays the whole log: checkpoint hashes every K events; the first
   run (the reference: fresh, ``runs[0]``) also compares the recorded hashes and snapshots;
2. localising, only where something was found: per-event hashes in the first window where two
   runs disagree — for the reference, the disagreeing run and a *fresh* run with the
   disagreeing run's seed, which tells the two causes apart — and in the window after the last
   recorded hash that matched (with the log's recorded hashes in it); a per-event mutation check
   up to the window that saw one;
3. the states at the pinned ``v`` that round 2 did not send yet, for the diffs.

Causes of a divergence between runs (kind ``hash-divergence``, ``extra["cause"]``):

- ``hash-seed``: two fresh runs with different seeds disagree (hash order, or a per-process
  random source), at the first ``v`` where they do;
- ``hidden-state``: a warmed-up run disagrees with a fresh run of the *same* seed, earlier than
  any seed difference shows: the reducer keeps module-level state across calls.

Several workers (a log recorded with ``rdt record --devtools URL …``): the log's own disagreements
between workers come in as :class:`WorkerEvidence` (the rule of :mod:`devtools.workers`, read by
the caller); round 1 asks the reference run for its hash at each such ``v`` and its states at the
``v`` of the workers' snapshots, and each becomes a ``worker-divergence`` finding: which workers,
from which ``v``, which of them the replay agrees with, and the state diff between the replay
and the worker it does not agree with, at the ``v`` of that worker's snapshot.

The headline (:attr:`LogResult.first_divergent_v`): where the workers disagree, or the log's
recorded hashes or snapshots disagree with the fresh replay, the first such ``v`` (the workers'
disagreement first on a tie); otherwise the earliest finding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from devtools.errors import LogError, ReducerLoadError
from devtools.model import Worker, WorkerSnapshot
from devtools.workers import Disagreement
from replayer import fold
from replayer.diff import diff
from replayer.findings import Finding, LogResult, sort_findings
from replayer.verify_messages import RunConfig, RunRequest, RunResult

__all__ = [
    "TRUTH_KINDS",
    "WORKER_KIND",
    "VerifyPlanner",
    "WorkerEvidence",
    "first_mismatch",
    "recorded_window",
]

WORKER_KIND = "worker-divergence"
"""Workers that folded the same events into different states."""
TRUTH_KINDS = ("recorded-hash", "recorded-snapshot", WORKER_KIND)
"""Findings where production disagreed with itself or a fresh replay disagrees with what the log
recorded: they decide the headline (the workers' disagreement first at one ``v``)."""


@dataclass(frozen=True, slots=True)
class WorkerEvidence:
    """What a log of several workers holds about one worker's disagreement (the planner's
    input, read from the log by the caller)."""

    disagreement: Disagreement
    workers: tuple[Worker, ...]
    """Every worker of the recording, by index."""
    snapshot: WorkerSnapshot | None = None
    """The disagreeing worker's first snapshot at or after ``v`` (asked for when it was seen)."""
    reference_snapshot: WorkerSnapshot | None = None
    """The reference worker's, likewise."""
    event: dict[str, Any] | None = None
    """The stored event at ``v`` (for an event-object disagreement's diff)."""

    @property
    def v(self) -> int:
        return self.disagreement.v

    def worker(self, index: int | None) -> Worker | None:
        return next((w for w in self.workers if w.index == index), None)

    def snapshot_vs(self) -> list[int]:
        """The ``v`` whose replayed states the finding's diff needs."""
        return sorted({s.v for s in (self.snapshot, self.reference_snapshot) if s is not None})


# --------------------------------------------------------------------------- pure comparisons


def first_mismatch(
    a: Sequence[Sequence[Any]], b: Sequence[Sequence[Any]]
) -> tuple[int | None, int] | None:
    """The first ``v`` both lists of ``[v, hash, …]`` have where the hashes differ.

    Only points where both hashes are known count. Returns ``(the last v where they agreed or
    None, the first v where they differ)``, or ``None`` when they never differ.
    """
    return _first_diff({row[0]: row[1] for row in a}, {row[0]: row[1] for row in b})


def _first_diff(
    a: Mapping[int, str | None], b: Mapping[int, str | None]
) -> tuple[int | None, int] | None:
    last_equal: int | None = None
    for v in sorted(a):
        h, other = a[v], b.get(v)
        if h is None or other is None:
            continue
        if h != other:
            return last_equal, v
        last_equal = v
    return None


def recorded_window(
    replayed: Mapping[int, str | None], recorded: Iterable[tuple[int, str]], after: int | None
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


# --------------------------------------------------------------------------- planning


@dataclass(slots=True)
class _Plan:
    """Extra work for one run configuration in a localising round (a request being built)."""

    ranges: list[tuple[int, int]] = field(default_factory=list)
    keep: set[int] = field(default_factory=set)
    scan_to: int | None = None
    stop_at: int | None = None
    recorded_between: tuple[int, int] | None = None

    def need(self, v: int) -> None:
        self.stop_at = v if self.stop_at is None else max(self.stop_at, v)

    def request(self, run: RunConfig, K: int) -> RunRequest:
        return RunRequest(
            run=run,
            checkpoint_every=K,
            hash_ranges=tuple(self.ranges),
            keep_states=tuple(sorted(self.keep)),
            mutation_scan_to=self.scan_to,
            stop_at=self.stop_at,
            window_states=True,
            recorded_between=self.recorded_between,
        )


@dataclass(frozen=True, slots=True)
class _Divergence:
    """Round 1: run ``i`` first disagrees with the reference at ``hi`` (they agreed at ``lo``)."""

    i: int
    lo: int | None
    hi: int


@dataclass(frozen=True, slots=True)
class _Cause:
    """Round 2: the pinned ``v`` where ``a`` and ``b`` first disagree, and why."""

    cause: str
    v: int
    a: RunConfig
    b: RunConfig


class VerifyPlanner:
    """Decides what verify's workers run and concludes the findings (see the module doc).

    Args:
        runs: the run configurations; ``runs[0]`` is the reference (a fresh run), the others
            are compared with it (usually warmed up, with other seeds).
        checkpoint_every: K.
        log: the log's name for the result.
        event_at: the recorded event at ``v`` (for a finding's ``event``), or ``None``.
    """

    def __init__(
        self,
        runs: Sequence[RunConfig],
        *,
        checkpoint_every: int = 1000,
        log: str = "",
        event_at: Callable[[int], Any] | None = None,
        workers: Sequence[WorkerEvidence] = (),
    ) -> None:
        if not runs:
            raise ValueError("verify needs at least one run configuration")
        self.runs = tuple(runs)
        self.K = max(checkpoint_every, 1)
        self.log = log
        self._event_at = event_at
        self._workers = tuple(workers)
        self._pending: list[RunRequest] = []
        self._round = 0
        self._first: list[RunResult] = []
        self._second: dict[RunConfig, RunResult] = {}
        self._states: dict[RunConfig, dict[int, Any]] = {}
        self._findings: list[Finding] = []
        self.start_v = 0
        self.last_v = 0
        self._divergence: _Divergence | None = None
        self._causes: list[_Cause] = []
        self._rec_exact: tuple[int | None, int] | None = None
        self._unser: tuple[Any, int] | None = None
        self._mut: tuple[Any, int] | None = None

    @property
    def ref(self) -> RunConfig:
        return self.runs[0]

    # ---- the protocol

    def start(self) -> list[RunRequest]:
        """The first round: every configuration replays the whole log."""
        self._round = 1
        self._pending = [
            RunRequest(run=run, checkpoint_every=self.K, compare_recorded=i == 0)
            for i, run in enumerate(self.runs)
        ]
        if self._workers:  # the reference's hash at each disagreement, its states at snapshots
            ranges = sorted({(max(e.v - 1, 0), e.v) for e in self._workers if e.v > 0})
            keep = sorted({v for e in self._workers for v in e.snapshot_vs()})
            self._pending[0] = replace(
                self._pending[0], hash_ranges=tuple(ranges), keep_states=tuple(keep)
            )
        return list(self._pending)

    def feed(self, results: Sequence[RunResult]) -> list[RunRequest]:
        """The results of the last requests, in their order; returns the next (``[]``: done).

        Raises:
            LogError: a worker could not open the log.
            ReducerLoadError: a worker could not import the reducer.
        """
        if len(results) != len(self._pending):
            raise ValueError(f"expected {len(self._pending)} results, got {len(results)}")
        _raise_worker_error(results)
        answered = dict(zip((r.run for r in self._pending), results, strict=True))
        if self._round == 1:
            plans = self._after_first(list(results))
        elif self._round == 2:
            self._second = answered
            for run, result in answered.items():
                self._states.setdefault(run, {}).update(result.states)
            plans = self._after_second()
        else:
            for run, result in answered.items():
                self._states.setdefault(run, {}).update(result.states)
            plans = {}
        self._round += 1
        self._pending = [plan.request(run, self.K) for run, plan in plans.items()]
        return list(self._pending)

    def result(self) -> LogResult:
        """The verdict, once :meth:`feed` returned no more requests."""
        findings = [replace(f, event=self._event(f.v)) for f in self._conclude()]
        ordered = sort_findings(findings)
        truth = sorted(
            (f for f in ordered if f.kind in TRUTH_KINDS and f.v is not None),
            key=lambda f: (f.v, f.kind != WORKER_KIND),
        )
        located = [f for f in ordered if f.v is not None]
        headline = truth[0] if truth else (located[0] if located else None)
        return LogResult(
            log=self.log,
            findings=ordered,
            info={
                "events": max(self.last_v - self.start_v, 0),
                "runs": len(self.runs),
                "seeds": [str(run.seed) for run in self.runs],
                "labels": [run.label or f"seed {run.seed}" for run in self.runs],
                "checkpoint_every": self.K,
            },
            headline=headline,
        )

    # ---- round 1: what every run saw over the whole log

    def _after_first(self, first: list[RunResult]) -> dict[RunConfig, _Plan]:
        self._first = first
        self._states.setdefault(self.ref, {}).update(first[0].states)
        ok = [i for i, r in enumerate(first) if r.crash is None]
        if ok:
            self.start_v, self.last_v = first[ok[0]].start_v, first[ok[0]].last_v
        plans: dict[RunConfig, _Plan] = {}

        def plan(run: RunConfig) -> _Plan:
            return plans.setdefault(run, _Plan())

        for i, result in enumerate(first):
            if result.crash is not None:
                self._findings.append(
                    Finding(
                        kind="exception",
                        v=None,
                        detail=f"the worker of {self.runs[i].describe()} died "
                        f"(exit {result.crash.returncode}) without a result:\n"
                        f"{result.crash.stderr}",
                    )
                )
        self._findings.extend(_exception_findings([first[i] for i in ok]))
        self._findings.extend(_call_findings([first[i] for i in ok]))

        # ---- between runs: the earliest checkpoint where one disagrees with the reference
        if 0 in ok:
            ref = first[0].hashes
            for i in ok[1:]:
                found = _first_diff(ref, {p.v: p.hash for p in first[i].checkpoints})
                if found is not None and (
                    self._divergence is None or found[1] < self._divergence.hi
                ):
                    self._divergence = _Divergence(i, found[0], found[1])
        if self._divergence is not None:
            div = self._divergence
            lo = self.start_v if div.lo is None else div.lo
            for run in (self.ref, self.runs[div.i], self.runs[div.i].fresh()):
                if div.hi > self.start_v:
                    plan(run).ranges.append((lo, div.hi))
                else:  # the initial states differ already
                    plan(run).keep.add(self.start_v)
                plan(run).need(div.hi)

        # ---- the recorded hashes: per-event hashes after the last one that matched
        rec = first[0].recorded_hash if 0 in ok else None
        if rec is not None:
            lo = rec.match_v if rec.match_v is not None else self.start_v
            plan(self.ref).ranges.append((lo, rec.mismatch_v))
            plan(self.ref).recorded_between = (lo, rec.mismatch_v)
            plan(self.ref).need(rec.mismatch_v)

        # ---- a state JSON cannot carry: the run that saw it first
        unser = [(first[i].unserializable, i) for i in ok if first[i].unserializable]
        if unser:
            bad, i = min(unser, key=lambda pair: pair[0].v)  # type: ignore[union-attr]
            lo, hi = bad.window  # type: ignore[union-attr]
            if hi > lo:
                plan(self.runs[i]).ranges.append((lo, hi))
                plan(self.runs[i]).need(hi)
            self._unser = (bad, i)

        # ---- a mutation: a per-event deep check from the start
        muts = [(first[i].mutation, i) for i in ok if first[i].mutation]
        if muts:
            detected, i = min(muts, key=lambda pair: pair[0].v)  # type: ignore[union-attr]
            end = detected.window[1]  # type: ignore[union-attr]
            plan(self.runs[i]).scan_to = end
            plan(self.runs[i]).need(end)
            self._mut = (detected, i)
        return plans

    # ---- round 2: the pinned v, and the states still missing for the diffs

    def _after_second(self) -> dict[RunConfig, _Plan]:
        plans: dict[RunConfig, _Plan] = {}

        def want(run: RunConfig, vs: Iterable[int]) -> None:
            missing = [v for v in vs if v not in self._states.get(run, {})]
            if missing:
                plan = plans.setdefault(run, _Plan())
                plan.keep.update(missing)
                plan.need(max(missing))

        if self._divergence is not None:
            self._causes = self._causes_of(self._divergence)
            for cause in self._causes:
                want(cause.a, [cause.v])
                want(cause.b, [cause.v])

        rec = self._first[0].recorded_hash if self._first else None
        if rec is not None:
            second = self._second.get(self.ref, RunResult())
            replayed = {p.v: p.hash for p in second.event_hashes}
            recorded = [(p.v, p.hash) for p in second.recorded if p.hash]
            self._rec_exact = recorded_window(replayed, recorded, rec.match_v)
            if self._rec_exact is not None:
                v = self._rec_exact[1]
                want(self.ref, [v - 1, v] if v - 1 >= self.start_v else [v])
        return plans

    def _causes_of(self, div: _Divergence) -> list[_Cause]:
        """Tell the causes apart: fresh vs fresh (seed), fresh vs warmed up with one seed."""
        ref, other = self.ref, self.runs[div.i]
        fresh = other.fresh()

        def hashes(run: RunConfig) -> dict[int, str | None]:
            return self._second.get(run, RunResult()).hashes

        causes: list[_Cause] = []
        seed = _first_diff(hashes(ref), hashes(fresh)) if fresh != ref else None
        if seed is not None:
            causes.append(_Cause("hash-seed", seed[1], ref, fresh))
        if other != fresh:
            hidden = _first_diff(hashes(fresh), hashes(other))
            if hidden is not None and (seed is None or hidden[1] < seed[1]):
                causes.append(_Cause("hidden-state", hidden[1], fresh, other))
        return causes

    # ---- the findings

    def _event(self, v: int | None) -> Any:
        if v is None:
            return None
        if v <= self.start_v:
            return fold.init_event() if v == 0 else None
        return self._event_at(v) if self._event_at is not None else None

    def _conclude(self) -> list[Finding]:
        findings = list(self._findings)
        if self._divergence is not None:
            findings.extend(self._divergence_findings(self._divergence))
        first = self._first[0] if self._first else RunResult()
        if first.crash is None and first.recorded_hash is not None:
            findings.append(self._recorded_finding())
        if first.crash is None and first.recorded_snapshot is not None:
            findings.append(_snapshot_finding(first.recorded_snapshot))
        if self._unser is not None:
            findings.append(self._unserializable_finding())
        if self._mut is not None:
            findings.append(self._mutation_finding())
        if first.crash is None:
            findings.extend(self._worker_finding(e) for e in self._workers)
        return findings

    def _state(self, run: RunConfig, v: int) -> Any:
        return self._states.get(run, {}).get(v)

    def _divergence_findings(self, div: _Divergence) -> list[Finding]:
        other = self.runs[div.i]
        extra: dict[str, Any] = {"seeds": [self.ref.seed, other.seed], "window": [div.lo, div.hi]}
        if not self._causes:
            return [
                Finding(
                    kind="hash-divergence",
                    v=div.hi,
                    detail=f"the runs' checkpoint hashes differ at v={div.hi} (they agreed at "
                    f"v={div.lo}); a per-event rerun of the window did not reproduce it, so the "
                    f"state went wrong somewhere in v={(div.lo or 0) + 1}..{div.hi} — a random "
                    "or clock value is the usual cause",
                    note=f"{self.ref.describe()} and {other.describe()} gave different states "
                    "from the same events",
                    extra=extra,
                )
            ]
        out = []
        for cause in self._causes:
            a, b = self._state(cause.a, cause.v), self._state(cause.b, cause.v)
            patch = diff(a, b, with_old=True) if a is not None and b is not None else None
            runs = [cause.a.describe(), cause.b.describe()]
            found = {**extra, "cause": cause.cause, "runs": runs}
            if cause.cause == "hash-seed":
                found["seeds"] = [cause.a.seed, cause.b.seed]
                found["diff_label"] = f"diff ({cause.a.label or cause.a.seed} → "
                found["diff_label"] += f"{cause.b.label or cause.b.seed})"
                out.append(
                    Finding(
                        kind="hash-divergence",
                        v=cause.v,
                        diff=patch,
                        detail=f"state differs between runs after v={cause.v}: "
                        f"{cause.a.describe()} and {cause.b.describe()} gave different states "
                        "from the same events (hash-seed)",
                        note="separate fresh processes disagree: the reducer depends on a "
                        "clock or random source, or (Python) on hash order (iterating a set or "
                        "a dict built from one)",
                        help="iterate over sorted(...) instead of a set, and derive ids and "
                        "randomness from the event",
                        extra=found,
                    )
                )
            else:
                found["seeds"] = [cause.a.seed, cause.b.seed]
                found["diff_label"] = f"diff (fresh → warmed up, {cause.b.label or cause.b.seed})"
                out.append(
                    Finding(
                        kind="hash-divergence",
                        v=cause.v,
                        diff=patch,
                        detail=f"state differs between runs after v={cause.v}: "
                        f"{cause.b.describe()} gave another state than {cause.a.describe()} "
                        "from the same events (hidden-state)",
                        note="the reducer keeps module-level state across calls (a counter, a "
                        "cache, a global): a process that has reduced events before, as a "
                        "long-running server has, behaves differently from a fresh one",
                        help="keep everything the reducer remembers in the state it returns",
                        extra=found,
                    )
                )
        return out

    def _worker_finding(self, evidence: WorkerEvidence) -> Finding:
        d, v = evidence.disagreement, evidence.v
        worker = evidence.worker(d.worker) or Worker(d.worker)
        reference = evidence.worker(d.reference)
        replayed = self._first[0].hashes.get(v) if self._first else None
        if v < self.start_v:
            replayed = None
        agrees = sorted(w for w, h in d.hashes.items() if h is not None and h == replayed)
        facts = [_worker_json(w, d.hashes.get(w.index)) for w in evidence.workers]
        extra: dict[str, Any] = {
            "differs": d.kind,
            "worker": _worker_json(worker, d.hashes.get(worker.index)),
            "reference": None
            if reference is None
            else _worker_json(reference, d.hashes.get(reference.index)),
            "workers": facts,
            "replay_hash": replayed,
            "replay_agrees_with": agrees,
            "snapshot_v": None,
        }
        ref_hash = d.hashes.get(d.reference) if d.reference is not None else None
        agreeing = [
            (evidence.worker(w) or Worker(w)).describe()
            for w, h in sorted(d.hashes.items())
            if w not in (d.worker, d.reference) and h is not None and h == ref_hash
        ]
        if d.kind == "event":
            stored = evidence.event
            patch = diff(stored, d.event, with_old=True) if stored is not None else None
            extra["diff_label"] = f"diff (the stored event → {worker.describe()}'s)"
            detail = (
                f"{worker.describe()} reported another event object for v={v} than "
                + (reference.describe() if reference is not None else "the other workers")
                + " (the log stores the first report of each v, or the bus's): the workers no "
                "longer fold the same events"
            )
            return Finding(
                kind=WORKER_KIND,
                v=v,
                diff=patch,
                detail=detail,
                note="every worker must fold the same events; one that reports another event "
                "for the same v sees another stream (or rewrites its events)",
                help="compare the workers' middleware versions and what they publish to the bus",
                extra=extra,
            )
        with_whom = reference.describe() if reference is not None else "the others"
        also = f" ({', '.join(agreeing)} agree{'s' if len(agreeing) == 1 else ''} with it)"
        detail = (
            f"{worker.describe()} disagrees with {with_whom} from v={v}: their state hashes "
            f"after the same event differ{also if agreeing else ''}"
        )
        if replayed is None:
            detail += "; the replay has no state hash at that v"
        elif agrees:
            names = ", ".join((evidence.worker(w) or Worker(w)).describe() for w in agrees)
            detail += f"; the replay agrees with {names}"
        else:
            detail += "; the replay agrees with none of them"
        # the diff: the replay against the worker it does not agree with, at that worker's
        # snapshot (the states the recorder asked for when the disagreement was seen)
        if d.worker in agrees and evidence.reference_snapshot is not None:
            side, snap = reference, evidence.reference_snapshot
        else:
            side, snap = worker, evidence.snapshot
        patch = None
        if snap is not None and side is not None:
            mine = self._state(self.ref, snap.v)
            if mine is not None:
                patch = diff(mine, snap.state, with_old=True)
                extra["snapshot_v"] = snap.v
                extra["diff_label"] = f"diff (replay → {side.describe()}), both after v={snap.v}"
                detail += (
                    f". The diff is from the replayed state to the state of {side.describe()}, "
                    f"both after v={snap.v} (the state the recorder asked that worker for when "
                    "the disagreement was seen)"
                )
        if patch is None:
            detail += ". No state of that worker was recorded at or after v (no diff)"
        return Finding(
            kind=WORKER_KIND,
            v=v,
            diff=patch,
            detail=detail,
            note="workers of one deployment folded the same events into different states: "
            "they run different reducer versions (or one is not deterministic)",
            help="deploy one reducer version to every worker; replay the log with each "
            "version (`rdt compare LOG --reducer A --against B`) to see which is right",
            extra=extra,
        )

    def _recorded_finding(self) -> Finding:
        rec = self._first[0].recorded_hash
        assert rec is not None
        good, bad = (
            self._rec_exact
            if self._rec_exact is not None
            else (
                rec.match_v,
                rec.mismatch_v,
            )
        )
        after, before = self._state(self.ref, bad), self._state(self.ref, bad - 1)
        patch = (
            diff(before, after, with_old=True) if after is not None and before is not None else None
        )
        since = "the start" if good is None else f"v={good}"
        if good is not None and bad - good == 1:
            detail = (
                f"the replayed state after v={bad} does not match the hash the server recorded "
                f"there (the recorded hash at v={good} matches)"
            )
        else:
            first_bad = (good if good is not None else self.start_v) + 1
            detail = (
                f"the log has recorded hashes only every few events: the last one that matches "
                f"is at {since} and the first that does not at v={bad}, so the state went wrong "
                f"somewhere in the window v={first_bad}..{bad}"
            )
        return Finding(
            kind="recorded-hash",
            v=bad,
            diff=patch,
            detail=detail,
            note="the code replayed now behaves differently from the code that produced the "
            "log; the diff shows what this event did in the replay (the log holds only a hash "
            "of the server's state)",
            help="if the change is intended, record a fresh log; otherwise find the commit with "
            "`git bisect run rdt verify … --git-bisect`",
            extra={
                "window": [good, bad],
                "exact": good is not None and bad - good == 1,
                "diff_label": f"what v={bad} did in the replay",
            },
        )

    def _unserializable_finding(self) -> Finding:
        assert self._unser is not None
        bad, i = self._unser
        v, pointer, problem = bad.v, bad.pointer, bad.problem
        second = self._second.get(self.runs[i], RunResult())
        for point in second.event_hashes:
            if point.hash is None and point.problem is not None:
                v, pointer, problem = point.v, point.problem.pointer, point.problem.problem
                break
        return Finding(
            kind="unserializable",
            v=v,
            detail=f"the state after v={v} is not JSON at {pointer or 'the root'}: {problem}",
            help="keep states to dicts, lists, strings, finite numbers, booleans and null "
            "(a sorted list for a set, an integer of ns or an ISO string for a time)",
            extra={"path": pointer},
        )

    def _mutation_finding(self) -> Finding:
        assert self._mut is not None
        detected, i = self._mut
        exact = self._second.get(self.runs[i], RunResult()).mutation_exact
        if exact is not None:
            v, path, patch = exact.v, exact.path, exact.diff
            detail = f"reducing v={v} changed its input state at {path or 'the root'}"
        else:
            lo, hi = detected.window
            v, path, patch = hi, None, None
            detail = (
                f"a state kept from v={lo} had changed by v={hi}: a reduction in "
                f"v={lo + 1}..{hi} changed its input (a per-event rerun did not reproduce it)"
            )
        return Finding(
            kind="mutation",
            v=v,
            diff=patch,
            detail=detail,
            note="a reducer must return a new state and leave its input alone: checkpoints, "
            "snapshots and the devtools' time travel all keep earlier states",
            help="copy what you change ({**state, key: new}, [*items, new]) instead of "
            "assigning into the state you were given",
            extra={"path": path, "diff_label": "diff (input before → after the call)"},
        )


# --------------------------------------------------------------------------- round-1 findings


def _worker_json(worker: Worker, hash: str | None) -> dict[str, Any]:
    return {
        "index": worker.index,
        "id": worker.id,
        "name": worker.name,
        "version": worker.version,
        "hash": hash,
    }


def _raise_worker_error(results: Sequence[RunResult]) -> None:
    for result in results:
        if result.error is None:
            continue
        if result.error.kind == "reducer":
            raise ReducerLoadError(result.error.message)
        raise LogError(result.error.message)


def _exception_findings(results: Sequence[RunResult]) -> list[Finding]:
    exc = next((r.exception for r in results if r.exception is not None), None)
    if exc is None:
        return []
    return [
        Finding(
            kind="exception",
            v=exc.v,
            detail=exc.traceback.rstrip(),
            help="a reducer must handle every event the log holds; fix it or skip the event "
            "with `rdt what-if`",
        )
    ]


def _call_findings(results: Sequence[RunResult]) -> list[Finding]:
    """Clock and randomness calls of all runs, the first ``v`` per call site."""
    sites: dict[tuple[str, str, int], Any] = {}
    for result in results:
        for call in result.calls:
            key = (call.name, call.file, call.line)
            if key not in sites or call.v < sites[key].v:
                sites[key] = call
    out = []
    for call in sorted(sites.values(), key=lambda c: c.v):
        times = f"{call.count} time{'s' if call.count != 1 else ''}"
        out.append(
            Finding(
                kind="nondeterministic-call",
                v=call.v,
                detail=f"{call.name}() called at {call.file}:{call.line} in {call.function}() "
                f"({times} in this run, first at v={call.v})",
                note="a replay reads a different clock or random value than production did, "
                "so its state can differ",
                help='read the time from event["ts"] and derive ids and randomness from the '
                "event (or do it in middleware, which puts the result in the event)",
                extra={"call": call.to_json()},
            )
        )
    return out


def _snapshot_finding(snap: Any) -> Finding:
    since = snap.last_match
    window = f"v={since + 1}..{snap.v}" if since is not None else f"v≤{snap.v}"
    return Finding(
        kind="recorded-snapshot",
        v=snap.v,
        diff=snap.diff,
        detail=f"the server's snapshot after v={snap.v} differs from the replayed state; the "
        f"divergence began in {window} (compare any recorded hashes there)",
        note="the code replayed now behaves differently from the code that produced the log",
        help="if the change is intended, record a fresh log; otherwise find the change with "
        "`git bisect run rdt verify … --git-bisect`",
        extra={"diff_label": "diff (recorded → replayed)"},
    )
