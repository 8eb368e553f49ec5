"""The verify worker: one replay of one log in its own process, reporting hashes and guard hits.

Run as ``python -m replayer.verify_runner RESULT_FILE`` with a JSON request on stdin (built by
:func:`replayer.verify.run_workers`); writes one JSON result to ``RESULT_FILE`` (never to
stdout, which belongs to the reducer's prints). The parent sets ``PYTHONHASHSEED``.

The request (all but ``log`` and ``reducer`` optional)::

    {"log", "recording", "reducer", "checkpoint_every": K, "warmup": N,
     "compare_recorded": bool, "hash_ranges": [[lo, hi], …], "keep_states": [v, …],
     "mutation_scan_to": v, "stop_at": v}

The main pass replays every event once: the canonical state hash at ``v = 0`` (the initial
state), every ``K`` events and at the end; guards around each reducer call (clock and
randomness calls, a top-level identity check of the input state, at each checkpoint a re-hash
of the previous checkpoint's state, which a mutating reducer changes, and in between the same
check on sampled "sentinel" states, as often as half the reducer's own time pays for); with
``compare_recorded`` the recorded snapshots and, at most every ``K`` events, the recorded event
hashes. ``warmup`` first runs the reducer over the first N events and throws the results away,
so a reducer that carries module-level state across calls starts the real pass in a different
condition than a fresh process. Localising requests ask for per-event hashes in ranges, states
at given ``v``, or a per-event deep mutation check up to ``v``; the parent then compares runs.
"""

from __future__ import annotations

import itertools
import math
import os
import sys
import time
import traceback
from collections.abc import Iterator
from typing import Any

from devtools.canonical import CanonicalError, canonical_bytes
from devtools.errors import RdtError
from devtools.jsonutil import dumps, loads
from replayer.source import chunks, open_source

_clock = time.perf_counter  # bound before the guard replaces the module attribute

INIT_EVENT = {"type": "@@INIT"}
SENTINEL_SHARE = 0.5
"""Deep mutation checks between checkpoints may cost up to this share of the reducer's time."""
WINDOW_STATES_MAX = 64
"""Windows up to this many events send their states along with their hashes."""


