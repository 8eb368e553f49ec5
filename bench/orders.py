"""The order-stream reducer the replay and verify benchmarks share.

Bounded state (open orders only; submitted ones fold into totals), so a 1,000,000-event log
measures replay and verification rather than an ever-growing state. ``refunds_negative``
counts submitted orders with a negative total: the bisect benchmark plants one.
"""

from __future__ import annotations

T0 = 1_795_420_800_000_000_000
"""The benchmarks' fixed start time (ns)."""


def reducer(state, event):
    """A sales-order reducer with bounded state: submitted orders fold into totals."""
    if state is None:
        state = {"orders": {}, "submitted": 0, "revenue": 0, "refunds_negative": 0}
    kind = event["type"]
    if kind == "order/created":
        order = {"customer": event["customer"], "lines": {}, "total": 0}
        return {**state, "orders": {**state["orders"], event["id"]: order}}
    if kind == "order/line-added":
        order = state["orders"][event["order"]]
        amount = event["qty"] * event["price"]
        line = {"sku": event["sku"], "qty": event["qty"], "price": event["price"]}
        order = {
            **order,
            "lines": {**order["lines"], event["sku"]: line},
            "total": order["total"] + amount,
        }
        return {**state, "orders": {**state["orders"], event["order"]: order}}
    if kind == "order/submitted":
        orders = dict(state["orders"])
        order = orders.pop(event["order"])
        negative = state["refunds_negative"] + (1 if order["total"] < 0 else 0)
        return {
            **state,
            "orders": orders,
            "submitted": state["submitted"] + 1,
            "revenue": state["revenue"] + order["total"],
            "refunds_negative": negative,
        }
    return state
