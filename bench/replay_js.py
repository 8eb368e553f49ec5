"""JavaScript replay speed, seek time and verify cost, against a hand-written Node loop, same run.

Generates the same sales-order-like log as ``bench/replay.py`` (default 1,000,000 events) in a
temporary SQLite file, writes the same events' JSON to a file (one per line), then measures:

* rdt's JS replay — ``Replay.build()`` with ``--reducer bench/orders.mjs:reducer``: the store's
  pages of event bytes piped to one Node worker, which reduces them and sends back the paced
  checkpoints, written to the log — against the hand loop ``bench/hand_loop.mjs``: the file read,
  ``JSON.parse`` per line and the same reducer, in one ``node`` process. Interleaved rounds
  (alternating which goes first), wall time; the bar (0.8×) is on the median of the rounds'
  ratios. Both final states must agree;
* the median time of ``state_at(v)`` at random ``v`` after reopening (checkpoints persisted;
  bar: 100 ms);
* ``rdt verify`` of the JS reducer (two Node processes at once, guards on, recorded hashes
  compared) against one JS replay in the same run (bar: at most 3×).

Exits 1 when a bar is missed.

Usage: python bench/replay_js.py [--events N] [--every K] [--seeks 50] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from replay import generate  # bench/replay.py (this folder is on sys.path)

from replayer.engine import Replay
from replayer.verify import VerifyOptions, verify_log

HERE = Path(__file__).resolve().parent
REDUCER = f"{HERE / 'orders.mjs'}:reducer"
BUG_EXPR = "state['refunds_negative'] > 0"


def export_events(path: Path, out: Path) -> None:
    """The events' JSON as recorded, one per line (the hand loop's input)."""
    conn = sqlite3.connect(path)
    with out.open("wb") as handle:
        for (payload,) in conn.execute(
            "SELECT event FROM events WHERE recording_id = 1 ORDER BY v"
        ):
            handle.write(payload)
            handle.write(b"\n")
    conn.close()


def hand_loop(events: Path) -> tuple[float, dict]:
    """The baseline in its own ``node`` process: (seconds, final state)."""
    done = subprocess.run(
        ["node", str(HERE / "hand_loop.mjs"), str(events)],
        capture_output=True,
        check=True,
    )
    doc = json.loads(done.stdout)
    return float(doc["seconds"]), doc["state"]


def replay_pass(path: Path, every: int) -> tuple[float, dict, int]:
    """Time ``Replay.build()`` from a fresh checkpoint table: (seconds, final state, taken)."""
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM checkpoints")
    conn.close()
    started = time.perf_counter()
    with Replay.open(path, reducer=REDUCER, checkpoint_every=every, persist_after=0) as replay:
        replay.build()
        elapsed = time.perf_counter() - started
        final = replay.state_at()
        taken = len(replay.checkpoints)
    return elapsed, final, taken


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--every", type=int, default=1000)
    parser.add_argument("--seeks", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("node") is None:
        print("bench/replay_js.py needs node on PATH", file=sys.stderr)
        return 3
    n = args.events
    bug_at = int(n * 0.737)
    folder = Path(tempfile.mkdtemp(prefix="rdt-bench-js-"))
    ok = True
    try:
        path = folder / "bench.rdtlog"
        events = folder / "events.jsonl"
        started = time.perf_counter()
        generate(path, n, bug_at)
        export_events(path, events)
        print(f"generated {n:,} events in {time.perf_counter() - started:.1f} s")

        hand_runs: list[tuple[float, dict]] = []
        ours_runs: list[tuple[float, dict, int]] = []
        for i in range(args.rounds):
            if i % 2:
                ours_runs.append(replay_pass(path, args.every))
                hand_runs.append(hand_loop(events))
            else:
                hand_runs.append(hand_loop(events))
                ours_runs.append(replay_pass(path, args.every))
            print(
                f"  round {i + 1}: hand {hand_runs[-1][0]:.1f} s, JS replay "
                f"{ours_runs[-1][0]:.1f} s: {hand_runs[-1][0] / ours_runs[-1][0]:.2f}x",
                flush=True,
            )
        if orjson.dumps(hand_runs[0][1], option=orjson.OPT_SORT_KEYS) != orjson.dumps(
            ours_runs[0][1], option=orjson.OPT_SORT_KEYS
        ):
            print("JS replay and the hand Node loop disagree on the final state", file=sys.stderr)
            return 1
        ratios = [h[0] / o[0] for h, o in zip(hand_runs, ours_runs, strict=True)]
        median = statistics.median(ratios)
        hand, ours = min(h[0] for h in hand_runs), min(o[0] for o in ours_runs)
        print("  wall ratio per round: " + " ".join(f"{r:.2f}" for r in ratios))
        print(
            f"JS replay (checkpoints every {args.every}, paced: {ours_runs[0][2]} persisted): "
            f"{n / ours:,.0f} events/s   hand Node loop: {n / hand:,.0f} events/s "
            f"(best of {args.rounds})"
        )
        ok &= median >= 0.8
        print(
            f"JS replay vs hand Node loop: {median:.2f}x, median of {args.rounds} rounds "
            f"(bar 0.8x: {'ok' if median >= 0.8 else 'BELOW'})"
        )

        rng = random.Random(5)
        with Replay.open(path, reducer=REDUCER, checkpoint_every=args.every) as replay:
            loaded = replay.checkpoints.loaded
            seeks = []
            for _ in range(args.seeks):
                v = rng.randrange(1, n + 1)
                t0 = time.perf_counter()
                replay.state_at(v)
                seeks.append(time.perf_counter() - t0)
            seek = statistics.median(seeks)
            ok &= seek < 0.1
            print(
                f"seek after reopen ({loaded:,} persisted checkpoints): median "
                f"{seek * 1000:.1f} ms, max {max(seeks) * 1000:.1f} ms over {args.seeks} "
                f"random v (bar 100 ms: {'ok' if seek < 0.1 else 'BELOW'})"
            )
            t0 = time.perf_counter()
            found = replay.bisect(BUG_EXPR)
            print(
                f"bisect: v={found.v} (planted at {bug_at}) in "
                f"{(time.perf_counter() - t0) * 1000:.0f} ms, {found.checkpoints_touched} "
                f"checkpoints evaluated, {found.reductions} events replayed"
            )
            ok &= found.v == bug_at

        one = replay_pass(path, args.every)[0]
        t0 = time.perf_counter()
        result = verify_log(str(path), REDUCER, VerifyOptions(checkpoint_every=args.every))
        verify = time.perf_counter() - t0
        again = replay_pass(path, args.every)[0]
        base = statistics.mean([one, again])
        ok &= result.ok and verify <= 3 * base
        print(
            f"verify of the JS reducer: {verify:.2f} s ({'ok' if result.ok else 'FINDINGS'}, "
            f"{len(result.findings)} findings) vs one JS replay {base:.2f} s (mean of two "
            f"around it): {verify / base:.2f}x (bar 3x: "
            f"{'ok' if verify <= 3 * base else 'ABOVE'})"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
