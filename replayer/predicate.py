"""The user's ``--bad`` expression: compiled once, evaluated over ``state`` and ``event``.

The expression is the user's own code (like ``--reducer``), never recorded data; recorded
payloads only ever reach it as the values of ``state`` and ``event``.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from types import CodeType
from typing import Any

from replayer.errors import BadExpression, PredicateError


@dataclass(frozen=True, slots=True)
class Predicate:
    """A compiled Python expression over ``state``, ``event`` and ``v``."""

    expr: str
    code: CodeType
    option: str = "--bad"

    @classmethod
    def compile(cls, expr: str, *, option: str = "--bad") -> Predicate:
        """Compile ``expr`` once (``option`` names it in messages: ``--bad``, ``--where``).

        Raises:
            BadExpression: it is empty or not a valid Python expression.
        """
        if not expr.strip():
            raise BadExpression(f"the {option} expression is empty")
        try:
            code = compile(expr.strip(), f"<{option}>", "eval")
        except SyntaxError as error:
            raise BadExpression(
                f"the {option} expression {expr!r} is not valid Python: {error.msg}"
            ) from None
        return cls(expr, code, option)

    def __call__(self, state: Any, event: Any, v: int) -> bool:
        """Whether the expression holds for the state after event ``v``.

        Raises:
            PredicateError: the expression raised; the message names ``v``.
        """
        names = {"state": state, "event": event, "v": v}
        try:
            return bool(eval(self.code, {"__builtins__": builtins}, names))  # noqa: S307
        except Exception as error:
            raise PredicateError(
                f"the {self.option} expression {self.expr!r} raised at v={v}: "
                f"{type(error).__name__}: {error}",
                v,
            ) from None
