"""Which runtime runs a reducer: Python in this process, or JavaScript in a Node worker.

:func:`load_runtime` is the one place that tells the two apart, by the reference's file
extension (:func:`replayer.loader.is_js_ref`), so every command that takes ``--reducer`` or
``--against`` accepts both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from replayer.fold import PyReducer, ReducerRuntime
from replayer.loader import is_js_ref, load_reducer

__all__ = ["load_runtime"]


def load_runtime(reducer: str | Callable[[Any, Any], Any] | ReducerRuntime) -> ReducerRuntime:
    """The runtime for a reference (Python or JavaScript, by the file's extension) or callable.

    Raises:
        ReducerLoadError: the reducer cannot be loaded.
    """
    if not isinstance(reducer, str):
        if hasattr(reducer, "fold_pages") and hasattr(reducer, "steps"):
            return reducer  # type: ignore[return-value]
        return PyReducer(reducer)  # type: ignore[arg-type]
    if is_js_ref(reducer):
        from replayer.jsreducer import JsReducer

        return JsReducer.load(reducer)
    return PyReducer(load_reducer(reducer), reducer)
