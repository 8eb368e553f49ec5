"""Planted: from the first ``item/tagged`` on, bumps a counter in the input state in place."""

from __future__ import annotations

from typing import Any

from tests.replayer.planted import clean_shop


def reducer(state: dict[str, Any] | None, event: dict[str, Any]) -> dict[str, Any]:
    if state is not None and event["type"] == "item/tagged":
        state["count"] = state["count"] + 1000
        return clean_shop.reducer(state, event)
    return clean_shop.reducer(state, event)
