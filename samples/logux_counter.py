"""The reducer of the Logux counter sample (``samples/js/logux_server.mjs``), in Python.

Its events are Logux actions as ``rdt record --protocol logux`` stores them: the action with
its absolute Logux meta under ``meta``. ``counter/add`` adds ``by``; Logux's own
``logux/processed``/``logux/undo`` answers and every other type leave the state as it is.
"""

from __future__ import annotations

from typing import Any

INITIAL: dict[str, Any] = {"value": 0, "count": 0}


def reducer(state: dict[str, Any] | None, event: dict[str, Any]) -> dict[str, Any]:
    """Pure: never mutates its input."""
    if state is None:
        state = INITIAL
    if event.get("type") != "counter/add":
        return state
    by = event.get("by", 1)
    if not isinstance(by, int) or isinstance(by, bool):
        return state
    return {"value": state["value"] + by, "count": state["count"] + 1}
