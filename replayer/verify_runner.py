"""The verify worker: one replay of one log in its own process, reporting hashes and guard hits.

Run in a fork of ``python -m replayer.verify_runner --serve`` (:mod:`replayer.verify_pool`), or
without ``fork`` as ``python -m replayer.verify_runner RESULT_FILE`` with a JSON request on
stdin; writes one JSON result to a file (never to stdout, which belongs to the reducer's
prints). The parent picks ``PYTHONHASHSEED``.

The job is ``{"subject": Subject, "request": RunRequest}`` and the result a ``RunResult``, as
JSON (:mod:`replayer.verify_messages`). :func:`run` opens the log and imports the reducer
(:class:`_Replay`), warms it up when asked, and runs :func:`_main_pass`, which gathers what it
finds in a :class:`_Found`.

The main pass replays every event once, in chunks decoded as the replay engine does, and per
event does little more than the engine: a shallow copy of the input state's top level compared
after the call (an in-place change to it shows at its exact ``v``), the guard's ``v`` set around
the call, and one comparison with the next ``v`` at which anything is due. Only there does it
hash: the canonical state hash at ``v = 0``, every ``K`` events and at the end; a re-check of
the previous checkpoint's state (which a reducer changing its input in depth alters); sampled
"sentinel" states re-checked in between as often as ``SENTINEL_SHARE`` of the replay's time
pays for (these two compare ``orjson`` bytes, a fraction of a canonical hash). With
``compare_recorded`` the recorded snapshots, and the recorded hashes (read alongside with
:meth:`devtools.store.LogReader.event_hashes`, compared at most once per ``K`` events and at the
last one). ``warmup`` first runs the reducer over the first N events and throws the results
away, so a reducer that carries module-level state across calls starts the real pass in a
different condition than a fresh process. Localising requests ask for per-event hashes in
ranges, states at given ``v``, or a per-event deep mutation check up to ``v``; the parent then
compares runs. ``--serve`` makes this a fork server (see :mod:`replayer.verify_pool`).
"""

from __future__ import annotations

import bisect
import contextlib
import gc
import os
import sys
import time
import traceback
from collections.abc import Iterator
from typing import Any

import orjson

