"""Sample: the sales-order service with a planted bug, for demos and bisect tests.

The bug: removing a line subtracts the line's amount once *per time the SKU was added* instead
of once. A line added once behaves correctly, so the bug hides until exactly this sequence::

    order/create    {"customer": "ACME"}                                 → order o1
    order/add-line  {"order": "o1", "sku": "A", "qty": 1, "price": 500}  total 500
    order/add-line  {"order": "o1", "sku": "A", "qty": 1, "price": 500}  total 1000 (line A: 1000)
    order/remove-line {"order": "o1", "sku": "A"}                        total -1000, should be 0

``rdt bisect LOG --reducer samples.sales_order_buggy:reducer --bad "any(o['total'] < 0 for o in
state['orders'].values())"`` finds the ``order/line-removed`` event; ``rdt compare`` against
``samples.sales_order:reducer`` finds the same one. Middleware and messages are those of
:mod:`samples.sales_order`.
"""

from __future__ import annotations

from typing import Any

from devtools.server import ReducerServer
from samples import sales_order
from samples.base import sample_server
from samples.sales_order import MIDDLEWARE, make_reducer

NAME = "sales-order-buggy"
VERSION = "1.0-buggy"


def on_line_removed(state: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """The planted bug: subtracts the line's whole amount once for every time it was added."""
    order = state["orders"][event["order"]]
    line = order["lines"][event["sku"]]
    lines = {sku: kept for sku, kept in order["lines"].items() if sku != event["sku"]}
    total = order["total"] - line["amount"] * line["adds"]
    updated = {**order, "lines": lines, "total": total, "updated_ns": event["ts"]}
    return {**state, "orders": {**state["orders"], order["id"]: updated}}


reducer = make_reducer({**sales_order.HANDLERS, "order/line-removed": on_line_removed})
"""The buggy root reducer (pure and deterministic: the bug is in the arithmetic only)."""

middleware = MIDDLEWARE


def make_server(*, token: str | None = None, hash_every: int = 1, **kw: Any) -> ReducerServer:
    """A :class:`ReducerServer` running the buggy variant."""
    return sample_server(
        reducer, MIDDLEWARE, name=NAME, version=VERSION, token=token, hash_every=hash_every, **kw
    )
