"""Planted: numbers promos with a module-level call counter carried across calls."""

from __future__ import annotations

from typing import Any

from tests.replayer.planted import clean_shop

_calls = 0


def reducer(state: dict[str, Any] | None, event: dict[str, Any]) -> dict[str, Any]:
    global _calls
    _calls += 1
    state = clean_shop.reducer(state, event)
    if event["type"] == "promo/started":
        return {**state, "promo_no": _calls}
    return state
