"""What a middleware of :class:`devtools.server.ReducerServer` sees: the context and its types.

A middleware is an async callable ``mw(ctx, message, next)``. It may validate, amend or discard
the message, reply, broadcast, emit events, or reject it; calling ``await next(message)`` hands
the (possibly amended) message to the next middleware, and past the last one the message itself
becomes an event. Everything one message causes is a transaction: its events, replies and
broadcasts are delivered together when the chain returns; a rejection or an exception discards
all of them (the state stays as it was) and the sender gets one error reply instead.

::

    async def validate(ctx: Context, message: dict, next: Next) -> None:
        if message["type"] == "order/submit" and message["id"] not in ctx.state["orders"]:
            ctx.reject(f"unknown order {message['id']!r}")
        await next(message)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from devtools import jsonutil

Reducer = Callable[[Any, dict[str, Any]], Any]
Next = Callable[[dict[str, Any]], Awaitable[None]]
Middleware = Callable[["Context", dict[str, Any], Next], Awaitable[None]]

BROADCAST = None
"""The target of a message meant for every connected client."""


class Rejected(Exception):
    """Raised by :meth:`Context.reject`: the message is refused with ``error``, nothing happens."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


@dataclass(frozen=True, slots=True)
class Emitted:
    """One event a message produced, with the state after it."""

    event: dict[str, Any]
    state: Any
    cause: dict[str, Any] | None


class Context:
    """One message's view of the server while the middleware chain runs (see module doc)."""

    __slots__ = ("sender", "cause", "n", "_state", "_v", "_reducer", "_clock", "emitted", "out")

    def __init__(
        self,
        *,
        sender: str,
        state: Any,
        v: int,
        reducer: Reducer,
        clock: Callable[[], int],
        cause: dict[str, Any] | None = None,
        n: int | None = None,
    ) -> None:
        self.sender = sender
        """The client id of the message's sender (``devtools`` for dispatched actions)."""
        self.cause = cause
        """The event cause (``{"connection", "n"}``) when the sender came through a proxy."""
        self.n = n
        """The 1-based index of this message on the sender's connection."""
        self._state = state
        self._v = v
        self._reducer = reducer
        self._clock = clock
        self.emitted: list[Emitted] = []
        """The events emitted so far (delivered when the chain returns)."""
        self.out: list[tuple[str | None, dict[str, Any]]] = []
        """Replies ``(client id, message)`` and broadcasts ``(None, message)``, in order."""

    @property
    def state(self) -> Any:
        """The state including the events this message has emitted so far."""
        return self._state

    @property
    def v(self) -> int:
        """The number of the last event, including those this message emitted so far."""
        return self._v

    def now(self) -> int:
        """The server clock, integer nanoseconds (middleware take time from here)."""
        return self._clock()

    def reply(self, message: dict[str, Any]) -> None:
        """Send ``message`` to the sender."""
        self.out.append((self.sender, message))

    def send(self, client: str, message: dict[str, Any]) -> None:
        """Send ``message`` to the client ``client`` (ignored if it is not connected)."""
        self.out.append((client, message))

    def broadcast(self, message: dict[str, Any]) -> None:
        """Send ``message`` to every connected client (the sender included)."""
        self.out.append((BROADCAST, message))

    def reject(self, error: str) -> NoReturn:
        """Refuse the message: no event, no reply but an error reply with ``error``."""
        raise Rejected(error)

    def emit(self, event: dict[str, Any]) -> dict[str, Any]:
        """Number ``event`` with the next ``v``, stamp ``ts`` and ``sender``, and reduce it.

        Returns:
            The event exactly as the reducer received it.

        Raises:
            TypeError: when ``event`` is not an object with a string ``type`` or JSON cannot
                carry it.
            Exception: whatever the reducer raises (the whole message is then discarded).
        """
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            raise TypeError("an event must be a JSON object with a string 'type'")
        v = self._v + 1
        stamped = {**event, "v": v, "ts": self._clock(), "sender": self.sender}
        jsonutil.dumps(stamped)  # refuse what JSON cannot carry before the reducer sees it
        state = self._reducer(self._state, stamped)
        self._state = state
        self._v = v
        self.emitted.append(Emitted(stamped, state, self.cause))
        return stamped
