"""Planted: behaves like ``clean_shop`` until it has been called ``LIMIT`` times in one process.

A module-level call counter (a cache that fills, a pool that runs dry) changes the output only
after many calls: a fresh replay of the 60-event shop log first differs at ``v = LIMIT - 1``,
a run warmed up on more events earlier.
"""

from __future__ import annotations

from typing import Any

from tests.replayer.planted import clean_shop

LIMIT = 51
"""The call (``@@INIT`` is the first) from which every state carries ``"stale": True``."""

_calls = 0


def reducer(state: dict[str, Any] | None, event: dict[str, Any]) -> dict[str, Any]:
    global _calls
    _calls += 1
    state = clean_shop.reducer(state, event)
    if _calls >= LIMIT:
        return {**state, "stale": True}
    return state
