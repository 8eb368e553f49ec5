"""`rdt verify` cost against one plain replay of the same log, measured in the same run.

Generates a sales-order-like log of N events (default 1,000,000; bounded state: submitted
orders fold into totals) in a temporary SQLite file with the store's writer, with a recorded
state hash every ``--hash-every`` events (as a server would send them), then measures:

* one plain replay: the store's ``event_payloads`` + ``orjson.loads`` + the reducer, in this
  process (the hand-written loop the replay bar is measured against);
* ``verify_log`` with the default 2 runs (two worker processes in parallel, checkpoint hashes
  every K, recorded-hash comparison, the guards).

Prints both times and the ratio; exits 1 when verify takes more than 3x the plain replay.

Usage: python bench/verify.py [--events N] [--every K] [--hash-every H]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import orjson

T0 = 1_795_420_800_000_000_000
OPEN_ORDERS = 500
BAR = 3.0


def reducer(state, event):
    """A sales-order reducer with bounded state (importable by the verify workers)."""
    if state is None:
        state = {"orders": {}, "submitted": 0, "revenue": 0}
    kind = event["type"]
    if kind == "order/created":
        order = {"customer": event["customer"], "lines": {}, "total": 0}
        return {**state, "orders": {**state["orders"], event["id"]: order}}
    if kind == "order/line-added":
        order = state["orders"][event["order"]]
        line = {"sku": event["sku"], "qty": event["qty"], "price": event["price"]}
        order = {
            **order,
            "lines": {**order["lines"], event["sku"]: line},
            "total": order["total"] + event["qty"] * event["price"],
        }
        return {**state, "orders": {**state["orders"], event["order"]: order}}
    if kind == "order/submitted":
        orders = dict(state["orders"])
        order = orders.pop(event["order"])
        return {
            **state,
            "orders": orders,
            "submitted": state["submitted"] + 1,
            "revenue": state["revenue"] + order["total"],
        }
    return state


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--every", type=int, default=1000, help="checkpoint interval K")
    parser.add_argument("--hash-every", type=int, default=100)
    args = parser.parse_args()

    from replayer.verify import VerifyOptions, verify_log

    with tempfile.TemporaryDirectory(prefix="rdt-bench-verify-") as folder:
        path = Path(folder) / "bench.rdtlog"
        started = time.perf_counter()
        write_log(path, args.events, args.hash_every)
        print(f"log: {args.events:,} events written in {time.perf_counter() - started:.1f} s")
        plain = plain_replay(path)
        print(f"plain replay: {plain:.2f} s ({args.events / plain:,.0f} events/s)")
        started = time.perf_counter()
        result = verify_log(
            str(path),
            f"{Path(__file__).resolve()}:reducer",
            VerifyOptions(checkpoint_every=args.every),
        )
        verify = time.perf_counter() - started
        print(f"verify (2 runs): {verify:.2f} s, ok={result.ok}")
        ratio = verify / plain
        print(f"ratio verify/plain: {ratio:.2f}x (bar: at most {BAR:.1f}x)")
        if not result.ok:
            print("verify reported findings on a clean reducer:", result.to_json(), file=sys.stderr)
            return 1
        return 0 if ratio <= BAR else 1


if __name__ == "__main__":
    sys.exit(main())
