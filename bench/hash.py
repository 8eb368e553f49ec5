"""Benchmark: state hash (canonical JSON + SHA-256) against orjson and the rfc8785 package.

Builds a 100,000-leaf state (nested dicts and lists of ints, strings, a few floats, booleans and
None), checks that ``canonical_bytes`` is byte-identical to ``rfc8785.dumps`` on it, and times:

* ``state_hash(state)`` (devtools.canonical),
* ``orjson.dumps(state, option=OPT_SORT_KEYS)`` + SHA-256 (the baseline), and
* ``rfc8785.dumps(state)`` + SHA-256 (the reference implementation).

Exits 1 when the bytes differ or ``state_hash`` takes more than 3× the baseline (DESIGN.md §5).

Run: ``.venv/bin/python bench/hash.py [--leaves N] [--repeat R]``
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson
import rfc8785

from devtools.canonical import canonical_bytes, state_hash

BAR = 3.0


def build_state(leaves: int = 100_000, seed: int = 0, *, ns: bool = True) -> dict[str, Any]:
    """A sales-order-like state with exactly ``leaves`` scalar leaves (about 1% floats).

    With ``ns`` the orders carry nanosecond timestamps (beyond 2**53, so outside ``rfc8785``'s
    domain); without, millisecond ones (the same shape, inside it).
    """
    rng = random.Random(seed)
    statuses = ["draft", "submitted", "cancelled", "shipped"]
    orders: dict[str, Any] = {}
    state: dict[str, Any] = {"orders": orders, "version": 1, "meta": {"name": "bench", "ok": True}}
    count = 3  # version, meta.name, meta.ok
    index = 0
    while count < leaves:
        lines = [
            {
                "sku": f"SKU-{rng.randrange(10_000):05d}",
                "qty": rng.randrange(1, 50),
                "price_cents": rng.randrange(100, 100_000),
            }
            for _ in range(rng.randrange(1, 6))
        ]
        order: dict[str, Any] = {
            "id": f"o{index}",
            "customer": rng.choice(["ACME", "Globex", "Initech", "Umbrella", "Ünïcødé Ltd"]),
            "status": rng.choice(statuses),
            "open": rng.random() < 0.5,
            "note": None,
            "created": (1_795_420_800_000_000_000 if ns else 1_795_420_800_000) + index,
            "tags": [rng.choice(["a", "b", "c"]) for _ in range(rng.randrange(0, 3))],
            "lines": lines,
        }
        if index % 4 == 0:
            order["discount"] = round(rng.random(), 3)
        order_leaves = 6 + len(order["tags"]) + 3 * len(lines) + (index % 4 == 0)
        if count + order_leaves > leaves:
            break
        orders[f"o{index}"] = order
        count += order_leaves
        index += 1
    state["padding"] = list(range(leaves - count))
    return state


def count_leaves(value: Any) -> int:
    if isinstance(value, dict):
        return sum(count_leaves(v) for v in value.values())
    if isinstance(value, list):
        return sum(count_leaves(v) for v in value)
    return 1


def count_floats(value: Any) -> int:
    if isinstance(value, dict):
        return sum(count_floats(v) for v in value.values())
    if isinstance(value, list):
        return sum(count_floats(v) for v in value)
    return isinstance(value, float)


def timed(funcs: list[Callable[[], Any]], repeat: int) -> list[float]:
    """Median seconds of ``repeat`` runs of each function, interleaved so that load from other
    processes falls on all of them alike (after one warm-up each)."""
    runs: list[list[float]] = [[] for _ in funcs]
    for func in funcs:
        func()
    for _ in range(repeat):
        for func, times in zip(funcs, runs, strict=True):
            start = time.perf_counter()
            func()
            times.append(time.perf_counter() - start)
    return [statistics.median(times) for times in runs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaves", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=31)
    args = parser.parse_args(argv)

    state = build_state(args.leaves)
    leaves, floats = count_leaves(state), count_floats(state)
    print(
        f"state: {leaves:,} leaves ({floats:,} floats, ns timestamps beyond 2**53),"
        f" canonical form {len(canonical_bytes(state)):,} bytes"
    )
    # rfc8785 refuses integers beyond 2**53: compare on the same state with ms timestamps.
    in_domain = build_state(args.leaves, ns=False)
    identical = canonical_bytes(in_domain) == rfc8785.dumps(in_domain)
    print(f"byte-identical to rfc8785 (ms-timestamp variant): {'yes' if identical else 'NO'}")

    def baseline() -> str:
        data = orjson.dumps(state, option=orjson.OPT_SORT_KEYS)
        return "sha256:" + hashlib.sha256(data).hexdigest()

    def reference_hash() -> str:  # on the ms variant: the same shape and size
        return "sha256:" + hashlib.sha256(rfc8785.dumps(in_domain)).hexdigest()

    t_base, t_ours = timed([baseline, lambda: state_hash(state)], args.repeat)
    (t_ref,) = timed([reference_hash], max(1, args.repeat // 5))
    ratio = t_ours / t_base
    print(f"orjson.dumps(OPT_SORT_KEYS) + sha256 : {t_base * 1e3:8.2f} ms  (baseline)")
    print(f"state_hash                           : {t_ours * 1e3:8.2f} ms  ({ratio:.2f}x baseline)")
    print(
        f"rfc8785.dumps + sha256               : {t_ref * 1e3:8.2f} ms"
        f"  ({t_ref / t_base:.1f}x baseline, {t_ref / t_ours:.1f}x state_hash)"
    )
    passed = identical and ratio <= BAR
    print(
        f"bar: state_hash <= {BAR:.0f}x baseline and byte-identical: {'PASS' if passed else 'FAIL'}"
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
