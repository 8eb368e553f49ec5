"""What-if results: the timeline replayed without some events, against the recorded one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def parse_skip(text: str) -> list[int]:
    """``"3,7, 9"`` → ``[3, 7, 9]`` (sorted, without repeats).

    Raises:
        ValueError: an item that is not a positive integer.
    """
    items = [item.strip() for item in text.split(",") if item.strip()]
    values = set()
    for item in items:
        if not item.isdigit() or int(item) < 1:
            raise ValueError(f"--skip takes event numbers like 3,7,9; got {item!r}")
        values.add(int(item))
    if not values:
        raise ValueError("--skip needs at least one event number")
    return sorted(values)


@dataclass(frozen=True, slots=True)
class WhatIfResult:
    """How the final state differs when the ``skipped`` events never happened."""

    skipped: list[int]
    first_divergent_v: int | None
    """The first ``v`` after which the two timelines' states differ, or ``None``."""
    diff: list[dict[str, Any]]
    """RFC 6902 patch from the recorded final state to the what-if final state."""
    state: Any = None
    """The what-if final state."""
    inserted: list[dict[str, Any]] | None = None
    """Hypothetical events put in: ``{"after": V, "action": {...}}`` each (``None``: none)."""

    def to_json(self) -> dict[str, Any]:
        """``{"skipped", "first_divergent_v", "diff"}`` (and ``"inserted"`` when events were
        put in); the diff a plain RFC 6902 patch."""
        from replayer.diff import without_old

        doc: dict[str, Any] = {
            "skipped": self.skipped,
            "first_divergent_v": self.first_divergent_v,
            "diff": without_old(self.diff),
        }
        if self.inserted is not None:
            doc["inserted"] = self.inserted
        return doc


def parse_action(text: str) -> dict[str, Any]:
    """An action to insert: a JSON object with a string ``"type"``.

    Raises:
        ValueError: not JSON, not an object, or no string ``type``.
    """
    from devtools.jsonutil import loads

    try:
        value = loads(text)
    except ValueError:
        raise ValueError(f"the action is not JSON: {text[:80]!r}") from None
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise ValueError('the action must be a JSON object with a string "type"')
    return value
