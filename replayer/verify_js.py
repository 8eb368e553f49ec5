"""The verify executor for JavaScript reducers: the planner's requests answered by Node workers.

:class:`~replayer.verify_plan.VerifyPlanner` decides what to replay and compares the answers;
this executor realises each :class:`~replayer.verify_messages.RunRequest` in its own ``node``
process (:class:`~replayer.jsworker.JsWorker` with its guards on), all of a round at once (one
thread each, blocked on pipes), and turns what the worker saw into a
:class:`~replayer.verify_messages.RunResult` — the same results the Python executor gives, so
the same findings, JSON and JUnit follow:

- separate processes are separate Node processes (``RunConfig.seed`` only numbers them); a
  warmed-up run first folds the first ``warmup`` events in the same process, then starts again
  from the initial state, so module-level state a reducer keeps across calls shows;
- the state hashes (PROTOCOL.md §5) are computed in the worker, at the start, every K events, at
  the end, at every ``v`` of the requested windows, and at the probes of the recorded hashes (the
  first recorded hash at or after every K events, and the last one);
- the recorded snapshots are compared as JSON values with integers beyond ±2^53 taken as the
  doubles JavaScript holds (:func:`replayer.compare.as_doubles`).

Recorded hashes are compared as they are: a log written by a Node server holds hashes of its
JavaScript states, which these match.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from devtools.errors import RdtError
from devtools.jsonutil import dumps
from replayer import fold
from replayer.checkpoints import load_state
from replayer.compare import as_doubles
from replayer.diff import diff, equal
from replayer.errors import JsWorkerError, ReplayError, StateNotJSON
from replayer.jsworker import JsWorker, PageResult
from replayer.verify_messages import (
    Call,
    Crash,
    HashPoint,
    Mutation,
    MutationExact,
    RecordedMismatch,
    ReducerException,
    RunRequest,
    RunResult,
    SnapshotMismatch,
    StateProblem,
    Subject,
    Unserializable,
    WorkerError,
)

_HOW = {"shallow": "shallow", "window": "checkpoint"}


class JsExecutor:
    """Runs the planner's requests for one subject on Node workers, all at once.

    Args:
        subject: the log, recording and JavaScript reducer every request replays.
        timeout: seconds a worker may take to answer one request before it counts as hung.
    """

    def __init__(self, subject: Subject, *, timeout: float = 60.0) -> None:
        self.subject = subject
        self.timeout = timeout

    def run(self, requests: Sequence[RunRequest]) -> list[RunResult]:
        """One result per request, in order; a worker that died gives ``RunResult(crash=…)``."""
        if not requests:
            return []
        with ThreadPoolExecutor(len(requests), thread_name_prefix="rdt-verify-js") as pool:
            return list(pool.map(self._one, requests))

    def _one(self, request: RunRequest) -> RunResult:
        from devtools.store import Log
        from replayer.source import open_source

        try:
            log = Log.open(self.subject.log)
        except RdtError as error:
            return RunResult(error=WorkerError("log", str(error)))
        try:
            reader = log.reader(self.subject.recording)
            source = open_source(reader, "auto")
            try:
                worker = JsWorker.start(self.subject.reducer, guards=True, timeout=self.timeout)
            except RdtError as error:
                return RunResult(error=WorkerError("reducer", str(error)))
            with worker:
                return _JsRun(request, reader, source, worker).result()
        except JsWorkerError as error:
            return RunResult(crash=Crash(None, str(error)))
        except RdtError as error:
            return RunResult(error=WorkerError("log", str(error)))
        finally:
            log.close()


class _JsRun:
    """One request carried out on one worker (the main pass and what it gathers)."""

    def __init__(self, request: RunRequest, reader: Any, source: Any, worker: JsWorker) -> None:
        self.request = request
        self.reader = reader
        self.source = source
        self.worker = worker
        self.snapshot = fold.start_snapshot(reader, source)
        self.start_v = self.snapshot.v if self.snapshot is not None else 0
        self.last_v = max(source.last_v or 0, self.start_v)
        stop = request.stop_at
        self.end_v = self.last_v if stop is None else min(self.last_v, stop)
        self.K = max(request.checkpoint_every, 1)
        self.checkpoints: list[HashPoint] = []
        self.event_hashes: list[HashPoint] = []
        self.states: dict[int, Any] = {}
        self.unserializable: Unserializable | None = None
        self.mutation: Mutation | None = None
        self.mutation_exact: MutationExact | None = None
        self.recorded_hash: RecordedMismatch | None = None
        self.recorded_snapshot: SnapshotMismatch | None = None
        self.exception: ReducerException | None = None
        self.calls: dict[tuple[str, str, int], Call] = {}
        self.warm_counts: dict[tuple[str, str, int, int], int] = {}

    # ---- the start

    def _begin(self) -> None:
        """Put the start state in the worker (ReplayError when @@INIT throws)."""
        if self.snapshot is not None:
            self.worker.set_state(dumps(self.snapshot.state))
        else:
            self.worker.init()

    def _pages(self, lo: int, hi: int) -> Iterator[Sequence[tuple[int, bytes]]]:
        if lo > hi:
            return iter(())
        return (page for page, _loads in self.source.loaded_pages(lo, hi))

    def _warm_up(self, count: int) -> None:
        """Fold the first ``count`` events and throw the states away (the same process)."""
        try:
            self._begin()
            hi = min(self.last_v, self.start_v + count)
            for _ in self.worker.fold_pages(self._pages(self.start_v + 1, hi)):
                pass
        except (ReplayError, StateNotJSON):
            pass  # the real pass reports it
        # calls made while warming up are not this run's: the worker's counts go on from here
        self.warm_counts = {(c.name, c.file, c.line, c.column): c.count for c in self.worker.calls}

    # ---- the main pass

    def result(self) -> RunResult:
        request = self.request
        if request.run.warmup:
            self._warm_up(request.run.warmup)
        try:
            self._begin()
        except ReplayError as error:
            self.exception = ReducerException(self.start_v, error.traceback)
            return self._result(())
        self._at_start()
        self._main_pass()
        recorded: tuple[HashPoint, ...] = ()
        if request.recorded_between is not None:
            lo, hi = request.recorded_between
            recorded = tuple(HashPoint(v, h) for v, h in self.reader.event_hashes(lo + 1, hi))
        return self._result(recorded)

    def _keep(self) -> set[int]:
        return self.request.states_wanted()

    def _at_start(self) -> None:
        v = self.start_v
        try:
            h: str | None = self.worker.state_hash()
        except StateNotJSON as error:
            h = None
            self._not_json(v, _problem(error), v)
        self.checkpoints.append(HashPoint(v, h))
        if v in self._keep() and h is not None:
            self.states[v] = load_state(self.worker.get_state())
        if self.request.compare_recorded and self.snapshot is not None and h is not None:
            self._compare_snapshot(v, load_state(self.worker.get_state()))

    def _probes(self) -> tuple[list[int], dict[int, str]]:
        """The recorded hashes to compare: the first at or after every K events, and the last."""
        if not self.request.compare_recorded or self.source.kind != "events":
            return [], {}
        recorded = list(self.reader.event_hashes(self.start_v + 1, self.end_v))
        probes: dict[int, str] = {}
        due = self.start_v + self.K
        for v, h in recorded:
            if v >= due:
                probes[v] = h
                due = v + self.K
        if recorded:
            probes[recorded[-1][0]] = recorded[-1][1]
        return sorted(probes), probes

    def _main_pass(self) -> None:
        request = self.request
        ranges = list(request.hash_ranges)
        in_range = sorted({v for lo, hi in ranges for v in range(lo + 1, hi + 1)})
        probe_vs, probes = self._probes()
        snapshots = (
            {s.v: s for s in self.reader.snapshots() if s.v > self.start_v}
            if request.compare_recorded
            else {}
        )
        wanted = self._keep()
        keep = wanted | set(snapshots)
        recorded_match: int | None = self.start_v if probes else None
        last_checkpoint = self.start_v
        try:
            for page in self.worker.fold_pages(
                self._pages(self.start_v + 1, self.end_v),
                checkpoint_every=self.K,
                hashes="checkpoints",
                keep=keep,
                hash_at=sorted(set(in_range) | set(probe_vs)),
                mutation_scan_to=request.mutation_scan_to,
            ):
                self._take_calls(page)
                self._take_mutations(page)
                seen: set[int] = set()
                for v, h, problem in page.hashes:
                    if v in seen:
                        continue
                    seen.add(v)
                    if problem is not None:
                        self._not_json(v, _parse_problem(problem), last_checkpoint)
                    if v % self.K == 0 or v == self.end_v:
                        self.checkpoints.append(HashPoint(v, h))
                        last_checkpoint = v
                    if _within(in_range, v):
                        self.event_hashes.append(
                            HashPoint(v, h, _parse_problem(problem) if problem else None)
                        )
                    if recorded_match is not None and v in probes and h is not None:
                        if h == probes[v]:
                            recorded_match = v
                        else:
                            self.recorded_hash = RecordedMismatch(recorded_match, v)
                            recorded_match = None
                for v, data in sorted(page.states.items()):
                    state = load_state(data)
                    if v in snapshots:
                        self._compare_snapshot(v, state, snapshots[v])
                    if v in wanted:
                        self.states[v] = state
        except ReplayError as error:
            self.exception = ReducerException(error.v, error.traceback)
        except StateNotJSON as error:
            v = getattr(error, "v", None) or self.end_v
            self._not_json(v, _problem(error), last_checkpoint)

    # ---- what the pages say

    def _take_calls(self, page: PageResult) -> None:
        """Keep each call site's latest entry (the worker counts from its start)."""
        for call in page.calls:
            before = self.warm_counts.get((call.name, call.file, call.line, call.column), 0)
            count = call.count - before
            if count > 0:
                key = (call.name, call.file, call.line)
                self.calls[key] = Call(
                    call.name, call.file, call.line, call.function, call.v, count
                )

    def _take_mutations(self, page: PageResult) -> None:
        for found in page.mutations:
            if found.kind == "scan":
                if self.mutation_exact is None:
                    self.mutation_exact = MutationExact(found.v, found.path, None)
            elif self.mutation is None:
                window = found.window if found.window is not None else (found.v - 1, found.v)
                self.mutation = Mutation(found.v, _HOW.get(found.kind, found.kind), window)

    def _not_json(self, v: int, problem: StateProblem, window_lo: int) -> None:
        if self.unserializable is None:
            self.unserializable = Unserializable(
                v, problem.pointer, problem.problem, (window_lo, v)
            )

    def _compare_snapshot(self, v: int, state: Any, snapshot: Any = None) -> None:
        snap = snapshot if snapshot is not None else self.snapshot
        if self.recorded_snapshot is not None or snap is None:
            return
        recorded, _ = as_doubles(snap.state)
        replayed, _ = as_doubles(state)
        if equal(recorded, replayed):
            return
        self.recorded_snapshot = SnapshotMismatch(
            v=v,
            diff=diff(recorded, replayed, with_old=True),
            recorded_hash=snap.hash,
            last_match=None,
        )

    def _result(self, recorded: tuple[HashPoint, ...]) -> RunResult:
        return RunResult(
            start_v=self.start_v,
            last_v=self.last_v,
            checkpoints=tuple(self.checkpoints),
            event_hashes=tuple(self.event_hashes),
            states=self.states,
            recorded=recorded,
            recorded_hash=self.recorded_hash,
            recorded_snapshot=self.recorded_snapshot,
            unserializable=self.unserializable,
            mutation=self.mutation,
            mutation_exact=self.mutation_exact,
            calls=tuple(sorted(self.calls.values(), key=lambda c: c.v)),
            exception=self.exception,
        )


def _within(sorted_vs: list[int], v: int) -> bool:
    i = bisect.bisect_left(sorted_vs, v)
    return i < len(sorted_vs) and sorted_vs[i] == v


_NOT_JSON = re.compile(r"not JSON at (the root|/.*?): (.*)", re.S)


def _problem(error: StateNotJSON) -> StateProblem:
    text = str(error)  # "the state after v=N is not JSON (<the worker's message>)"
    return _parse_problem(text[:-1] if text.endswith(")") else text)


def _parse_problem(problem: Any) -> StateProblem:
    """The JSON pointer and the problem out of the worker's ``not JSON at …: …`` message."""
    text = str(problem)
    match = _NOT_JSON.search(text)
    if match is None:
        return StateProblem("", text)
    pointer = "" if match.group(1) == "the root" else match.group(1)
    return StateProblem(pointer, match.group(2))
