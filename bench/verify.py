"""`rdt verify` cost against one plain replay of the same log, measured in the same run.

Generates a sales-order-like log of N events (default 1,000,000; bounded state: submitted
orders fold into totals) in a temporary SQLite file with the store's writer, with a recorded
state hash every ``--hash-every`` events (as a server would send them), then measures:

* one plain replay: the store's ``event_payloads`` + ``orjson.loads`` + the reducer, in this
  process (the hand-written loop the replay bar is measured against);
* ``verify_log`` with the default 2 runs (two worker processes in parallel, checkpoint hashes
  every K, recorded-hash comparison, the guards).

Each of ``--repeat`` rounds times one plain replay and then one verify (its worker servers
started and stopped inside the timing, as a fresh ``rdt verify`` does), so both see the same
machine; prints every round, the load average, and the median ratio with its spread; exits 1
when the median verify takes more than 3x the plain replay.

Usage: python bench/verify.py [--events N] [--every K] [--hash-every H] [--repeat R]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson
from orders import T0, reducer  # bench/orders.py (this folder is on sys.path)

BAR = 3.0


def events(n: int):
    """``(v, event)`` of a stream of orders: created, 3 lines, submitted."""
    v = 0
    order = 0
    while v < n:
        order += 1
        oid = f"o{order}"
        batch = [{"type": "order/created", "id": oid, "customer": f"c{order % 97}"}]
        for line in range(3):
            batch.append(
                {
                    "type": "order/line-added",
                    "order": oid,
                    "sku": f"sku-{(order + line) % 50}",
                    "qty": line + 1,
                    "price": 100 + order % 900,
                }
            )
        batch.append({"type": "order/submitted", "order": oid})
        for body in batch:
            v += 1
            if v > n:
                return
            yield v, {**body, "v": v, "ts": T0 + v * 1000, "sender": f"c{v % 4}"}


def write_log(path: Path, n: int, hash_every: int) -> None:
    from devtools.canonical import state_hash
    from devtools.model import Event
    from devtools.store import Log

    state = reducer(None, {"type": "@@INIT"})
    with Log.open(path, create=True) as log:
        writer = log.writer(name="bench")
        batch = []
        for v, body in events(n):
            state = reducer(state, body)
            h = state_hash(state) if hash_every and v % hash_every == 0 else None
            batch.append(Event(v=v, type=body["type"], event=body, hash=h, t_ns=body["ts"]))
            if len(batch) >= 10_000:
                writer.add_events(batch)
                writer.flush()
                batch = []
        writer.add_events(batch)
        writer.close()


def plain_replay(path: Path) -> float:
    from devtools.store import Log

    started = time.perf_counter()
    with Log.open(path) as log:
        reader = log.reader()
        state = reducer(None, {"type": "@@INIT"})
        loads = orjson.loads
        for _v, payload in reader.event_payloads():
            state = reducer(state, loads(payload))
    return time.perf_counter() - started


def verify_once(path: Path, every: int) -> tuple[float, float, bool, object]:
    """One ``verify_log`` as a fresh ``rdt verify`` runs it (its worker servers start and stop
    inside the timing). Returns the wall time, the workers' CPU time, ok, and the result."""
    from replayer.verify import VerifyOptions, verify_log
    from replayer.verify_pool import shutdown

    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = verify_log(
        str(path),
        f"{Path(__file__).resolve().with_name('orders.py')}:reducer",
        VerifyOptions(checkpoint_every=every),
    )
    shutdown()  # the servers exit, so their CPU time is counted
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = (after.ru_utime + after.ru_stime) - (cpu.ru_utime + cpu.ru_stime)
    return wall, used, result.ok, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--every", type=int, default=1000, help="checkpoint interval K")
    parser.add_argument("--hash-every", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3, help="plain/verify pairs, alternated")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="rdt-bench-verify-") as folder:
        path = Path(folder) / "bench.rdtlog"
        started = time.perf_counter()
        write_log(path, args.events, args.hash_every)
        print(f"log: {args.events:,} events written in {time.perf_counter() - started:.1f} s")
        print(f"load average before: {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores)")
        plains, verifies, ratios = [], [], []
        for n in range(1, args.repeat + 1):
            plain = plain_replay(path)
            wall, cpu, ok, result = verify_once(path, args.every)
            plains.append(plain)
            verifies.append(wall)
            ratios.append(wall / plain)
            print(
                f"#{n}: plain replay {plain:.2f} s ({args.events / plain:,.0f} events/s); "
                f"verify (2 runs) {wall:.2f} s, workers' CPU {cpu:.2f} s, ok={ok}; "
                f"ratio {wall / plain:.2f}x"
            )
            if not ok:
                print(
                    "verify reported findings on a clean reducer:",
                    result.to_json(),
                    file=sys.stderr,
                )
                return 1
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        ratio = statistics.median(ratios)
        print(
            f"plain median {statistics.median(plains):.2f} s, verify median "
            f"{statistics.median(verifies):.2f} s; ratio verify/plain median {ratio:.2f}x "
            f"(min {min(ratios):.2f}x, max {max(ratios):.2f}x; bar: at most {BAR:.1f}x)"
        )
        return 0 if ratio <= BAR else 1


if __name__ == "__main__":
    sys.exit(main())