from devtools.canonical import CanonicalError, canonical_bytes
from devtools.errors import RdtError
from devtools.jsonutil import dumps, loads
from replayer import fold
from replayer.errors import ReplayError
from replayer.fold import PyReducer
from replayer.source import chunks, open_source, raw_chunks
from replayer.verify_messages import (
    Call,
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

_clock = time.perf_counter  # bound before the guard replaces the module attribute
_orjson_dumps = orjson.dumps

SENTINEL_SHARE = 0.1
"""Deep mutation checks between checkpoints may cost about this share of the replay's time."""
RECORDED_PAGE = 10_000
"""Recorded hashes read per query."""
_SERVER: int | None = None
"""In a forked child: the fork server's pid; the child stops when it is gone."""
_CALLER: int | None = None
"""In a forked child: the pid of the process that asked; the child stops when it is gone."""


def _sha(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


def _hash(state: Any) -> tuple[str | None, StateProblem | None]:
    h, bad, _ = _hash_bytes(state)
    return h, bad


def _hash_bytes(state: Any) -> tuple[str | None, StateProblem | None, bytes | None]:
    try:
        data = canonical_bytes(state)
    except CanonicalError as error:
        return None, StateProblem(error.pointer, error.problem), None
    except RecursionError:
        return None, StateProblem("", "nested too deeply (or circular)"), None
    return _sha(data), None, data


def _format_exception(error: BaseException) -> str:
    tb = error.__traceback__
    if tb is not None and tb.tb_next is not None:
        tb = tb.tb_next  # drop this module's own frame
    return "".join(traceback.format_exception(type(error), error, tb))


def _events(reader: Any, source: Any, base_v: int, last_v: int) -> Iterator[tuple[int, Any]]:
    """``(v, event)`` after ``base_v``, as the replay engine reads them."""
    if base_v >= last_v:
        return
    for chunk in chunks(source.payloads(base_v + 1, last_v)):
        yield from chunk


def _raw_chunks(source: Any, base_v: int, last_v: int) -> Iterator[tuple[list[Any], Any]]:
    """Undecoded ``(v, payload)`` chunks after ``base_v`` up to ``last_v``, each with its loader."""
    if base_v >= last_v:
        return iter(())
    return raw_chunks(source.payloads(base_v + 1, last_v))


def _fingerprint(state: Any) -> bytes | None:
    """Bytes that change when ``state`` is changed in place (``None``: cannot be taken).

    ``orjson.dumps`` keeps dict order and costs a fraction of a canonical hash; a state it
    cannot write (a huge integer, a set) falls back to the canonical bytes.
    """
    try:
        return _orjson_dumps(state)
    except (TypeError, ValueError):
        return _canonical_or_none(state)


def _canonical_or_none(state: Any) -> bytes | None:
    try:
        return canonical_bytes(state)
    except (CanonicalError, RecursionError):
        return None


_SHALLOW_LIMIT = 256
"""Top-level dicts and lists longer than this are left to the deep checks."""


class _Stops:
    """The next ``v`` at which the main pass must do more than reduce (hash, compare, keep)."""

    def __init__(
        self,
        *,
        K: int,
        last_v: int,
        stop_at: int | None,
        ranges: list[tuple[int, int]],
        keep: set[int],
        snapshots: dict[int, Any],
    ) -> None:
        self.K = K
        self.end = last_v if stop_at is None else min(last_v, stop_at)
        self.ranges = ranges
        self.points = sorted(keep | set(snapshots))

    def in_ranges(self, v: int) -> bool:
        return any(lo < v <= hi for lo, hi in self.ranges)

    def after(self, v: int, recorded_v: int | None) -> int:
        """The first ``v' > v`` where something is due (a checkpoint, a look-up, a range…)."""
        best = min((v // self.K + 1) * self.K, self.end if self.end > v else self.end + 1)
        for lo, hi in self.ranges:
            if hi > v:
                best = min(best, max(lo + 1, v + 1))
        i = bisect.bisect_right(self.points, v)
        if i < len(self.points):
            best = min(best, self.points[i])
        if recorded_v is not None and recorded_v > v:
            best = min(best, recorded_v)
        return best


class _Recorded:
    """The server's recorded hashes, read alongside the replay: the next one to compare.

    After a comparison at ``v`` the next is the first recorded at or after ``v + K`` (so at
    most one per K events is hashed for it), or the last one the log has.
    """

    def __init__(self, hashes: Iterator[tuple[int, str]]) -> None:
        self._hashes = hashes
        self.v: int | None = None
        """The ``v`` of the next recorded hash to compare (``None``: no more)."""
        self.hash: str | None = None

    def advance(self, at_least: int) -> None:
        last: tuple[int, str] | None = None
        for v, h in self._hashes:
            last = (v, h)
            if v >= at_least:
                break
        self.v, self.hash = last if last is not None else (None, None)


class _Found:
    """What the main pass found, gathered as it goes (a :class:`RunResult` at the end)."""

    __slots__ = (
        "checkpoints",
        "event_hashes",
        "exception",
        "mutation",
        "mutation_exact",
        "recorded_hash",
        "recorded_snapshot",
        "snapshot_matches",
        "states",
        "unserializable",
    )

    def __init__(self) -> None:
        self.checkpoints: list[HashPoint] = []
        self.event_hashes: list[HashPoint] = []
        self.states: dict[int, Any] = {}
        self.exception: ReducerException | None = None
        self.unserializable: Unserializable | None = None
        self.recorded_hash: RecordedMismatch | None = None
        self.recorded_snapshot: SnapshotMismatch | None = None
        self.snapshot_matches: list[int] = []
        self.mutation: Mutation | None = None
        self.mutation_exact: MutationExact | None = None

    def hashed(self, v: int, h: str | None, bad: StateProblem | None, window_lo: int) -> None:
        if bad is not None and self.unserializable is None:
            self.unserializable = Unserializable(v, bad.pointer, bad.problem, (window_lo, v))

    def compare_snapshot(self, snap: Any, state: Any, h: str | None, v: int) -> None:
        """Compare the replayed state after ``v`` with the snapshot the server recorded there."""
        if self.recorded_snapshot is not None or h is None:
            return
        recorded_hash, _ = _hash(snap.state)
        if recorded_hash == h:
            self.snapshot_matches.append(v)
            return
        from replayer.diff import diff

        self.recorded_snapshot = SnapshotMismatch(
            v=v,
            diff=diff(snap.state, state, with_old=True),
            recorded_hash=snap.hash,
            last_match=self.snapshot_matches[-1] if self.snapshot_matches else None,
        )

    def result(self, start_v: int, last_v: int, calls: Any, recorded: Any) -> RunResult:
        return RunResult(
            start_v=start_v,
            last_v=last_v,
            checkpoints=tuple(self.checkpoints),
            event_hashes=tuple(self.event_hashes),
            states=self.states,
            recorded=tuple(recorded),
            recorded_hash=self.recorded_hash,
            recorded_snapshot=self.recorded_snapshot,
            unserializable=self.unserializable,
            mutation=self.mutation,
            mutation_exact=self.mutation_exact,
            calls=tuple(Call.from_json(site.to_json()) for site in calls),
            exception=self.exception,
        )


class _Replay:
    """The opened log and the loaded reducer of one request, and where the replay starts."""

    def __init__(self, subject: Subject) -> None:
        from devtools.store import Log

        self.log = Log.open(subject.log)
        self.reader = self.log.reader(subject.recording)
        self.source = open_source(self.reader, "auto")
        self.reducer: Any = None
        # ---- the starting state, as every replay picks it (replayer.fold)
        self.snapshot = fold.start_snapshot(self.reader, self.source)
        self.start_v = self.snapshot.v if self.snapshot is not None else 0
        self.last_v = max(self.source.last_v or 0, self.start_v)

    def load(self, ref: str, guard: Any) -> None:
        """Import the reducer with the guard installed; rebind its freshly imported modules."""
        from replayer.loader import load_reducer

        before = set(sys.modules)
        self.reducer = load_reducer(ref)
        fresh = [sys.modules[name] for name in set(sys.modules) - before if name in sys.modules]
        owner = sys.modules.get(getattr(self.reducer, "__module__", "") or "")
        guard.rebind(fresh + ([owner] if owner is not None else []))

    def initial(self) -> Any:
        """The start state (raises ReplayError when the reducer raises on ``@@INIT``)."""
        return fold.start(PyReducer(self.reducer), self.snapshot).state

    def recorded_snapshots(self) -> dict[int, Any]:
        """The snapshots the server recorded after the start, by ``v``."""
        return {snap.v: snap for snap in self.reader.snapshots() if snap.v > self.start_v}

    def recorded_hashes(self, lo: int, hi: int) -> Iterator[tuple[int, str]]:
        """``(v, hash)`` the server recorded for ``lo < v <= hi``, a page at a time."""
        from devtools.store import LogReader

        reader = LogReader(self.log, self.reader.recording, page_size=RECORDED_PAGE)
        return reader.event_hashes(lo + 1, hi)

    def warm_up(self, count: int) -> None:
        """Exercise the reducer over the first ``count`` events; results thrown away."""
        if not count:
            return
        start_v = self.start_v
        events = _events(self.reader, self.source, start_v, min(self.last_v, start_v + count))
        with contextlib.suppress(ReplayError):  # the real pass reports it
            fold.fold(PyReducer(self.reducer), self.initial(), events)


def run(request: RunRequest, subject: Subject) -> RunResult:
    """Carry out one request in this process (guards installed here); return the result."""
    from replayer.guards import CallGuard

    try:
        replay = _Replay(subject)
    except RdtError as error:
        return RunResult(error=WorkerError("log", str(error)))
    guard = CallGuard()
    guard.install()
    try:
        replay.load(subject.reducer, guard)
    except RdtError as error:
        return RunResult(error=WorkerError("reducer", str(error)))

    snapshots = replay.recorded_snapshots() if request.compare_recorded else {}
    replay.warm_up(request.run.warmup)
    found = _Found()
    try:
        guard.v = replay.start_v
        try:
            state = replay.initial()
        finally:
            guard.v = None
    except ReplayError as error:
        found.exception = ReducerException(replay.start_v, error.traceback)
        return found.result(replay.start_v, replay.last_v, guard.found(), ())

    _main_pass(replay, request, guard, state, snapshots, found)
    recorded: tuple[HashPoint, ...] = ()
    if request.recorded_between is not None:
        lo, hi = request.recorded_between
        recorded = tuple(HashPoint(v, h) for v, h in replay.recorded_hashes(lo, hi))
    return found.result(replay.start_v, replay.last_v, guard.found(), recorded)


def _main_pass(
    replay: _Replay,
    request: RunRequest,
    guard: Any,
    state: Any,
    snapshots: dict[int, Any],
    found: _Found,
) -> None:
    """Replay every event once from ``state`` (see the module doc); results go to ``found``."""
    reducer, source = replay.reducer, replay.source
    start_v, last_v = replay.start_v, replay.last_v
    K = request.checkpoint_every
    stop_at = request.stop_at
    compare_recorded = request.compare_recorded
    hash_ranges = list(request.hash_ranges)
    keep_states = request.states_wanted()
    scan_to = request.mutation_scan_to
    checkpoints, event_hashes, states = found.checkpoints, found.event_hashes, found.states

    h0, bad0, data0 = _hash_bytes(state)
    checkpoints.append(HashPoint(start_v, h0))
    found.hashed(start_v, h0, bad0, start_v)
    if start_v in keep_states and data0 is not None:
        states[start_v] = loads(data0)
    if compare_recorded and start_v in snapshots:
        found.compare_snapshot(snapshots[start_v], state, h0, start_v)
    stops = _Stops(
        K=K,
        last_v=last_v,
        stop_at=stop_at,
        ranges=hash_ranges,
        keep=keep_states,
        snapshots=snapshots,
    )
    recorded_match = start_v if compare_recorded and source.kind == "events" else None
    end_v = last_v if stop_at is None else min(last_v, stop_at)
    recorded = _Recorded(
        replay.recorded_hashes(start_v, end_v) if recorded_match is not None else iter(())
    )
    recorded.advance(start_v + K)
    mutation: Mutation | None = None
    # the deep mutation checks: the last checkpoint's state and a sampled "sentinel" state,
    # each kept with its bytes (orjson: a fraction of a canonical hash) to compare later
    ck_v, ck_bytes, ck_state = start_v, _fingerprint(state), state
    sentinel_v, sentinel_bytes, sentinel = start_v, ck_bytes, state
    stride = 1  # events between sentinel checks, tuned per chunk to SENTINEL_SHARE
    next_sentinel = start_v + 1
    sentinel_cost = 0.0
    sentinel_checks = 0
    scan_end = scan_to if scan_to is not None else -1  # per-event deep checks up to here
    shallow = True  # the per-event top-level check, until a mutation is found
    stops_next = stops.after(start_v, recorded.v)
    next_stop = min(stops_next, next_sentinel)
    v = start_v
    failed = False
    copyable, limit = (dict, list), _SHALLOW_LIMIT
    gc.collect()
    gc.freeze()  # what is loaded now is never collected: full collections skip it
    try:
        for rows, loads_chunk in _raw_chunks(source, start_v, end_v):
            if _SERVER is not None and (os.getppid() != _SERVER or not _alive(_CALLER)):
                os._exit(1)  # orphaned: nobody waits for this result any more
            chunk_began = _clock()
            chunk_sentinel = 0.0
            for v, payload in rows:
                event = loads_chunk(payload)
                before_bytes = _canonical_or_none(state) if v <= scan_end else None
                # a shallow copy, compared after the call: C-level, identical values compare
                # by identity, so only a top-level change costs more than a pointer test
                top = (
                    state.copy()
                    if shallow and type(state) in copyable and len(state) <= limit
                    else None
                )
                guard.v = v
                try:
                    new = reducer(state, event)
                except Exception as error:  # noqa: BLE001 - the user's reducer
                    guard.v = None
                    found.exception = ReducerException(v, _format_exception(error))
                    failed = True
                    break
                guard.v = None
                if top is not None and top != state:
                    mutation = Mutation(v, "shallow", (v - 1, v))
                    shallow = False
                if before_bytes is not None:
                    after_bytes = _canonical_or_none(state) or before_bytes
                    if after_bytes != before_bytes:
                        from replayer.guards import mutation_path

                        path, patch = mutation_path(loads(before_bytes), loads(after_bytes))
                        found.mutation_exact = MutationExact(v, path, patch)
                        scan_end = -1
                state = new
                if v < next_stop:
                    continue

                # ---- something is due at this v
                began = _clock()
                if v >= next_sentinel and mutation is None:
                    if sentinel_bytes is not None and _fingerprint(sentinel) != sentinel_bytes:
                        mutation = Mutation(v, "sentinel", (sentinel_v, v))
                    sentinel, sentinel_v, sentinel_bytes = state, v, _fingerprint(state)
                    sentinel_checks += 1
                    next_sentinel = v + stride
                if v < stops_next:  # only a sentinel was due: its whole cost counts
                    next_stop = min(stops_next, next_sentinel)
                    chunk_sentinel += _clock() - began
                    continue
                due = v % K == 0 or v == end_v
                probe = v == recorded.v and recorded_match is not None
                ranged = bool(hash_ranges) and stops.in_ranges(v)
                if due or probe or ranged or v in keep_states or v in snapshots:
                    h, bad, data = _hash_bytes(state)
                    found.hashed(v, h, bad, ck_v)
                    if ranged:
                        event_hashes.append(HashPoint(v, h, bad))
                    if v in keep_states and data is not None:
                        states[v] = loads(data)
                    if compare_recorded and v in snapshots:
                        found.compare_snapshot(snapshots[v], state, h, v)
                    if probe:
                        if h == recorded.hash:
                            recorded_match = v
                        elif h is not None:
                            found.recorded_hash = RecordedMismatch(recorded_match, v)
                            recorded_match = None
                        if recorded_match is not None:
                            recorded.advance(v + K)
                    if due:
                        checkpoints.append(HashPoint(v, h))
                        if (
                            mutation is None
                            and ck_bytes is not None
                            and _fingerprint(ck_state) != ck_bytes
                        ):
                            mutation = Mutation(v, "checkpoint", (ck_v, v))
                        ck_v, ck_bytes, ck_state = v, _fingerprint(state), state
                stops_next = stops.after(v, recorded.v)
                next_stop = min(stops_next, next_sentinel)
            # sentinel checks may cost SENTINEL_SHARE of the chunk's own time
            if mutation is None and rows and not failed:
                spent = _clock() - chunk_began - chunk_sentinel
                if chunk_sentinel and sentinel_checks:
                    sentinel_cost = chunk_sentinel / sentinel_checks
                sentinel_checks = 0
                per_event = spent / len(rows)
                if per_event > 0 and sentinel_cost > 0:
                    stride = max(1, round(sentinel_cost / (per_event * SENTINEL_SHARE)))
                next_sentinel = min(next_sentinel, v + stride)
                next_stop = min(stops_next, next_sentinel)
            if failed:
                break
    finally:
        gc.unfreeze()

    if mutation is None and ck_bytes is not None and _fingerprint(ck_state) != ck_bytes:
        mutation = Mutation(ck_v, "checkpoint", (ck_v, last_v))
    if mutation is None and sentinel_bytes is not None and _fingerprint(sentinel) != sentinel_bytes:
        mutation = Mutation(sentinel_v, "sentinel", (sentinel_v, last_v))
    found.mutation = mutation


def _answer(job: dict[str, Any], out: str) -> None:
    """Carry out the job ``{"subject", "request"}`` and write its result (JSON) to ``out``."""
    try:
        result = run(RunRequest.from_json(job["request"]), Subject.from_json(job["subject"]))
    except RdtError as error:
        result = RunResult(error=WorkerError("log", str(error)))
    with open(out, "wb") as handle:
        handle.write(dumps(result.to_json()))


def serve() -> int:
    """Fork server: per line of JSON ``{"out", "err", "cwd", "request"}`` on stdin, answer in a
    fresh child and print the child's exit code on a line (see :mod:`replayer.verify_pool`)."""
    import devtools.store  # noqa: F401 - imported once here, shared by every child
    import replayer.diff
    import replayer.guards
    import replayer.loader  # noqa: F401

    gc.collect()
    gc.freeze()  # children never touch (copy) these pages for garbage collection
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while line := stdin.readline():
        job = loads(line)
        pid = os.fork()
        if pid == 0:
            _child(job)
        _, status = os.waitpid(pid, 0)
        stdout.write(b"%d\n" % os.waitstatus_to_exitcode(status))
        stdout.flush()
    return 0


def _alive(pid: int | None) -> bool:
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _child(job: dict[str, Any]) -> None:
    """In the forked child: reducer prints go nowhere, errors to the job's file; never returns."""
    global _SERVER, _CALLER
    _SERVER, _CALLER = os.getppid(), job.get("caller")
    code = 1
    try:
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        err = os.open(job["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(err, 2)
        os.chdir(job["cwd"])
        os.environ.clear()
        os.environ.update(job["env"])
        _answer(job["request"], job["out"])
        code = 0
    except BaseException:  # noqa: BLE001 - whatever happens, the child reports and exits
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(code)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--serve"]:
        return serve()
    if len(args) != 1:
        print(
            "usage: python -m replayer.verify_runner (RESULT_FILE < request.json | --serve)",
            file=sys.stderr,
        )
        return 2
    _answer(loads(sys.stdin.buffer.read()), args[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
