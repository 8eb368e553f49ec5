"""Sample: a sales-order service on the reference runtime.

Clients create orders (``order/create`` {customer}), add and remove lines (``order/add-line``
{order, sku, qty, price}, ``order/remove-line`` {order, sku}), submit (``order/submit``) and
cancel (``order/cancel``) them, and list them (``order/list``, answered to the sender, no event).
Middleware validates (unknown order, empty order submitted, a submitted or cancelled order
changed → an error reply, no event), picks order ids, and broadcasts every event to every
connected client. Prices are integer cents; the reducer keeps each order's total.

Events: ``order/created`` {id, customer}, ``order/line-added`` {order, sku, qty, price},
``order/line-removed`` {order, sku}, ``order/submitted`` {order}, ``order/cancelled`` {order}.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from devtools.server import ReducerServer
from devtools.server_context import Context, Next
from samples.base import sample_server

NAME = "sales-order"
VERSION = "1.0"

Handler = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]

INITIAL: dict[str, Any] = {"orders": {}, "count": 0}


# --------------------------------------------------------------------------- reducer (pure)


def _with_order(state: dict[str, Any], order: dict[str, Any]) -> dict[str, Any]:
    return {**state, "orders": {**state["orders"], order["id"]: order}}


def on_created(state: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    order = {
        "id": event["id"],
        "customer": event["customer"],
        "status": "open",
        "lines": {},
        "total": 0,
        "created_ns": event["ts"],
        "updated_ns": event["ts"],
    }
    return {**_with_order(state, order), "count": state["count"] + 1}


def on_line_added(state: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    order = state["orders"][event["order"]]
    amount = event["qty"] * event["price"]
    old = order["lines"].get(event["sku"])
    if old is None:
        line = {"sku": event["sku"], "qty": event["qty"], "price": event["price"]}
        line.update(amount=amount, adds=1)
    else:
        line = {
            **old,
            "qty": old["qty"] + event["qty"],
            "price": event["price"],
            "amount": old["amount"] + amount,
            "adds": old["adds"] + 1,
        }
    lines = {**order["lines"], event["sku"]: line}
    updated = {**order, "lines": lines, "total": order["total"] + amount, "updated_ns": event["ts"]}
    return _with_order(state, updated)


def on_line_removed(state: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    order = state["orders"][event["order"]]
    line = order["lines"][event["sku"]]
    lines = {sku: kept for sku, kept in order["lines"].items() if sku != event["sku"]}
    total = order["total"] - line["amount"]
    return _with_order(state, {**order, "lines": lines, "total": total, "updated_ns": event["ts"]})


def _status(status: str) -> Handler:
    def on_status(state: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
        order = state["orders"][event["order"]]
        return _with_order(state, {**order, "status": status, "updated_ns": event["ts"]})

    return on_status


HANDLERS: dict[str, Handler] = {
    "order/created": on_created,
    "order/line-added": on_line_added,
    "order/line-removed": on_line_removed,
    "order/submitted": _status("submitted"),
    "order/cancelled": _status("cancelled"),
}


def make_reducer(handlers: dict[str, Handler]) -> Callable[[Any, dict[str, Any]], Any]:
    """A root reducer dispatching on the event type (unknown types leave the state as is)."""

    def reducer(state: dict[str, Any] | None, event: dict[str, Any]) -> dict[str, Any]:
        if state is None:
            state = INITIAL
        handler = handlers.get(event.get("type"))  # type: ignore[arg-type]
        return state if handler is None else handler(state, event)

    return reducer


reducer = make_reducer(HANDLERS)
"""The root reducer: pure, never mutates its input, time only from ``event["ts"]``."""


# --------------------------------------------------------------------------- middleware


def _nonempty_str(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _count(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _open_order(ctx: Context, message: dict[str, Any]) -> dict[str, Any]:
    order_id = message.get("order")
    order = ctx.state["orders"].get(order_id) if isinstance(order_id, str) else None
    if order is None:
        ctx.reject(f"unknown order {order_id!r}")
    if order["status"] != "open":
        ctx.reject(f"order {order_id} is {order['status']} and cannot change")
    return order


async def validate(ctx: Context, message: dict[str, Any], next: Next) -> None:
    """Refuse what the business rules forbid: the sender gets an error, nobody an event."""
    kind = message["type"]
    if kind == "order/list":
        ctx.reply({"type": "order/list", "orders": ctx.state["orders"]})
        return
    if kind == "order/create":
        if not _nonempty_str(message.get("customer")):
            ctx.reject("order/create needs a non-empty 'customer'")
    elif kind == "order/add-line":
        _open_order(ctx, message)
        if not _nonempty_str(message.get("sku")):
            ctx.reject("order/add-line needs a non-empty 'sku'")
        if not _count(message.get("qty"), 1):
            ctx.reject("'qty' must be a positive integer")
        if not _count(message.get("price"), 0):
            ctx.reject("'price' must be a non-negative integer (cents)")
    elif kind == "order/remove-line":
        order = _open_order(ctx, message)
        if message.get("sku") not in order["lines"]:
            ctx.reject(f"order {order['id']} has no line {message.get('sku')!r}")
    elif kind == "order/submit":
        order = _open_order(ctx, message)
        if not order["lines"]:
            ctx.reject(f"order {order['id']} is empty and cannot be submitted")
    elif kind == "order/cancel":
        order_id = message.get("order")
        order = ctx.state["orders"].get(order_id) if isinstance(order_id, str) else None
        if order is None:
            ctx.reject(f"unknown order {order_id!r}")
        if order["status"] == "cancelled":
            ctx.reject(f"order {order_id} is already cancelled")
    else:
        ctx.reject(f"unknown message type {kind!r}")
    await next(message)


async def to_event(ctx: Context, message: dict[str, Any], next: Next) -> None:
    """Turn an accepted command into its event (ids are picked here) and broadcast it."""
    kind = message["type"]
    if kind == "order/create":
        event = {"type": "order/created", "id": f"o{ctx.state['count'] + 1}"}
        event["customer"] = message["customer"]
    elif kind == "order/add-line":
        event = {"type": "order/line-added", "order": message["order"], "sku": message["sku"]}
        event.update(qty=message["qty"], price=message["price"])
    elif kind == "order/remove-line":
        event = {"type": "order/line-removed", "order": message["order"], "sku": message["sku"]}
    elif kind == "order/submit":
        event = {"type": "order/submitted", "order": message["order"]}
    else:
        event = {"type": "order/cancelled", "order": message["order"]}
    ctx.broadcast(ctx.emit(event))


MIDDLEWARE = [validate, to_event]
middleware = MIDDLEWARE


def make_server(*, token: str | None = None, hash_every: int = 1, **kw: Any) -> ReducerServer:
    """A :class:`ReducerServer` running this sample (``token`` None: ``RDT_TOKEN`` or generated)."""
    return sample_server(
        reducer, MIDDLEWARE, name=NAME, version=VERSION, token=token, hash_every=hash_every, **kw
    )
