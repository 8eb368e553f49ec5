"""`rdt verify`: is the reducer deterministic on this log, and does it match production?

For one log, :func:`verify_log` is a loop between two parts:

- :class:`replayer.verify_plan.VerifyPlanner` decides, without I/O: which replays to run, and
  from their results the next ones and at the end the findings (its docstring says how);
- :class:`replayer.verify_pool.PoolExecutor` runs a round of requests at once in worker
  processes (:mod:`replayer.verify_runner`, forked from one server per ``PYTHONHASHSEED`` that
  :mod:`replayer.verify_pool` keeps).

The runs: the first is fresh with ``PYTHONHASHSEED=1`` and compares what the log recorded
(hashes, snapshots); the others have seeds 2, 3 … and first warm the reducer up on K events,
so state a module carries across calls shows. The headline, ``first_divergent_v``: where the
log recorded hashes or snapshots and a fresh replay disagrees with them, the first such ``v``;
otherwise the earliest finding. Divergences seen only between runs are ``hash-divergence``
findings with their own ``v`` and ``extra["cause"]``: ``hidden-state`` (a warmed-up run
differs from a fresh one with the same seed) or ``hash-seed`` (fresh runs with different seeds
differ).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from devtools.model import REDACTED
from replayer.diff import split_pointer
from replayer.findings import Finding, LogResult
from replayer.loader import is_js_ref
from replayer.verify_messages import RunConfig, Subject
from replayer.verify_plan import VerifyPlanner, WorkerEvidence, first_mismatch, recorded_window
from replayer.verify_pool import PoolExecutor, run_workers

__all__ = [
    "VerifyOptions",
    "first_mismatch",
    "recorded_window",
    "redacted_paths",
    "run_workers",
    "with_redaction_notes",
    "verify_log",
    "worker_evidence",
    "verify_logs",
]


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
    allow_empty: bool = False
    """A recording with no events is ok (with a note) instead of bad input."""

    def seed_list(self) -> list[int]:
        if self.seeds:
            return list(self.seeds)
        return list(range(1, max(self.runs, 1) + 1))

    def run_configs(self, language: str = "python") -> list[RunConfig]:
        """The first run fresh, the others warmed up on K events; one seed each.

        For a JavaScript reducer the seed only numbers the Node process.
        """
        K = max(self.checkpoint_every, 1)
        label = "Node process {}" if language == "javascript" else "PYTHONHASHSEED={}"
        return [
            RunConfig(seed, 0 if i == 0 else K, label.format(seed))
            for i, seed in enumerate(self.seed_list())
        ]


EMPTY_NOTE = "no events: nothing verified (--allow-empty)"


def verify_log(log: str, reducer: str, options: VerifyOptions | None = None) -> LogResult:
    """Verify one log; bad input raises, problems found are findings.

    Raises:
        LogError: the log cannot be opened or read, or has no such recording.
        ReducerLoadError: the reducer cannot be imported.
    """
    from devtools.store import Log
    from replayer.source import open_source
    from replayer.verify_js import JsExecutor

    options = options or VerifyOptions()
    with Log.open(log) as opened:
        reader = opened.reader(options.recording)
        source = open_source(reader, "auto", allow_empty=options.allow_empty)
        if source.last_v is None:
            return LogResult(log, info={"events": 0, "note": EMPTY_NOTE})

        def event_at(v: int) -> Any:
            return source.event(v)

        js = is_js_ref(reducer)
        planner = VerifyPlanner(
            options.run_configs("javascript" if js else "python"),
            checkpoint_every=options.checkpoint_every,
            log=log,
            event_at=event_at,
            workers=worker_evidence(reader),
        )
        subject = Subject(log, reader.recording.id, reducer)
        executor = JsExecutor(subject) if js else PoolExecutor(subject)
        requests = planner.start()
        while requests:
            requests = planner.feed(executor.run(requests))
        return with_redaction_notes(planner.result(), reader.recording.server)


def worker_evidence(reader: Any) -> list[WorkerEvidence]:
    """The disagreements between the workers of a recording of several (none otherwise), by the
    rule of :mod:`devtools.workers`, with each side's first snapshot at or after them."""
    from devtools.workers import disagreements

    workers = tuple(reader.workers())
    if len(workers) < 2:
        return []
    snapshots = reader.worker_snapshots()

    def first_at(worker: int | None, v: int) -> Any:
        return next((s for s in snapshots if s.worker == worker and s.v >= v), None)

    out = []
    for found in disagreements(reader.worker_hashes()):
        stored = reader.event(found.v) if found.kind == "event" else None
        out.append(
            WorkerEvidence(
                disagreement=found,
                workers=workers,
                snapshot=first_at(found.worker, found.v),
                reference_snapshot=first_at(found.reference, found.v),
                event=stored.event if stored is not None else None,
            )
        )
    return out


def verify_logs(
    logs: Sequence[str], reducer: str, options: VerifyOptions | None = None
) -> list[LogResult]:
    """:func:`verify_log` for each log in turn.

    Raises:
        RdtError: the first log or reducer that cannot be replayed.
    """
    return [verify_log(log, reducer, options) for log in logs]


def redacted_paths(diff: Sequence[dict[str, Any]] | None, pointers: Sequence[str]) -> list[str]:
    """The paths of ``diff`` (RFC 6902 ops) that lie at or under a redacted field.

    A ``--redact`` pointer matches at any depth (``/customer`` covers ``/orders/o1/customer``
    and everything under it), as the recorder applied it.
    """
    patterns = [split_pointer(p) for p in pointers if p.startswith("/") and p != "/"]
    hits: list[str] = []
    for op in diff or ():
        path = op.get("path")
        if not isinstance(path, str):
            continue
        tokens = split_pointer(path)
        for pattern in patterns:
            n = len(pattern)
            if any(tuple(tokens[i : i + n]) == tuple(pattern) for i in range(len(tokens) - n + 1)):
                hits.append(path)
                break
    return hits


def with_redaction_notes(result: LogResult, server: dict[str, Any] | None) -> LogResult:
    """A failed result on a recording made with ``--redact``: every finding says which paths
    were redacted (and which of its diff's paths lie under them), ``info["redacted"]`` lists
    the pointers. Other results are returned unchanged."""
    pointers = (server or {}).get(REDACTED)
    if result.ok or not isinstance(pointers, list) or not pointers:
        return result
    pointers = [str(p) for p in pointers]
    named = ", ".join(pointers)

    def noted(finding: Finding) -> Finding:
        hits = redacted_paths(finding.diff, pointers)
        note = (
            f"recorded with --redact {named}: those fields (at any depth) were removed from "
            "every stored message, event and snapshot, so a replay never sees them"
        )
        if hits:
            shown = ", ".join(hits[:5]) + (" …" if len(hits) > 5 else "")
            note += f"; this diff touches redacted paths: {shown}"
        note = f"{finding.note}; {note}" if finding.note else note
        extra = {**finding.extra, "redacted": pointers, "redacted_paths": hits}
        return replace(finding, note=note, extra=extra)

    info = {**result.info, "redacted": pointers}
    headline = noted(result.headline) if result.headline is not None else None
    findings = tuple(
        headline if headline is not None and f is result.headline else noted(f)
        for f in result.findings
    )
    return replace(result, findings=findings, info=info, headline=headline)
