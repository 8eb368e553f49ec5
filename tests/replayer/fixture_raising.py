"""The sales-order reducer, planted to raise on the third ``order/created`` (live what-if test)."""

from __future__ import annotations

from typing import Any

from samples.sales_order import reducer as clean


def reducer(state: Any, event: dict[str, Any]) -> Any:
    if event.get("type") == "order/created" and state and state.get("count", 0) >= 2:
        raise RuntimeError("planted: a third order")
    return clean(state, event)
