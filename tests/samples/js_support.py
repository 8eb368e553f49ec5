"""Running the JS samples from pytest: where they are, a planted sales log, folds through Node.

The JS planted-bug reducers in ``samples/js/planted/`` are built on the sales-order twin and
run over the sales-order log of :func:`write_sales_log`, which puts its special events at the
same ``v`` as the Python shop log of :mod:`tests.replayer.planted` (so one test table can pin
both):

- ``SUBMITTED_V`` (23, the shop's ``PROMO_V``): the first ``order/submitted`` — the random,
  clock and hidden-module-state bugs strike here;
- ``CANCELLED_V`` (31, the shop's ``TAGGED_V``): the first ``order/cancelled`` — the sloppy
  mutation starts here;
- ``REMOVED_V`` (40, the shop's ``REMOVED_V``): the first ``order/line-removed``, of a line
  added twice — the throwing reducer, the changed version (``version_b.mjs``) and the buggy
  sample twin (``sales_order_buggy``, Python and JS) strike here.

Event times default to the factories' nanoseconds (beyond 2^53, as recorded logs have them);
pass ``ts0=SMALL_TS0`` where Python and JS states must be equal as exact integers.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from devtools.canonical import state_hash
from devtools.jsonutil import dumps, loads
from devtools.model import Event, Snapshot
from devtools.server_context import Context, Rejected
from tests.factories import T0, event

ROOT = Path(__file__).resolve().parents[2]
JS_DIR = ROOT / "samples" / "js"
PLANTED_DIR = JS_DIR / "planted"
FOLD = JS_DIR / "fold.mjs"

SUBMITTED_V = 23
CANCELLED_V = 31
REMOVED_V = 40
EVENTS = 60

SMALL_TS0 = 1_700_000_000_000_000
"""A base time whose nanoseconds stay below 2^53, so JS holds them exactly."""

SKUS = ("apple", "pear", "plum", "kiwi", "fig")


def node_missing_reason() -> str | None:
    """Why the JS tests cannot run here (``None``: they can)."""
    if shutil.which("node") is None:
        return "node is not on PATH (.ci/run installs Debian's nodejs and npm)"
    if not (JS_DIR / "node_modules" / "@reduxjs" / "toolkit" / "package.json").is_file():
        return "samples/js/node_modules is missing: run `npm ci --prefix samples/js`"
    return None


requires_node = pytest.mark.skipif(
    node_missing_reason() is not None, reason=node_missing_reason() or ""
)

LOGUX_MISSING = (
    shutil.which("node") is None
    or not (JS_DIR / "node_modules" / "@logux" / "server" / "package.json").is_file()
)
requires_logux = pytest.mark.skipif(
    LOGUX_MISSING, reason="node or samples/js/node_modules (npm ci --prefix samples/js) missing"
)


def planted_ref(file: str, name: str = "reducer") -> str:
    """A ``--reducer`` reference to a planted JS reducer (path relative to the repo root)."""
    return f"samples/js/planted/{file}:{name}"


# --------------------------------------------------------------------------- the planted log


def sales_events(n: int = EVENTS, *, ts0: int = T0) -> list[Event]:
    """The planted sales-order events ``v = 1..n`` (valid by the sample's middleware rules)."""
    lines: dict[str, dict[str, int]] = {}  # order id -> sku -> times added
    status: dict[str, str] = {}
    out: list[Event] = []

    def emit(v: int, kind: str, **fields: Any) -> None:
        ts = ts0 + 1000 * v + 500
        out.append(event(v, kind, ts=ts, sender=f"c{1 + v % 3}", cause_seq=v, **fields))

    for v in range(1, n + 1):
        open_ids = [o for o in status if status[o] == "open"]
        filled = [o for o in open_ids if lines[o]]
        if v == SUBMITTED_V or (v > SUBMITTED_V and v % 7 == 0 and len(filled) > 1):
            order = filled[0]
            status[order] = "submitted"
            emit(v, "order/submitted", order=order)
        elif v == CANCELLED_V or (v > CANCELLED_V and v % 11 == 0 and len(open_ids) > 1):
            order = open_ids[-1]
            status[order] = "cancelled"
            emit(v, "order/cancelled", order=order)
        elif v == REMOVED_V or (v > REMOVED_V and v % 5 == 0 and filled):
            twice = [(o, s) for o in filled for s, adds in lines[o].items() if adds > 1]
            order, sku = twice[0] if v == REMOVED_V else (filled[-1], next(iter(lines[filled[-1]])))
            del lines[order][sku]
            emit(v, "order/line-removed", order=order, sku=sku)
        elif v % 6 == 1 or not open_ids:
            order = f"o{len(status) + 1}"
            status[order], lines[order] = "open", {}
            customer = ["ACME", "Zoë & Co", "北方"][len(status) % 3]
            emit(v, "order/created", id=order, customer=customer)
        else:
            order = open_ids[v % len(open_ids)]
            sku = SKUS[(v // 2) % len(SKUS)]
            lines[order][sku] = lines[order].get(sku, 0) + 1
            emit(v, "order/line-added", order=order, sku=sku, qty=1 + v % 4, price=99 + 37 * v)
    return out


def write_sales_log(
    target: str | Path,
    *,
    n: int = EVENTS,
    ts0: int = T0,
    hashes_from: Any = None,
    hash_every: int = 1,
    snapshot_every: int | None = None,
    name: str = "sales",
) -> str:
    """Write the planted sales log to ``target`` (as :func:`tests.replayer.planted.write_shop_log`).

    Args:
        hashes_from: a Python reducer whose states give the recorded hashes (``None``: none).
        hash_every: record a hash after every this many events.
        snapshot_every: also record snapshots every this many events (from ``hashes_from``).
    """
    from devtools.store import Log

    events = sales_events(n, ts0=ts0)
    snapshots = []
    if hashes_from is not None:
        state = hashes_from(None, {"type": "@@INIT"})
        hashed = []
        for e in events:
            state = hashes_from(state, e.event)
            hashed.append(replace(e, hash=state_hash(state) if e.v % hash_every == 0 else None))
            if snapshot_every and e.v % snapshot_every == 0:
                snapshots.append(Snapshot(v=e.v, state=state, hash=state_hash(state)))
        events = hashed
    with Log.open(target, create=True) as log:
        writer = log.writer(name=name, server={"name": "sales-order", "version": "1.0"})
        writer.add_events(events)
        for snap in snapshots:
            writer.add_snapshot(snap)
        writer.close()
    return str(target)


# --------------------------------------------------------------------------- realistic traffic


def _command(rng: random.Random, state: dict[str, Any]) -> dict[str, Any]:
    """A client's next command, mostly valid, about 1 in 10 refused by the middleware."""
    orders = state["orders"]
    ids = sorted(orders)
    some = rng.choice(ids or ["o1"])
    open_ids = [o for o in ids if orders[o]["status"] == "open"]
    if rng.random() < 0.1:  # deliberately invalid
        return rng.choice(
            [
                {"type": "order/add-line", "order": "o999", "sku": "apple", "qty": 1, "price": 1},
                {"type": "order/create", "customer": "  "},
                {"type": "order/add-line", "order": some, "sku": "x", "qty": 0},
                {"type": "order/remove-line", "order": some, "sku": "nope"},
                {"type": "order/cancel", "order": rng.choice(ids or ["o1"])},
                {"type": "order/list"},
            ]
        )
    if not open_ids or rng.random() < 0.15:
        return {"type": "order/create", "customer": rng.choice(["ACME", "Zoë", "北方", "🚚 Ltd"])}
    order = rng.choice(open_ids)
    lines = orders[order]["lines"]
    roll = rng.random()
    if lines and roll < 0.12:
        return {"type": "order/remove-line", "order": order, "sku": rng.choice(sorted(lines))}
    if lines and roll < 0.2:
        return {"type": "order/submit", "order": order}
    if roll < 0.25:
        return {"type": "order/cancel", "order": order}
    skus = (*SKUS, "constructor", "toString", "hasOwnProperty", "ünï-€", "🍐")
    return {
        "type": "order/add-line",
        "order": order,
        "sku": rng.choice(skus),
        "qty": rng.randint(1, 40),
        "price": rng.choice([0, 1, 99, 500, 1999, 250_000]),
    }


@dataclass(frozen=True, slots=True)
class Traffic:
    """Events built by the sample's own middleware from seeded commands."""

    events: list[dict[str, Any]]
    """The events exactly as the reducer received them (fields, ``v``, ``ts``, ``sender``)."""
    state: Any
    """The server's state after the last event."""
    rejected: int
    """Commands the middleware refused (error replies, no event)."""


class SampleServer:
    """The sales-order sample's middleware and reducer without sockets: commands in, events out."""

    def __init__(self, *, ts0: int = SMALL_TS0) -> None:
        from samples.sales_order import MIDDLEWARE, reducer

        self._middleware = MIDDLEWARE
        self._reducer = reducer
        self._clock = iter(range(ts0, ts0 + 10**15, 997))
        self.state = reducer(None, {"type": "@@INIT"})
        self.v = 0

    def send(self, sender: str, message: dict[str, Any]) -> list[dict[str, Any]] | None:
        """The events one command makes, as the reducer received them (``None``: refused)."""
        ctx = Context(
            sender=sender,
            state=self.state,
            v=self.v,
            reducer=self._reducer,
            clock=lambda: next(self._clock),
        )

        async def run(message: dict[str, Any], index: int = 0) -> None:
            if index < len(self._middleware):
                await self._middleware[index](ctx, message, lambda m: run(m, index + 1))
            else:
                ctx.emit(message)

        try:
            asyncio.run(run(message))
        except Rejected:
            return None
        self.state, self.v = ctx.state, ctx.v
        return [e.event for e in ctx.emitted]


def middleware_traffic(seed: int, commands: int, *, ts0: int = SMALL_TS0) -> Traffic:
    """Run ``commands`` seeded commands through ``samples.sales_order``'s middleware chain."""
    rng = random.Random(seed)
    server = SampleServer(ts0=ts0)
    events: list[dict[str, Any]] = []
    rejected = 0
    for _ in range(commands):
        message = _command(rng, server.state)
        emitted = server.send(f"c{rng.randint(1, 4)}", message)
        if emitted is None:
            rejected += 1
        else:
            events.extend(emitted)
    return Traffic(events=events, state=server.state, rejected=rejected)


# --------------------------------------------------------------------------- folding in Node


@dataclass(frozen=True, slots=True)
class Folded:
    """What ``fold.mjs`` did: its exit code, its output lines parsed, its stderr."""

    code: int
    out: list[Any]
    err: str

    def states(self, run: int = 1) -> dict[int, Any]:
        """With ``--each``: the state after each ``v`` of run ``run``."""
        return {line["v"]: line["state"] for line in self.out if line["run"] == run}


def fold_js(ref: str, events: list[Any], *flags: str, timeout: float = 60) -> Folded:
    """Fold ``events`` (dicts or model ``Event``) with the JS reducer ``ref`` in a fresh node."""
    bodies = [e.event if isinstance(e, Event) else e for e in events]
    stdin = b"".join(dumps(body) + b"\n" for body in bodies)
    proc = subprocess.run(
        ["node", str(FOLD), ref, *flags],
        input=stdin,
        capture_output=True,
        cwd=ROOT,
        timeout=timeout,
        check=False,
    )
    out = [loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return Folded(code=proc.returncode, out=out, err=proc.stderr.decode("utf-8", "replace"))


def fold_py(reducer: Any, events: list[Any]) -> dict[int, Any]:
    """The Python reducer's states after each ``v`` (key 0: the initial state), as JSON values."""
    bodies = [e.event if isinstance(e, Event) else e for e in events]
    state = reducer(None, {"type": "@@INIT"})
    states = {0: loads(dumps(state))}
    for body in bodies:
        state = reducer(state, body)
        states[body["v"]] = loads(dumps(state))
    return states


def first_difference(a: dict[int, Any], b: dict[int, Any]) -> int | None:
    """The first ``v`` whose states differ between two ``v -> state`` maps (``None``: none)."""
    for v in sorted(set(a) | set(b)):
        if a.get(v) != b.get(v):
            return v
    return None
