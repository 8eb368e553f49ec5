"""Planted: the whole process exits at the first ``item/removed`` (a worker dies, no result)."""

from __future__ import annotations

import os
from typing import Any

from tests.replayer.planted import clean_shop


def reducer(state: dict[str, Any] | None, event: dict[str, Any]) -> dict[str, Any]:
    if event["type"] == "item/removed":
        os._exit(7)
    return clean_shop.reducer(state, event)
