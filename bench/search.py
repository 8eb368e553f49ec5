"""Search speed: one `rdt search` pass against one replay of the same log, same run.

Generates the replay benchmark's order log of N events (default 1,000,000; `bench/replay.py`'s
generator), then in interleaved rounds (alternating which goes first) times:

* one replay: ``Replay.build()`` from no checkpoints (the first pass, which is the replay a
  search is compared with: it also folds every event once);
* one search pass (``replayer.search.search``) for ``--path /orders/o7/total``, for
  ``--where "state['refunds_negative'] > 0"`` and for ``--grep '"customer": "ACME"'``, each on
  a reopened replay with no checkpoints.

Prints each probe's median ratio of CPU seconds (search / replay) and exits 1 when a ratio is
above the bar (1.3×).

``--js N`` also times, for orientation (not judged), the same passes over the first N events
with the JavaScript twin of the reducer (``bench/orders.mjs``, one Node worker), in wall time
(the reductions run in Node): a JS search receives every state from the worker, which a JS
replay does not.

Usage: python bench/search.py [--events N] [--rounds 3] [--js N]
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from orders import reducer  # bench/orders.py (this folder is on sys.path)
from replay import generate  # bench/replay.py

from replayer.engine import Replay
from replayer.search import GrepProbe, PathProbe, WhereProbe, search

BAR = 1.3
JS_REDUCER = f"{Path(__file__).resolve().parent / 'orders.mjs'}:reducer"


def _fresh(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM checkpoints")
    conn.close()


def replay_pass(path: Path, ref=reducer, to_v=None) -> tuple[float, float]:
    _fresh(path)
    wall, cpu = time.perf_counter(), time.process_time()
    with Replay.open(path, reducer=ref, persist_after=0) as replay:
        if to_v is None:
            replay.build()
        else:
            replay.state_at(to_v)  # the same fold, over events 1..to_v
    return time.perf_counter() - wall, time.process_time() - cpu


def search_pass(path: Path, watch, ref=reducer, to_v=None) -> tuple[float, float, int]:
    _fresh(path)
    wall, cpu = time.perf_counter(), time.process_time()
    with Replay.open(path, reducer=ref, persist_after=0) as replay:
        found = sum(1 for _ in search(replay, watch, to_v=to_v))
    return time.perf_counter() - wall, time.process_time() - cpu, found


def js_rounds(path: Path, probes: dict, rounds: int, to_v: int) -> None:
    """The same passes with the JavaScript reducer over events 1..to_v, wall time."""
    walls: dict[str, list[float]] = {name: [] for name in probes}
    for i in range(rounds):
        base = replay_pass(path, JS_REDUCER, to_v)[0]
        line = f"  JS round {i + 1}: replay {base:.2f} s"
        for name, watch in probes.items():
            wall, _cpu, found = search_pass(path, watch, JS_REDUCER, to_v)
            walls[name].append(wall / base)
            line += f"; {name.split()[0]} {wall:.2f} s ({found} changes)"
        print(line, flush=True)
    for name, values in walls.items():
        print(
            f"JS search {name}, {to_v:,} events: {statistics.median(values):.2f}x one JS replay "
            f"(wall, median of {rounds}; rounds {' '.join(f'{r:.2f}' for r in values)})"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--js", type=int, default=0, metavar="N", help="also JS, N events")
    args = parser.parse_args()
    n = args.events
    probes = {
        "path /orders/o7/total": PathProbe.parse("/orders/o7/total"),
        "where refunds_negative > 0": WhereProbe.parse("state['refunds_negative'] > 0"),
        'grep "customer": "ACME"': GrepProbe.parse('"customer": "ACME"'),
    }
    folder = Path(tempfile.mkdtemp(prefix="rdt-bench-search-"))
    ok = True
    try:
        path = folder / "bench.rdtlog"
        started = time.perf_counter()
        generate(path, n, int(n * 0.737))
        print(f"generated {n:,} events in {time.perf_counter() - started:.1f} s")
        ratios: dict[str, list[float]] = {name: [] for name in probes}
        for i in range(args.rounds):
            order = list(probes.items())
            if i % 2:
                order.reverse()
            base = replay_pass(path)
            line = f"  round {i + 1}: replay {base[0]:.2f} s ({base[1]:.2f} s CPU)"
            for name, watch in order:
                wall, cpu, found = search_pass(path, watch)
                ratios[name].append(cpu / base[1])
                line += f"; {name.split()[0]} {wall:.2f} s ({cpu:.2f} CPU, {found} changes)"
            print(line)
        for name, values in ratios.items():
            median = statistics.median(values)
            verdict = "ok" if median <= BAR else "ABOVE"
            ok &= median <= BAR
            print(
                f"search {name}: {median:.2f}x one replay (CPU, median of {args.rounds}; "
                f"rounds {' '.join(f'{r:.2f}' for r in values)}) (bar {BAR}x: {verdict})"
            )
        if args.js:
            js_rounds(path, probes, args.rounds, min(args.js, n))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
