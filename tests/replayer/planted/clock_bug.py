"""Planted: stamps the promo with the wall clock, imported by name (at PROMO_V)."""

from __future__ import annotations

from time import time
from typing import Any

from tests.replayer.planted import clean_shop


def reducer(state: dict[str, Any] | None, event: dict[str, Any]) -> dict[str, Any]:
    state = clean_shop.reducer(state, event)
    if event["type"] == "promo/started":
        return {**state, "opened_at": time()}
    return state
