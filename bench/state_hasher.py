"""Benchmark: the per-event state hash of a server with a devtools subscriber.

A ``sales-order`` state of ``--orders`` orders takes ``--events`` ``order/line-added`` events
(as ``bench/cluster.py`` sends them: each to an existing order, so the state stays one size);
after each event its state hash is computed by

* ``state_hash`` (devtools.canonical: the whole state written and hashed, the baseline),
* ``StateHasher(fast=False)`` (the incremental hasher's Python walk),
* ``StateHasher(fast=True)`` (its C walk, devtools/_statehash.c, when built),

and, as the floor no hasher of PROTOCOL.md §5's hash can go under, SHA-256 alone over the
state's canonical bytes. Every hasher's hashes are checked against ``state_hash``'s. The
figures are µs per event, medians over ``--rounds`` rounds run one after the other.

Run: ``.venv/bin/python bench/state_hasher.py [--orders 50] [--events 4000] [--rounds 5]``
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools import state_hasher  # noqa: E402
from devtools.canonical import canonical_bytes, state_hash  # noqa: E402
from devtools.state_hasher import StateHasher  # noqa: E402
from samples.sales_order import reducer  # noqa: E402

SKUS = ("A", "B", "C", "D")
T0 = 1_764_600_000_000_000_000


def start(orders: int) -> Any:
    """A state of ``orders`` open orders."""
    state = None
    for i in range(orders):
        event = {"type": "order/created", "id": f"o{i + 1}", "customer": f"C{i}"}
        state = reducer(state, {**event, "ts": T0 + i, "v": i + 1})
    return state


def line_events(orders: int, events: int) -> list[dict[str, Any]]:
    return [
        {
            "type": "order/line-added",
            "order": f"o{i % orders + 1}",
            "sku": SKUS[(i // orders) % len(SKUS)],
            "qty": 1,
            "price": 100,
            "ts": T0 + 1000 * i,
            "v": orders + i + 1,
        }
        for i in range(events)
    ]


def timed(
    hash_of: Callable[[Any], Any], state: Any, events: list[dict[str, Any]]
) -> tuple[float, list[Any]]:
    """µs per event of folding the events and hashing each state (as a server does: only the
    latest state alive), and the hashes."""
    hashes = []
    started = time.perf_counter()
    for event in events:
        state = reducer(state, event)
        hashes.append(hash_of(state))
    return (time.perf_counter() - started) / len(events) * 1e6, hashes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=50)
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    first, events = start(args.orders), line_events(args.orders, args.events)
    # the floor is timed on the canonical bytes of the last 500 states the hashers hash
    blobs = [canonical_bytes(state) for state in timed(lambda s: s, first, events)[1][-500:]]
    size = len(blobs[-1])
    print(
        f"{args.events:,} events on {args.orders} orders "
        f"(state {size:,} canonical bytes), {args.rounds} rounds"
    )
    hashers: dict[str, Callable[[], Callable[[Any], str]]] = {
        "state_hash (whole)": lambda: state_hash,
        "StateHasher, Python walk": lambda: StateHasher(fast=False).hash,
    }
    if state_hasher.FAST:
        hashers["StateHasher, C walk"] = lambda: StateHasher(fast=True).hash
    else:
        print("  (devtools/_statehash.c was not built: no C walk to time)")
    figures: dict[str, list[float]] = {name: [] for name in hashers}
    folds: list[float] = []
    floor: list[float] = []
    expected: list[str] | None = None
    for _ in range(args.rounds):
        folds.append(timed(lambda state: state, first, events)[0])
        for name, make in hashers.items():
            us, hashes = timed(make(), first, events)
            if expected is None:
                expected = hashes
            elif hashes != expected:
                print(f"{name}: its hashes differ from state_hash's", file=sys.stderr)
                return 1
            figures[name].append(us)
        started = time.perf_counter()
        for blob in blobs:
            hashlib.sha256(blob).hexdigest()
        floor.append((time.perf_counter() - started) / len(blobs) * 1e6)
    fold = statistics.median(folds)
    print(f"  (folding alone: {fold:.1f} µs/event, taken off the figures below)")
    base = statistics.median(figures["state_hash (whole)"]) - fold
    for name, values in figures.items():
        us = statistics.median(values) - fold
        print(f"  {name:<26} {us:7.1f} µs/event   {us / base:5.2f}× the whole hash")
    print(f"  {'SHA-256 alone (the floor)':<26} {statistics.median(floor):7.1f} µs/event")
    return 0


if __name__ == "__main__":
    sys.exit(main())
