"""Diff speed: replayer.diff.diff against jsonpatch.make_patch, same states, same run.

Two states of 100,000 leaves (sales orders) where 1% of the leaves changed, in two shapes:

* ``shared``: the new state shares every unchanged subtree with the old one, as a reducer
  that never mutates produces it (what ``rdt diff`` sees);
* ``copied``: the new state is a full deep copy (nothing shared; equality checks only).

Every patch is checked: ``jsonpatch.apply_patch(old, patch) == new``. Exits 1 when the ratio
of the ``shared`` shape (the one the product diffs) is below the bar (20×); the ``copied``
shape is reported for information.

Usage: python bench/diff.py [--leaves N] [--changed 0.01] [--repeat 5]
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import statistics
import sys
import time

import jsonpatch

from replayer.diff import diff

BAR = 20.0
LEAVES_PER_ORDER = 10  # customer, status, total, 2 lines × (sku, qty, price), note


def make_state(leaves: int) -> dict:
    orders = {}
    for i in range(leaves // LEAVES_PER_ORDER):
        orders[f"o{i}"] = {
            "customer": f"customer-{i % 97}",
            "status": "open",
            "total": i * 3,
            "note": "",
            "lines": [
                {"sku": f"sku-{i % 13}", "qty": 1 + i % 4, "price": 100 + i % 50},
                {"sku": f"sku-{i % 7}", "qty": 2, "price": 250},
            ],
        }
    return {"orders": orders, "next_id": leaves // LEAVES_PER_ORDER}


def change_shared(state: dict, fraction: float, rng: random.Random) -> dict:
    """Change ``fraction`` of the leaves the way a reducer would: copy the path, share the rest."""
    ids = list(state["orders"])
    orders = dict(state["orders"])
    count = int(len(ids) * LEAVES_PER_ORDER * fraction)
    for oid in rng.sample(ids, count):
        order = dict(orders[oid])
        order["total"] = -order["total"] - 1
        orders[oid] = order
    return {**state, "orders": orders}


def change_copied(state: dict, fraction: float, rng: random.Random) -> dict:
    new = copy.deepcopy(state)
    ids = list(new["orders"])
    count = int(len(ids) * LEAVES_PER_ORDER * fraction)
    for oid in rng.sample(ids, count):
        new["orders"][oid]["lines"][1]["qty"] += 1
    return new


def best_of(func, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaves", type=int, default=100_000)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(42)
    old = make_state(args.leaves)
    ok = True
    print(f"states: {args.leaves:,} leaves, {args.changed:.0%} changed, median of {args.repeat}")
    for shape, make in (("shared", change_shared), ("copied", change_copied)):
        new = make(old, args.changed, rng)
        ours = diff(old, new)
        theirs = jsonpatch.make_patch(old, new).patch
        for name, patch in (("replayer.diff", ours), ("jsonpatch", theirs)):
            result = jsonpatch.apply_patch(old, patch)
            if json.dumps(result, sort_keys=True) != json.dumps(new, sort_keys=True):
                print(f"{shape}: {name} patch does not turn old into new", file=sys.stderr)
                return 1
        t_ours = best_of(lambda new=new: diff(old, new), args.repeat)
        t_theirs = best_of(lambda new=new: jsonpatch.make_patch(old, new), args.repeat)
        ratio = t_theirs / t_ours
        if shape == "shared":
            ok &= ratio >= BAR
        print(
            f"{shape:7} replayer.diff {t_ours * 1000:8.2f} ms ({len(ours)} ops)   "
            f"jsonpatch.make_patch {t_theirs * 1000:8.2f} ms ({len(theirs)} ops)   "
            f"ratio {ratio:6.1f}x"
            + (
                f"  (bar {BAR:.0f}x: {'ok' if ratio >= BAR else 'BELOW'})"
                if shape == "shared"
                else ""
            )
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
