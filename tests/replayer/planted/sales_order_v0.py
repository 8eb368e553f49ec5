"""Planted: an older sales-order reducer that did not count cancelled orders' lines out."""

from __future__ import annotations

from typing import Any

from samples.sales_order import reducer as current


def reducer(state: dict[str, Any] | None, event: dict[str, Any]) -> dict[str, Any]:
    new = current(state, event)
    if event["type"] == "order/line-removed":
        return {**new, "removed_lines": new.get("removed_lines", 0) + 1}
    return new
