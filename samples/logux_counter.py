"""The reducer of the Logux counter sample (``samples/js/logux_server.mjs``), in Python.

Its events are Logux actions as ``rdt record --protocol logux`` stores them: the action with
its absolute Logux meta under ``meta``. ``counter/add`` adds ``by`` (an integer); a
``logux/undo`` takes back the action it carries, as a Logux client's reducer does when the
server refuses one (the server's own state never had it); ``logux/processed`` and every other
type leave the state as it is. The twin of ``samples/js/logux_counter.mjs``.
"""

from __future__ import annotations

from typing import Any

INITIAL: dict[str, Any] = {"value": 0, "count": 0}


def _amount(action: Any) -> int | None:
    if not isinstance(action, dict) or action.get("type") != "counter/add":
        return None
    by = action.get("by")
    return by if isinstance(by, int) and not isinstance(by, bool) else None


def reducer(state: dict[str, Any] | None, event: dict[str, Any]) -> dict[str, Any]:
    """Pure: never mutates its input."""
    if state is None:
        state = INITIAL
    by, sign = _amount(event), 1
    if by is None and event.get("type") == "logux/undo":
        by, sign = _amount(event.get("action")), -1
    if by is None:
        return state
    return {"value": state["value"] + sign * by, "count": state["count"] + sign}