def _sha(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


def _hash(state: Any) -> tuple[str | None, dict[str, str] | None]:
    h, bad, _ = _hash_bytes(state)
    return h, bad


def _hash_bytes(state: Any) -> tuple[str | None, dict[str, str] | None, bytes | None]:
    try:
        data = canonical_bytes(state)
    except CanonicalError as error:
        return None, {"pointer": error.pointer, "problem": error.problem}, None
    except RecursionError:
        return None, {"pointer": "", "problem": "nested too deeply (or circular)"}, None
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


CADENCE_SAMPLE = 2000
"""Events read at the start to learn how often the server recorded a state hash."""


def _recorded_cadence(
    reader: Any, source: Any, base_v: int, last_v: int, wanted: bool
) -> tuple[int, int]:
    """``(every, offset)``: the recorded hashes seen at the start sit at ``v % every == offset``.

    Recorded hashes are then looked up one event at a time, about once every K events, instead
    of decoding every event row. ``(0, 0)`` when fewer than two were seen (then only the
    checkpoints and the last event are looked up).
    """
    if not wanted or source.kind != "events" or base_v >= last_v:
        return 0, 0
    hashed = [
        e.v for e in reader.events(base_v + 1, min(last_v, base_v + CADENCE_SAMPLE)) if e.hash
    ]
    if len(hashed) < 2:
        return 0, 0
    every = 0
    for a, b in itertools.pairwise(hashed):
        every = math.gcd(every, b - a)
    return every, hashed[0] % every


def run(request: dict[str, Any]) -> dict[str, Any]:
    """Carry out one request in this process (guards installed here); return the result."""
    from devtools.store import Log
    from replayer.guards import CallGuard, shallow_changed, shallow_fingerprint

    result: dict[str, Any] = {"seed": os.environ.get("PYTHONHASHSEED")}
    try:
        log = Log.open(request["log"])
        reader = log.reader(request.get("recording"))
        source = open_source(reader, "auto")
    except RdtError as error:
        return {**result, "error": {"kind": "log", "message": str(error)}}

    guard = CallGuard()
    guard.install()
    from replayer.loader import load_reducer

    before = set(sys.modules)
    try:
        reducer = load_reducer(request["reducer"])
    except RdtError as error:
        return {**result, "error": {"kind": "reducer", "message": str(error)}}
    fresh = [sys.modules[name] for name in set(sys.modules) - before if name in sys.modules]
    owner = sys.modules.get(getattr(reducer, "__module__", "") or "")
    guard.rebind(fresh + ([owner] if owner is not None else []))

    K = max(int(request.get("checkpoint_every") or 1000), 1)
    stop_at = request.get("stop_at")
    compare_recorded = bool(request.get("compare_recorded"))
    hash_ranges = [tuple(r) for r in request.get("hash_ranges") or ()]
    keep_states = set(request.get("keep_states") or ())
    scan_to = request.get("mutation_scan_to")

    # ---- the starting state, as the replay engine picks it
    start_v = 0
    start_state: Any = None
    if source.kind == "events" and source.first_v is not None:
        snap = reader.snapshot_at_or_before(source.first_v)
        if snap is not None:
            start_v, start_state = snap.v, snap.state
    last_v = max(source.last_v or 0, start_v)
    result["start_v"] = start_v
    result["last_v"] = last_v

    # ---- snapshots the server recorded (compared by run 0)
    snapshots: dict[int, Any] = {}
    if compare_recorded:
        for snap in reader.snapshots():
            if snap.v > start_v:
                snapshots[snap.v] = snap

    def initial() -> Any:
        if start_v:
            return loads(dumps(start_state))
        return reducer(None, dict(INIT_EVENT))

    # ---- warm-up: exercise the reducer, results thrown away
    warm = int(request.get("warmup") or 0)
    if warm:
        try:
            state = initial()
            for _v, event in _events(reader, source, start_v, min(last_v, start_v + warm)):
                state = reducer(state, event)
        except Exception:  # noqa: BLE001 - the real pass reports it
            pass

    checkpoints: list[list[Any]] = []
    event_hashes: list[list[Any]] = []
    states: dict[str, Any] = {}
    result.update(checkpoints=checkpoints, event_hashes=event_hashes, states=states)

    try:
        guard.v = start_v
        try:
            state = initial()
        finally:
            guard.v = None
    except Exception as error:  # noqa: BLE001 - the user's reducer
        result["exception"] = {"v": start_v, "traceback": _format_exception(error)}
        result["calls"] = [s.to_json() for s in guard.found()]
        return result

    def in_ranges(v: int) -> bool:
        return any(lo < v <= hi for lo, hi in hash_ranges)

    # small windows also send their states, which saves the parent a round of workers
    if request.get("window_states"):
        for lo, hi in hash_ranges:
            if hi - lo <= WINDOW_STATES_MAX:
                keep_states.update(range(lo, hi + 1))

    h0, bad0, data0 = _hash_bytes(state)
    checkpoints.append([start_v, h0])
    if bad0 is not None:
        result["unserializable"] = {"v": start_v, **bad0, "window": [start_v, start_v]}
    if start_v in keep_states and data0 is not None:
        states[str(start_v)] = loads(data0)
    if compare_recorded and start_v in snapshots:
        _compare_snapshot(result, snapshots[start_v], state, h0, start_v)
    ck_state, ck_hash, ck_v = state, h0, start_v
    recorded_match = start_v if compare_recorded and source.kind == "events" else None
    next_due = start_v + K
    mutation: dict[str, Any] | None = None
    scanning = scan_to is not None
    budget = 0.0
    sentinel: Any = None
    sentinel_hash: str | None = None
    sentinel_v = start_v
    rec_every, rec_offset = _recorded_cadence(reader, source, start_v, last_v, compare_recorded)
    for v, event in _events(reader, source, start_v, last_v):
        if stop_at is not None and v > stop_at:
            break
        fingerprint = shallow_fingerprint(state) if mutation is None else None
        if scanning and v <= scan_to:
            try:
                before_bytes: bytes | None = canonical_bytes(state)
            except (CanonicalError, RecursionError):
                before_bytes = None
        else:
            before_bytes = None
        guard.v = v
        began = _clock()
        try:
            new = reducer(state, event)
        except Exception as error:  # noqa: BLE001 - the user's reducer
            guard.v = None
            result["exception"] = {"v": v, "traceback": _format_exception(error)}
            break
        guard.v = None
        budget += (_clock() - began) * SENTINEL_SHARE
        if budget > 0 and mutation is None:
            # Re-hash the kept sentinel state (a mutation since it was taken shows), then keep
            # this event's input as the next one; both cost one hash each.
            began = _clock()
            if sentinel_hash is not None and _hash(sentinel)[0] != sentinel_hash:
                mutation = {"v": v, "how": "sentinel", "window": [sentinel_v, v]}
            sentinel, sentinel_v = new, v
            sentinel_hash = _hash(new)[0]
            budget -= _clock() - began
        if before_bytes is not None:
            try:
                after_bytes = canonical_bytes(state)
            except (CanonicalError, RecursionError):
                after_bytes = before_bytes
            if after_bytes != before_bytes:
                from replayer.guards import mutation_path

                path, patch = mutation_path(loads(before_bytes), loads(after_bytes))
                result["mutation_exact"] = {"v": v, "path": path, "diff": patch}
                scanning = False
        if fingerprint is not None and mutation is None and shallow_changed(state, fingerprint):
            mutation = {"v": v, "how": "shallow", "window": [v - 1, v]}
        state = new

        due = v % K == 0 or v in (last_v, stop_at)
        probe = recorded_match is not None and (
            due or (v >= next_due and rec_every > 0 and v % rec_every == rec_offset)
        )
        ranged = bool(hash_ranges) and in_ranges(v)
        if not (due or probe or ranged or v in keep_states or v in snapshots):
            continue
        h, bad, data = _hash_bytes(state)
        if bad is not None and "unserializable" not in result:
            result["unserializable"] = {"v": v, **bad, "window": [ck_v, v]}
        if ranged:
            event_hashes.append([v, h, bad])
        if v in keep_states and data is not None:
            states[str(v)] = loads(data)
        if compare_recorded and v in snapshots:
            _compare_snapshot(result, snapshots[v], state, h, v)
        if probe:
            row = reader.event(v)
            recorded = row.hash if row is not None else None
            if recorded is not None:
                next_due = v + K
                if h == recorded:
                    recorded_match = v
                elif h is not None:
                    result["recorded_hash"] = {"match_v": recorded_match, "mismatch_v": v}
                    recorded_match = None
        if due:
            checkpoints.append([v, h])
            if mutation is None and ck_hash is not None and _hash(ck_state)[0] != ck_hash:
                mutation = {"v": v, "how": "checkpoint", "window": [ck_v, v]}
            ck_state, ck_hash, ck_v = state, h, v

    if mutation is None and ck_hash is not None and _hash(ck_state)[0] != ck_hash:
        mutation = {"v": ck_v, "how": "checkpoint", "window": [ck_v, last_v]}
    if mutation is None and sentinel_hash is not None and _hash(sentinel)[0] != sentinel_hash:
        mutation = {"v": sentinel_v, "how": "sentinel", "window": [sentinel_v, last_v]}
    if mutation is not None:
        result["mutation"] = mutation
    result["calls"] = [s.to_json() for s in guard.found()]
    return result


def _compare_snapshot(result: dict[str, Any], snap: Any, state: Any, h: str | None, v: int) -> None:
    if "recorded_snapshot" in result or h is None:
        return
    recorded_hash, _ = _hash(snap.state)
    if recorded_hash == h:
        result.setdefault("snapshot_matches", []).append(v)
        return
    from replayer.diff import diff

    result["recorded_snapshot"] = {
        "v": v,
        "diff": diff(snap.state, state),
        "recorded_hash": snap.hash,
        "last_match": (result.get("snapshot_matches") or [None])[-1],
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m replayer.verify_runner RESULT_FILE < request.json", file=sys.stderr)
        return 2
    request = loads(sys.stdin.buffer.read())
    try:
        result = run(request)
    except RdtError as error:
        result = {"error": {"kind": "log", "message": str(error)}}
    data = dumps(result)
    with open(args[0], "wb") as handle:
        handle.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
