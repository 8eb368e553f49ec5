"""Planted: keeps removed skus as a set (at REMOVED_V), which JSON cannot carry."""

from __future__ import annotations

from typing import Any

from tests.replayer.planted import clean_shop


def reducer(state: dict[str, Any] | None, event: dict[str, Any]) -> dict[str, Any]:
    state = clean_shop.reducer(state, event)
    if event["type"] == "item/removed":
        return {**state, "removed": set(state["removed"])}
    return state
