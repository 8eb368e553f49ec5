"""Planted: stamps the promo with datetime.now(), imported as a class (at PROMO_V)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tests.replayer.planted import clean_shop


def reducer(state: dict[str, Any] | None, event: dict[str, Any]) -> dict[str, Any]:
    state = clean_shop.reducer(state, event)
    if event["type"] == "promo/started":
        return {**state, "opened_at": datetime.now().isoformat()}
    return state
