"""Planted-bug reducers for `rdt verify` and `rdt compare`, and the shop log they run on.

Every module here exports ``reducer`` over the same small shop: ``item/added`` {sku, price
(float), tags}, ``promo/started``, ``item/tagged`` {sku, tags}, ``item/removed`` {sku}. The
log from :func:`write_shop_log` puts the special events at fixed ``v`` so each planted bug has
an exact ``v`` where it first shows:

- ``PROMO_V`` (23): ``promo/started`` — the random, clock and module-state bugs strike here;
- ``TAGGED_V`` (31): the first ``item/tagged`` — the set-order and mutation bugs start here;
- ``REMOVED_V`` (40): the first ``item/removed`` — the unserializable, raising and
  changed-version bugs strike here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from devtools.canonical import state_hash
from devtools.model import Snapshot
from devtools.store import Log
from tests.factories import event

PROMO_V = 23
TAGGED_V = 31
REMOVED_V = 40
EVENTS = 60

TAGS = ["red", "green", "blue", "sale", "new", "bulk", "eco", "gift"]


def shop_events(n: int = EVENTS) -> list[Any]:
    """The shop's events ``v = 1..n`` (model ``Event`` objects, hashes unset)."""
    out = []
    for v in range(1, n + 1):
        sku = f"sku-{v % 7}"
        if v == PROMO_V:
            out.append(event(v, "promo/started", name="spring"))
        elif v >= REMOVED_V and v % 5 == 0:
            out.append(event(v, "item/removed", sku=sku))
        elif v >= TAGGED_V and v % 3 == TAGGED_V % 3:
            tags = [TAGS[(v + i) % len(TAGS)] for i in range(6)]
            out.append(event(v, "item/tagged", sku=sku, tags=tags))
        else:
            price = round(0.1 * v + 1.0 / (v + 2), 6)
            out.append(event(v, "item/added", sku=sku, price=price, tags=TAGS[v % 3 : v % 3 + 2]))
    return out


def write_shop_log(
    target: str | Path,
    *,
    n: int = EVENTS,
    hashes_from: Any = None,
    hash_every: int = 1,
    snapshot_every: int | None = None,
    name: str = "shop",
) -> str:
    """Write the shop log to ``target`` (a path or URL) with the store writer.

    Args:
        hashes_from: a reducer whose states give the recorded hashes (``None``: no hashes).
        hash_every: record a hash after every this many events.
        snapshot_every: also record snapshots every this many events (from ``hashes_from``).
    """
    events = shop_events(n)
    snapshots = []
    if hashes_from is not None:
        from dataclasses import replace

        state = hashes_from(None, {"type": "@@INIT"})
        hashed = []
        for e in events:
            state = hashes_from(state, e.event)
            h = state_hash(state) if e.v % hash_every == 0 else None
            hashed.append(replace(e, hash=h))
            if snapshot_every and e.v % snapshot_every == 0:
                snapshots.append(Snapshot(v=e.v, state=state, hash=state_hash(state)))
        events = hashed
    with Log.open(target, create=True) as log:
        writer = log.writer(name=name)
        writer.add_events(events)
        for snap in snapshots:
            writer.add_snapshot(snap)
        writer.close()
    return str(target)
