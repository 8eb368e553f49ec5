"""Sample: a CQRS shopping list on the reference runtime.

Commands (client → server) are checked by the list *aggregate* (:func:`decide`, pure): a
duplicate item, an unknown item or an empty name is refused with an error reply to the sender
and produces **no event**. An accepted command becomes events, which the reducer folds and the
middleware broadcasts to every client. The *read model* (:func:`read_model`) answers queries
(``list/query`` → a ``list/items`` reply to the sender; no event).

=====================  ================================  ===================================
command                fields                            event
=====================  ================================  ===================================
``list/add-item``      ``item``, ``qty`` (default 1)     ``list/item-added`` {item, qty}
``list/check-item``    ``item``, ``checked`` (def. true)  ``list/item-checked`` {item, checked}
``list/remove-item``   ``item``                          ``list/item-removed`` {item}
``list/rename``        ``name``                          ``list/renamed`` {name}
=====================  ================================  ===================================

Item names compare case-insensitively ("Milk" and "milk " are the same item).
"""

from __future__ import annotations

from typing import Any

from devtools.server import ReducerServer
from devtools.server_context import Context, Next
from samples.base import sample_server

NAME = "shopping-list"
VERSION = "1.0"

INITIAL: dict[str, Any] = {"name": "Shopping", "items": {}}

COMMANDS = ("list/add-item", "list/check-item", "list/remove-item", "list/rename")
QUERY = "list/query"


def item_key(name: str) -> str:
    """The identity of an item name: trimmed and case-folded."""
    return name.strip().casefold()


# --------------------------------------------------------------------------- reducer (pure)


def reducer(state: dict[str, Any] | None, event: dict[str, Any]) -> dict[str, Any]:
    """Fold shopping-list events; pure, never mutates, time only from ``event["ts"]``."""
    if state is None:
        state = INITIAL
    kind = event.get("type")
    items = state["items"]
    if kind == "list/item-added":
        item = {"name": event["item"], "qty": event["qty"], "checked": False}
        item["added_ns"] = event["ts"]
        return {**state, "items": {**items, item_key(event["item"]): item}}
    if kind == "list/item-checked":
        key = item_key(event["item"])
        return {**state, "items": {**items, key: {**items[key], "checked": event["checked"]}}}
    if kind == "list/item-removed":
        key = item_key(event["item"])
        return {**state, "items": {k: v for k, v in items.items() if k != key}}
    if kind == "list/renamed":
        return {**state, "name": event["name"]}
    return state


# --------------------------------------------------------------------------- aggregate (pure)


def decide(state: dict[str, Any], command: dict[str, Any]) -> list[dict[str, Any]] | str:
    """The aggregate: the events ``command`` produces against ``state``, or why it is refused."""
    kind = command.get("type")
    if kind == "list/rename":
        name = command.get("name")
        if not isinstance(name, str) or not name.strip():
            return "the list name must not be empty"
        return [{"type": "list/renamed", "name": name.strip()}]
    item = command.get("item")
    if not isinstance(item, str) or not item.strip():
        return "the item name must not be empty"
    key = item_key(item)
    existing = state["items"].get(key)
    if kind == "list/add-item":
        qty = command.get("qty", 1)
        if not isinstance(qty, int) or isinstance(qty, bool) or qty < 1:
            return "'qty' must be a positive integer"
        if existing is not None:
            return f"{existing['name']!r} is already on the list"
        return [{"type": "list/item-added", "item": item.strip(), "qty": qty}]
    if existing is None:
        return f"{item.strip()!r} is not on the list"
    if kind == "list/check-item":
        checked = command.get("checked", True)
        if not isinstance(checked, bool):
            return "'checked' must be true or false"
        return [{"type": "list/item-checked", "item": existing["name"], "checked": checked}]
    if kind == "list/remove-item":
        return [{"type": "list/item-removed", "item": existing["name"]}]
    return f"unknown command {kind!r}"


# --------------------------------------------------------------------------- read model (pure)


def read_model(state: dict[str, Any]) -> dict[str, Any]:
    """The query side: the list as clients read it (unchecked first, then by name)."""
    items = sorted(state["items"].values(), key=lambda i: (i["checked"], item_key(i["name"])))
    return {
        "type": "list/items",
        "name": state["name"],
        "items": [{"name": i["name"], "qty": i["qty"], "checked": i["checked"]} for i in items],
        "open": sum(not i["checked"] for i in items),
    }


# --------------------------------------------------------------------------- middleware


async def queries(ctx: Context, message: dict[str, Any], next: Next) -> None:
    """Answer ``list/query`` from the read model; everything else goes on."""
    if message["type"] == QUERY:
        ctx.reply(read_model(ctx.state))
        return
    await next(message)


async def aggregate(ctx: Context, message: dict[str, Any], next: Next) -> None:
    """Check the command with the aggregate; emit and broadcast its events, or refuse it."""
    if message["type"] not in COMMANDS:
        ctx.reject(f"unknown message type {message['type']!r}")
    decision = decide(ctx.state, message)
    if isinstance(decision, str):
        ctx.reject(decision)
    for event in decision:
        ctx.broadcast(ctx.emit(event))


MIDDLEWARE = [queries, aggregate]
middleware = MIDDLEWARE


def make_server(*, token: str | None = None, hash_every: int = 1, **kw: Any) -> ReducerServer:
    """A :class:`ReducerServer` running this sample (``token`` None: ``RDT_TOKEN`` or generated)."""
    return sample_server(
        reducer, MIDDLEWARE, name=NAME, version=VERSION, token=token, hash_every=hash_every, **kw
    )
