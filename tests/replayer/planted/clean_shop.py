"""Clean: a pure shop reducer (sets only ever sorted, copies instead of mutation)."""

from __future__ import annotations

from typing import Any

INITIAL: dict[str, Any] = {"items": {}, "count": 0, "promo": None, "removed": []}


def reducer(state: dict[str, Any] | None, event: dict[str, Any]) -> dict[str, Any]:
    if state is None:
        state = INITIAL
    kind = event["type"]
    if kind == "item/added":
        old = state["items"].get(event["sku"], {"qty": 0, "tags": []})
        item = {
            "qty": old["qty"] + 1,
            "price": event["price"],
            "tags": sorted(set(old["tags"]) | set(event["tags"])),
        }
        return {
            **state,
            "items": {**state["items"], event["sku"]: item},
            "count": state["count"] + 1,
        }
    if kind == "promo/started":
        return {**state, "promo": {"name": event["name"], "since": event["ts"]}}
    if kind == "item/tagged":
        old = state["items"].get(event["sku"], {"qty": 0, "tags": [], "price": 0.0})
        item = {**old, "tags": sorted(set(old["tags"]) | set(event["tags"]))}
        return {**state, "items": {**state["items"], event["sku"]: item}}
    if kind == "item/removed":
        items = {k: v for k, v in state["items"].items() if k != event["sku"]}
        return {**state, "items": items, "removed": [*state["removed"], event["sku"]]}
    return state
