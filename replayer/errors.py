"""The replayer's own errors, on top of :mod:`devtools.errors`.

::

    RdtError
    ├── ReplayError             the user's reducer raised (exit 1): v, event, its traceback
    ├── JsWorkerError           the Node worker running a JavaScript reducer died or hung (exit 1)
    └── BadInput                (exit 3)
        ├── VersionOutOfRange   a ``v`` the replay source does not have
        ├── BadExpression       a ``--bad`` expression that does not compile
        ├── PredicateError      a ``--bad`` expression that raised, with the v it raised at
        └── StateNotJSON        a state a checkpoint cannot carry (sets, bytes …)

Loading errors are :class:`devtools.errors.ReducerLoadError`.
"""

from __future__ import annotations

import traceback
from typing import Any

from devtools.errors import BadInput, RdtError


class ReplayError(RdtError):
    """The reducer raised while replaying event ``v``; this is the user's code failing."""

    exit_code = 1

    def __init__(self, v: int, event: Any, error: BaseException, tb: str) -> None:
        self.v = v
        self.event = event
        self.error = error
        self.traceback = tb
        """The reducer's own frames, formatted (the replayer's frames are left out)."""
        kind = event.get("type") if isinstance(event, dict) else None
        super().__init__(
            f"the reducer raised at v={v} (event type {kind!r}): {type(error).__name__}: {error}"
        )

    @classmethod
    def from_exception(cls, v: int, event: Any, error: BaseException) -> ReplayError:
        """Build from an exception caught around a ``reducer(state, event)`` call.

        The first traceback entry is the replayer's own call site; it is dropped so that the
        traceback shows the reducer's frames only.
        """
        tb = error.__traceback__
        if tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        text = "".join(traceback.format_exception(type(error), error, tb))
        return cls(v, event, error, text)


class JsWorkerError(RdtError):
    """The Node worker of a JavaScript reducer died or hung past its timeout.

    The message names what it was doing (the ``v`` range being reduced) and the tail of
    node's stderr, on one line.
    """

    exit_code = 1


class VersionOutOfRange(BadInput):
    """A ``v`` outside the events the replay source has."""


class BadExpression(BadInput):
    """A predicate expression that does not compile."""


class PredicateError(BadInput):
    """A predicate expression that raised while being evaluated at ``v``."""

    def __init__(self, message: str, v: int | None = None) -> None:
        super().__init__(message)
        self.v = v


class StateNotJSON(BadInput):
    """A reducer state that JSON cannot carry, so it cannot be checkpointed or diffed."""
