"""An order-sensitive reducer over Logux counter actions, the twin of
``tests/replayer/js_fixtures/logux_order.mjs``: the ``by`` of every ``counter/add`` in the order
it was folded, and the last one (last write wins). Pure: never mutates its input."""

from __future__ import annotations

from typing import Any


def reducer(state: dict[str, Any] | None, action: dict[str, Any]) -> dict[str, Any]:
    if state is None:
        state = {"adds": [], "last": None}
    if action.get("type") != "counter/add":
        return state
    return {"adds": [*state["adds"], action["by"]], "last": action["by"]}
