"""Planted: raises on the first ``item/removed`` (REMOVED_V)."""

from __future__ import annotations

from typing import Any

from tests.replayer.planted import clean_shop


def reducer(state: dict[str, Any] | None, event: dict[str, Any]) -> dict[str, Any]:
    if event["type"] == "item/removed":
        raise KeyError(event["sku"] + "-missing")
    return clean_shop.reducer(state, event)
