"""Planted: draws a promo code from the global random generator (at PROMO_V)."""

from __future__ import annotations

import random
from typing import Any

from tests.replayer.planted import clean_shop


def reducer(state: dict[str, Any] | None, event: dict[str, Any]) -> dict[str, Any]:
    state = clean_shop.reducer(state, event)
    if event["type"] == "promo/started":
        return {**state, "code": random.randint(0, 10**9)}
    return state
