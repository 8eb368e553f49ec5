"""What every sample server shares: building its :class:`ReducerServer`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from devtools.server import ReducerServer
from devtools.tokens import resolve_token


def sample_server(
    reducer: Callable[[Any, dict], Any],
    middleware: Sequence[Any],
    *,
    name: str,
    version: str,
    token: str | None = None,
    hash_every: int = 1,
    **kw: Any,
) -> ReducerServer:
    """A :class:`ReducerServer` for a sample (``token`` None: ``RDT_TOKEN`` or generated)."""
    return ReducerServer(
        reducer,
        middleware,
        name=name,
        version=version,
        token=resolve_token(token).value,
        hash_every=hash_every,
        **kw,
    )
