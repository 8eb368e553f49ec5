"""Load the user's reducer from ``package.module:attr`` or ``path/to/file.py:attr``.

The reference names a module (importable, or a Python file) and an attribute in it (dotted
names such as ``Reducers.root`` are followed). Anything that goes wrong — no colon, a module
that cannot be found or raises while importing, a missing attribute, something not callable —
is one :class:`~devtools.errors.ReducerLoadError` line. :func:`reducer_identity` gives the
bytes that identify a reducer's code (its module and the helper modules beside it), used to key
persisted checkpoints so that a changed reducer never reuses stale ones.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devtools.errors import ReducerLoadError

Reducer = Callable[[Any, dict], Any]


def _split(ref: str) -> tuple[str, str]:
    module, sep, attr = ref.rpartition(":")
    if not sep or not module or not attr:
        raise ReducerLoadError(
            f"reducer reference {ref!r} must look like package.module:attr or path/to/file.py:attr"
        )
    return module, attr


JS_SUFFIXES = (".js", ".mjs", ".cjs")
"""File extensions of JavaScript reducers (run in a Node worker)."""


def is_js_ref(ref: str) -> bool:
    """Whether ``ref`` names a JavaScript reducer (``path/to/file.js|.mjs|.cjs:name``)."""
    module, sep, _attr = ref.strip().rpartition(":")
    return bool(sep) and module.lower().endswith(JS_SUFFIXES)


def _is_path(module: str) -> bool:
    return module.endswith(".py") or "/" in module or "\\" in module


def _import_file(module: str, ref: str) -> Any:
    path = Path(module).expanduser()
    if not path.is_file():
        raise ReducerLoadError(f"cannot load reducer {ref!r}: no such file {module!r}")
    path = path.resolve()
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:12]
    name = f"_rdt_reducer_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ReducerLoadError(f"cannot load reducer {ref!r}: {module!r} is not a Python file")
    mod = importlib.util.module_from_spec(spec)
    # Let the file import its siblings, as `python path/to/file.py` would.
    folder = str(path.parent)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException as error:
        sys.modules.pop(name, None)
        if isinstance(error, KeyboardInterrupt):
            raise
        raise ReducerLoadError(
            f"cannot load reducer {ref!r}: importing {module} raised "
            f"{type(error).__name__}: {error}"
        ) from None
    finally:
        if added:
            with contextlib.suppress(ValueError):
                sys.path.remove(folder)
    return mod


def _import_module(module: str, ref: str) -> Any:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        raise ReducerLoadError(
            f"cannot load reducer {ref!r}: no module named {error.name or module!r}"
        ) from None
    except BaseException as error:
        if isinstance(error, KeyboardInterrupt):
            raise
        raise ReducerLoadError(
            f"cannot load reducer {ref!r}: importing {module} raised "
            f"{type(error).__name__}: {error}"
        ) from None


def load_reducer(ref: str) -> Reducer:
    """Import the reducer that ``ref`` names.

    Args:
        ref: ``package.module:attr`` or ``path/to/file.py:attr`` (``attr`` may be dotted).

    Returns:
        The callable ``reducer(state, event) -> state``.

    Raises:
        ReducerLoadError: the reference is malformed, the module cannot be imported, the
            attribute is missing or is not callable.
    """
    module, attr = _split(ref.strip())
    mod = _import_file(module, ref) if _is_path(module) else _import_module(module, ref)
    target: Any = mod
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ReducerLoadError(
                f"cannot load reducer {ref!r}: {module} has no attribute {attr!r}"
            ) from None
    if not callable(target):
        raise ReducerLoadError(
            f"cannot load reducer {ref!r}: {attr} is a {type(target).__name__}, not callable"
        )
    return target


def reducer_identity(reducer: Reducer, ref: str | None = None) -> bytes:
    """Bytes that change whenever the reducer's code may have changed.

    Its qualified name, ``ref``, and the source of every loaded module that belongs with the
    one defining it (:func:`related_sources`: the module's own file, so helpers beside it
    count, and the helper modules of its package or folder that it imported). When no source
    is available (a builtin, a lambda typed at a REPL) the reducer's bytecode is used instead.
    """
    parts = [ref or "", getattr(reducer, "__module__", "") or "", _qualname(reducer)]
    module = inspect.getmodule(reducer)
    sources = related_sources(module) if module is not None else []
    if not sources:
        code = getattr(reducer, "__code__", None)
        source = code.co_code + repr(code.co_consts).encode() if code is not None else b""
        sources = [("", source)]
    out = ["\0".join(parts).encode()]
    for name, source in sources:
        out += [name.encode(), len(source).to_bytes(8, "big") + source]
    return b"\0".join(out)


def related_sources(module: Any) -> list[tuple[str, bytes]]:
    """``(path relative to the root, file bytes)`` of the loaded modules that belong with
    ``module``, sorted: those under its top-level package's folder (or, for a module that is
    not in a package or was loaded by path, its own folder), leaving out installed libraries
    and the standard library unless ``module`` itself lives there.

    Files are read as they are now (``inspect.getsource`` may answer from a stale cache).
    """
    filename = getattr(module, "__file__", None)
    if not filename:
        return []
    own = os.path.abspath(filename)
    root = _code_root(module, own)
    prefix = root + os.sep
    libraries = [
        os.path.abspath(path) + os.sep
        for path in {sysconfig.get_path(k) for k in ("purelib", "platlib", "stdlib")}
        if path and not own.startswith(os.path.abspath(path) + os.sep)
    ]
    found = {own}
    for loaded in list(sys.modules.values()):
        name = getattr(loaded, "__file__", None)
        if not name or not name.endswith(".py"):
            continue
        path = os.path.abspath(name)
        if path.startswith(prefix) and not any(path.startswith(lib) for lib in libraries):
            found.add(path)
    sources = []
    for path in sorted(found):
        try:
            sources.append((os.path.relpath(path, root), Path(path).read_bytes()))
        except OSError:
            continue
    return sources


def _code_root(module: Any, own: str) -> str:
    """The folder whose loaded modules count as the reducer's code."""
    top = sys.modules.get((getattr(module, "__name__", "") or "").split(".")[0])
    top_file = getattr(top, "__file__", None)
    if top is not None and hasattr(top, "__path__") and top_file:
        return os.path.dirname(os.path.abspath(top_file))
    return os.path.dirname(own)


def _qualname(obj: Any) -> str:
    return getattr(obj, "__qualname__", None) or type(obj).__qualname__
