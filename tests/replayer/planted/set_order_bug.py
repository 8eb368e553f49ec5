"""Planted: keeps an item's tags as ``list(set(...))``, whose order follows the hash seed."""

from __future__ import annotations

from typing import Any

from tests.replayer.planted import clean_shop


def reducer(state: dict[str, Any] | None, event: dict[str, Any]) -> dict[str, Any]:
    state = clean_shop.reducer(state, event)
    if event["type"] == "item/tagged":
        item = state["items"][event["sku"]]
        tags = list(set(item["tags"]) | set(event["tags"]))
        return {**state, "items": {**state["items"], event["sku"]: {**item, "tags": tags}}}
    return state
