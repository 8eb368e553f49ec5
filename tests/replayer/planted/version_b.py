"""Planted: version 2 of the clean shop that also counts removals (differs at REMOVED_V)."""

from __future__ import annotations

from typing import Any

from tests.replayer.planted import clean_shop


def reducer(state: dict[str, Any] | None, event: dict[str, Any]) -> dict[str, Any]:
    state = clean_shop.reducer(state, event)
    if event["type"] == "item/removed":
        return {**state, "count": state["count"] - 1}
    return state
