"""JsWorker fold throughput against a hand-written Node loop, same run (DESIGN §5: >= 0.8x).

N small events (default 1,000,000) like ``{"type": "add", "v": 1, "ts": …, "sender": "c1",
"n": 3}``, a simple reducer (count and sum, a new object per event). Measures, interleaved
over a few rounds:

* the hand loop: one ``node`` process reads the events' JSON lines from a file, and times
  ``JSON.parse`` + the reducer over every line (process start and the file read excluded);
* ``JsWorker.fold_pages`` over pages of 1,000 events held in memory as ``(v, bytes)`` rows,
  with checkpoints every 1,000 events (paced), from the first request to the last reply
  (worker start excluded).

Usage: python bench/jsworker_throughput.py [--events N] [--rounds 3] [--guards]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from replayer.jsworker import JsWorker  # noqa: E402

REDUCER = """
export function reducer(state = { count: 0, total: 0, last: 0 }, event) {
  if (event.type !== 'add') return state;
  return { count: state.count + 1, total: state.total + event.n, last: event.v };
}
"""

HAND_LOOP = """
import { readFileSync } from 'node:fs';
import { reducer } from %s;
const lines = readFileSync(process.argv[2], 'utf8').split('\\n');
lines.pop();
const t0 = performance.now();
let state = reducer(undefined, { type: '@@INIT' });
for (const line of lines) state = reducer(state, JSON.parse(line));
const t1 = performance.now();
console.log(JSON.stringify({ seconds: (t1 - t0) / 1000, count: state.count }));
"""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--guards", action="store_true", help="the worker with verify's guards on")
    args = parser.parse_args()
    n = args.events
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "reducer.mjs").write_text(REDUCER)
        (root / "hand.mjs").write_text(HAND_LOOP % repr(str(root / "reducer.mjs")))
        rows = [
            (v, b'{"type":"add","v":%d,"ts":%d,"sender":"c1","n":%d}' % (v, 10**18 + v, v % 7))
            for v in range(1, n + 1)
        ]
        (root / "events.jsonl").write_bytes(b"".join(p + b"\n" for _, p in rows))
        pages = [rows[i : i + 1000] for i in range(0, n, 1000)]
        ratios = []
        for round_ in range(args.rounds):
            out = subprocess.run(
                ["node", str(root / "hand.mjs"), str(root / "events.jsonl")],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            hand = float(json.loads(out)["seconds"])
            with JsWorker.start(f"{root / 'reducer.mjs'}:reducer", guards=args.guards) as worker:
                worker.init()
                t0 = time.perf_counter()
                checkpoints = 0
                for result in worker.fold_pages(pages, checkpoint_every=1000):
                    checkpoints += len(result.checkpoints)
                ours = time.perf_counter() - t0
            ratio = hand / ours
            ratios.append(ratio)
            print(
                f"round {round_ + 1}: hand loop {n / hand:,.0f} ev/s, "
                f"JsWorker {n / ours:,.0f} ev/s ({checkpoints} checkpoints): {ratio:.2f}x"
            )
        median = statistics.median(ratios)
        print(f"median ratio {median:.2f}x (bar 0.8x)")
        return 0 if median >= 0.8 else 1


if __name__ == "__main__":
    raise SystemExit(main())
