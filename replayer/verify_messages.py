"""What `rdt verify`'s planner asks of a worker and what a worker answers: frozen value types.

The planner (:mod:`replayer.verify_plan`) speaks only these types; they become JSON at the pipe
(:meth:`RunRequest.to_json`, :meth:`RunResult.from_json` …) and nowhere else. States are keyed
by ``int`` here and by decimal strings only in the JSON. A worker in another language answers
the same JSON.

::

    RunRequest ── run: RunConfig (seed, warmup, label)
                  checkpoint_every, compare_recorded, hash_ranges, keep_states,
                  mutation_scan_to, stop_at, window_states, recorded_between
    RunResult  ── start_v, last_v, checkpoints: (HashPoint …), event_hashes: (HashPoint …),
                  states: {v: state}, recorded: (HashPoint …), recorded_hash: RecordedMismatch,
                  recorded_snapshot: SnapshotMismatch, unserializable: Unserializable,
                  mutation: Mutation, mutation_exact: MutationExact, calls: (Call …),
                  exception: ReducerException, crash: Crash, error: WorkerError
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Call",
    "Crash",
    "HashPoint",
    "Mutation",
    "MutationExact",
    "RecordedMismatch",
    "ReducerException",
    "RunConfig",
    "RunRequest",
    "RunResult",
    "SnapshotMismatch",
    "StateProblem",
    "Subject",
    "Unserializable",
    "WorkerError",
]


@dataclass(frozen=True, slots=True)
class Subject:
    """What every request of one verify replays: the executor's, never the planner's, concern."""

    log: str
    recording: int | str | None
    reducer: str
    """``package.module:attr`` or ``path/to/file.py:attr``."""

    def to_json(self) -> dict[str, Any]:
        return {"log": self.log, "recording": self.recording, "reducer": self.reducer}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Subject:
        return cls(str(doc["log"]), doc.get("recording"), str(doc["reducer"]))


@dataclass(frozen=True, slots=True)
class RunConfig:
    """One way to run the reducer: what the planner compares runs by.

    The executor decides how to realise it (the Python one: ``PYTHONHASHSEED=seed`` in a fork
    of a per-seed server); the planner only compares the answers and names runs by ``label``.
    """

    seed: int
    """The seed that makes this process differ from another (hash order, for Python)."""
    warmup: int = 0
    """Events the reducer is run over first, results thrown away (0: a fresh run)."""
    label: str = ""
    """How messages name the seed, e.g. ``PYTHONHASHSEED=2``."""

    def fresh(self) -> RunConfig:
        """The same seed without a warm-up."""
        return RunConfig(self.seed, 0, self.label)

    def describe(self) -> str:
        """``the fresh run with PYTHONHASHSEED=1`` / ``the run warmed up on 10 events with …``."""
        seed = self.label or f"seed {self.seed}"
        if self.warmup:
            return f"the run warmed up on {self.warmup} events with {seed}"
        return f"the fresh run with {seed}"

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed, "warmup": self.warmup, "label": self.label}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> RunConfig:
        return cls(int(doc["seed"]), int(doc.get("warmup") or 0), str(doc.get("label") or ""))


WINDOW_STATES_MAX = 64
"""Hash ranges up to this many events also send their states (``RunRequest.window_states``)."""


@dataclass(frozen=True, slots=True)
class RunRequest:
    """One replay of the log for the planner."""

    run: RunConfig
    checkpoint_every: int = 1000
    """K: the state hash at the start, every K events and at the end."""
    compare_recorded: bool = False
    """Compare with the hashes and snapshots the log recorded."""
    hash_ranges: tuple[tuple[int, int], ...] = ()
    """Per-event hashes for ``lo < v <= hi``."""
    keep_states: tuple[int, ...] = ()
    """Send the states after these ``v``."""
    mutation_scan_to: int | None = None
    """A per-event deep check that the reducer leaves its input alone, up to this ``v``."""
    stop_at: int | None = None
    """Stop after this ``v`` (``None``: the end of the log)."""
    window_states: bool = False
    """Also send the states of hash ranges short enough (the worker's limit)."""
    recorded_between: tuple[int, int] | None = None
    """Send the hashes the log recorded for ``lo < v <= hi`` (so the planner never reads it)."""

    def states_wanted(self) -> set[int]:
        """The ``v`` whose states the result carries: ``keep_states``, and with
        ``window_states`` every ``v`` of the hash ranges up to :data:`WINDOW_STATES_MAX` long
        (which saves the planner a round of workers)."""
        wanted = set(self.keep_states)
        if self.window_states:
            for lo, hi in self.hash_ranges:
                if hi - lo <= WINDOW_STATES_MAX:
                    wanted.update(range(lo, hi + 1))
        return wanted

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run.to_json(),
            "checkpoint_every": self.checkpoint_every,
            "compare_recorded": self.compare_recorded,
            "hash_ranges": [list(r) for r in self.hash_ranges],
            "keep_states": list(self.keep_states),
            "mutation_scan_to": self.mutation_scan_to,
            "stop_at": self.stop_at,
            "window_states": self.window_states,
            "recorded_between": list(self.recorded_between) if self.recorded_between else None,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> RunRequest:
        between = doc.get("recorded_between")
        return cls(
            run=RunConfig.from_json(doc["run"]),
            checkpoint_every=max(int(doc.get("checkpoint_every") or 1000), 1),
            compare_recorded=bool(doc.get("compare_recorded")),
            hash_ranges=tuple((int(lo), int(hi)) for lo, hi in doc.get("hash_ranges") or ()),
            keep_states=tuple(int(v) for v in doc.get("keep_states") or ()),
            mutation_scan_to=doc.get("mutation_scan_to"),
            stop_at=doc.get("stop_at"),
            window_states=bool(doc.get("window_states")),
            recorded_between=(int(between[0]), int(between[1])) if between else None,
        )


# --------------------------------------------------------------------------- result parts


@dataclass(frozen=True, slots=True)
class StateProblem:
    """Why a state has no hash: the JSON pointer and what is wrong there."""

    pointer: str
    problem: str

    def to_json(self) -> dict[str, Any]:
        return {"pointer": self.pointer, "problem": self.problem}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> StateProblem:
        return cls(str(doc["pointer"]), str(doc["problem"]))


@dataclass(frozen=True, slots=True)
class HashPoint:
    """The state hash after ``v`` (``None``: the state is not JSON, see ``problem``)."""

    v: int
    hash: str | None
    problem: StateProblem | None = None

    def to_json(self) -> list[Any]:
        return [self.v, self.hash, self.problem.to_json() if self.problem else None]

    @classmethod
    def from_json(cls, row: list[Any]) -> HashPoint:
        problem = row[2] if len(row) > 2 else None
        return cls(int(row[0]), row[1], StateProblem.from_json(problem) if problem else None)


@dataclass(frozen=True, slots=True)
class RecordedMismatch:
    """The first recorded hash the replay did not match, after the last one it did."""

    match_v: int | None
    mismatch_v: int


@dataclass(frozen=True, slots=True)
class SnapshotMismatch:
    """The first recorded snapshot the replayed state differs from."""

    v: int
    diff: list[dict[str, Any]]
    """Recorded → replayed (RFC 6902)."""
    recorded_hash: str | None = None
    last_match: int | None = None
    """The last snapshot that matched (``None``: none before)."""


@dataclass(frozen=True, slots=True)
class Unserializable:
    """The first state JSON cannot carry, seen at a hashing point."""

    v: int
    pointer: str
    problem: str
    window: tuple[int, int]
    """It went wrong after ``window[0]`` and by ``window[1]``."""


@dataclass(frozen=True, slots=True)
class Mutation:
    """A kept state that changed: a reduction changed its input."""

    v: int
    how: str
    """``shallow`` (the top level, exact), ``sentinel`` or ``checkpoint`` (a window)."""
    window: tuple[int, int]


@dataclass(frozen=True, slots=True)
class MutationExact:
    """The per-event deep check's answer: the event whose reduction changed its input."""

    v: int
    path: str | None
    diff: list[dict[str, Any]] | None


@dataclass(frozen=True, slots=True)
class Call:
    """A clock or random source the reducer called (one call site, its first ``v``)."""

    name: str
    file: str
    line: int
    function: str
    v: int
    count: int = 1
    stack: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "file": self.file,
            "line": self.line,
            "function": self.function,
            "v": self.v,
            "count": self.count,
            "stack": list(self.stack),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Call:
        return cls(
            name=str(doc["name"]),
            file=str(doc["file"]),
            line=int(doc["line"]),
            function=str(doc["function"]),
            v=int(doc["v"]),
            count=int(doc.get("count", 1)),
            stack=tuple(doc.get("stack") or ()),
        )


@dataclass(frozen=True, slots=True)
class ReducerException:
    """The reducer raised at ``v`` (the replay stopped there)."""

    v: int
    traceback: str


@dataclass(frozen=True, slots=True)
class Crash:
    """The worker died without a result."""

    returncode: int | None
    stderr: str


@dataclass(frozen=True, slots=True)
class WorkerError:
    """Bad input: the log or the reducer could not be opened (``kind``: ``log``/``reducer``)."""

    kind: str
    message: str


# --------------------------------------------------------------------------- the result

_PARTS: dict[str, type] = {
    "recorded_hash": RecordedMismatch,
    "recorded_snapshot": SnapshotMismatch,
    "unserializable": Unserializable,
    "mutation": Mutation,
    "mutation_exact": MutationExact,
    "exception": ReducerException,
    "crash": Crash,
    "error": WorkerError,
}
_TUPLES = {"window"}


def _part_json(value: Any) -> dict[str, Any]:
    out = {}
    for name in value.__slots__:
        item = getattr(value, name)
        out[name] = list(item) if isinstance(item, tuple) else item
    return out


def _part(cls: type, doc: Mapping[str, Any]) -> Any:
    fields = {
        name: tuple(doc[name]) if name in _TUPLES else doc[name]
        for name in cls.__slots__
        if name in doc
    }
    return cls(**fields)


@dataclass(frozen=True, slots=True)
class RunResult:
    """What one replay saw; every part but the hashes is ``None`` when it did not happen."""

    start_v: int = 0
    """The replay started from the state after this ``v`` (a snapshot, or 0: ``@@INIT``)."""
    last_v: int = 0
    """The log's last event."""
    checkpoints: tuple[HashPoint, ...] = ()
    event_hashes: tuple[HashPoint, ...] = ()
    """Per-event hashes in the requested ranges."""
    states: Mapping[int, Any] = field(default_factory=dict)
    """The states asked for (and those of short windows)."""
    recorded: tuple[HashPoint, ...] = ()
    """The hashes the log recorded in ``recorded_between``."""
    recorded_hash: RecordedMismatch | None = None
    recorded_snapshot: SnapshotMismatch | None = None
    unserializable: Unserializable | None = None
    mutation: Mutation | None = None
    mutation_exact: MutationExact | None = None
    calls: tuple[Call, ...] = ()
    exception: ReducerException | None = None
    crash: Crash | None = None
    error: WorkerError | None = None

    @property
    def hashes(self) -> dict[int, str | None]:
        """Every hash this run sent, checkpoints and per-event, by ``v``."""
        out = {p.v: p.hash for p in self.checkpoints}
        out.update((p.v, p.hash) for p in self.event_hashes)
        return out

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "start_v": self.start_v,
            "last_v": self.last_v,
            "checkpoints": [p.to_json() for p in self.checkpoints],
            "event_hashes": [p.to_json() for p in self.event_hashes],
            "states": {str(v): s for v, s in self.states.items()},
            "recorded": [p.to_json() for p in self.recorded],
            "calls": [c.to_json() for c in self.calls],
        }
        for name in _PARTS:
            value = getattr(self, name)
            if value is not None:
                out[name] = _part_json(value)
        return out

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> RunResult:
        parts = {name: _part(kind, doc[name]) for name, kind in _PARTS.items() if doc.get(name)}
        return cls(
            start_v=int(doc.get("start_v") or 0),
            last_v=int(doc.get("last_v") or 0),
            checkpoints=tuple(HashPoint.from_json(r) for r in doc.get("checkpoints") or ()),
            event_hashes=tuple(HashPoint.from_json(r) for r in doc.get("event_hashes") or ()),
            states={int(v): s for v, s in (doc.get("states") or {}).items()},
            recorded=tuple(HashPoint.from_json(r) for r in doc.get("recorded") or ()),
            calls=tuple(Call.from_json(c) for c in doc.get("calls") or ()),
            **parts,
        )
