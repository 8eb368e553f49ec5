"""Planted: from the first ``item/tagged`` on, appends to an item's tag list in place."""

from __future__ import annotations

from typing import Any

from tests.replayer.planted import clean_shop


def reducer(state: dict[str, Any] | None, event: dict[str, Any]) -> dict[str, Any]:
    if state is not None and event["type"] == "item/tagged":
        item = state["items"].get(event["sku"])
        if item is not None:
            item["tags"].append("touched")
    return clean_shop.reducer(state, event)
