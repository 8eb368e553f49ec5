"""Progress of a bisect run in the TUI, without a progress hook in the replayer.

:meth:`replayer.engine.Replay.bisect` takes a compiled
:class:`~replayer.predicate.Predicate`; :func:`counting` hands it one that counts its own
evaluations (one per checkpoint tried, then one per event replayed in the last window), which
the screen shows while the bisect runs.
"""

from __future__ import annotations

from typing import Any


def counting(expr: str) -> Any:
    """``expr`` compiled as a predicate whose ``evaluated`` attribute counts its calls.

    Raises:
        BadExpression: ``expr`` is empty or not a valid Python expression.
    """
    from replayer.predicate import Predicate

    tally = [0]

    class CountingPredicate(Predicate):
        """A :class:`Predicate` that counts how often it was evaluated (``evaluated``)."""

        @property
        def evaluated(self) -> int:
            return tally[0]

        def __call__(self, state: Any, event: Any, v: int) -> bool:
            tally[0] += 1
            return Predicate.__call__(self, state, event, v)

    compiled = Predicate.compile(expr)
    return CountingPredicate(compiled.expr, compiled.code)


def bisect_status(expr: str, predicate: Any) -> str:
    """The header's busy text while bisecting ``expr``."""
    count = getattr(predicate, "evaluated", 0)
    return f"bisecting {expr}… ({count:,} states checked)"
