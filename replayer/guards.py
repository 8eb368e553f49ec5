"""Guards the verify worker puts around each reducer call: clock/randomness calls and mutation.

**Clock and randomness.** :class:`CallGuard` replaces the clock and random sources of the
standard library (``time.time``, ``time.monotonic``, ``time.perf_counter`` and their ``_ns``
forms, ``datetime.datetime.now/utcnow/today``, ``datetime.date.today``, the ``random`` module's
functions and classes, ``uuid.uuid1/uuid4``, ``os.urandom``, ``secrets.*``) by wrappers that
cost one attribute test when no reducer runs. While a reducer runs (``guard.v`` is the event's
``v``), each call is recorded with its call site — the first frame outside the guard and the
random/uuid/secrets modules — before the original runs. Install it *before* importing the
reducer (so ``from time import time`` binds the wrapper), and call :meth:`CallGuard.rebind` on
modules imported earlier to swap originals held in their globals. Only the verify worker
process installs it.

A ``random.Random(seed)`` the reducer creates itself with a seed is deterministic and is not
reported; a ``Random()`` without a seed, and any use of a generator created outside the
reducer (its state is carried from call to call), are. Clock reads made by ``logging`` for its
own records are not reported: they never reach the state.

**Mutation.** :func:`shallow_fingerprint` / :func:`shallow_changed` are a per-event check of a
state's top level (a shallow copy compared after the call: cheap); deep changes are found by
re-checking kept states (see :mod:`replayer.verify_runner`) and pinned to a path with
:func:`mutation_path`.
"""

from __future__ import annotations

import datetime as _datetime
import os
import random
import secrets
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import FrameType, ModuleType
from typing import Any

from replayer.diff import diff

__all__ = [
    "CallGuard",
    "CallSite",
    "mutation_path",
    "shallow_changed",
    "shallow_fingerprint",
]

_TIME_NAMES = (
    "time",
    "time_ns",
    "monotonic",
    "monotonic_ns",
    "perf_counter",
    "perf_counter_ns",
)
_SECRETS_NAMES = (
    "token_bytes",
    "token_hex",
    "token_urlsafe",
    "choice",
    "randbelow",
    "randbits",
)
_QUIET_MODULES = ("logging",)
"""Call sites in these modules are not reported (their clock reads never reach a state)."""


def _skip_files() -> set[str]:
    files = {__file__}
    for module in (random, uuid, secrets, _datetime):
        name = getattr(module, "__file__", None)
        if name:
            files.add(name)
    return files


@dataclass(slots=True)
class CallSite:
    """One place that called a clock or random source while a reducer ran."""

    name: str
    """What was called, e.g. ``time.time``."""
    file: str
    line: int
    function: str
    v: int
    """The first event whose reduction made this call."""
    count: int = 1
    stack: list[str] = field(default_factory=list)
    """``file:line in function``, innermost first, up to the reducer's entry."""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "file": self.file,
            "line": self.line,
            "function": self.function,
            "v": self.v,
            "count": self.count,
            "stack": self.stack,
        }


class CallGuard:
    """Reports clock and randomness calls made while ``v`` is set (a reducer runs)."""

    def __init__(self) -> None:
        self.v: int | None = None
        """The event being reduced; ``None`` outside reducer calls (nothing is reported)."""
        self.sites: dict[tuple[str, str, int], CallSite] = {}
        self._busy = False
        self._swaps: dict[int, Any] = {}
        self._skip = _skip_files()
        self._installed = False

    # ---- reporting

    def _report(self, name: str) -> None:
        frame: FrameType | None = sys._getframe(2)
        while frame is not None and frame.f_code.co_filename in self._skip:
            frame = frame.f_back
        if frame is None:
            return
        module = frame.f_globals.get("__name__", "") or ""
        if module.split(".", 1)[0] in _QUIET_MODULES:
            return
        key = (name, frame.f_code.co_filename, frame.f_lineno)
        site = self.sites.get(key)
        if site is not None:
            site.count += 1
            return
        stack = []
        walk: FrameType | None = frame
        while walk is not None and len(stack) < 12:
            code = walk.f_code
            if "verify_runner" in code.co_filename:
                break
            stack.append(f"{code.co_filename}:{walk.f_lineno} in {code.co_name}")
            walk = walk.f_back
        self.sites[key] = CallSite(
            name=name,
            file=frame.f_code.co_filename,
            line=frame.f_lineno,
            function=frame.f_code.co_name,
            v=self.v if self.v is not None else 0,
            stack=stack,
        )

    def _quiet(self, call: Callable[[], Any]) -> Any:
        """Run ``call`` without reporting the sources it uses inside (date.today → time.time)."""
        busy, self._busy = self._busy, True
        try:
            return call()
        finally:
            self._busy = busy

    def _wrap(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        guard = self

        def guarded(*args: Any, **kwargs: Any) -> Any:
            if guard.v is None or guard._busy:
                return original(*args, **kwargs)
            guard._report(name)
            guard._busy = True
            try:
                return original(*args, **kwargs)
            finally:
                guard._busy = False

        guarded.__name__ = getattr(original, "__name__", name.rsplit(".", 1)[-1])
        guarded.__qualname__ = guarded.__name__
        guarded.__doc__ = getattr(original, "__doc__", None)
        guarded.__wrapped__ = original  # type: ignore[attr-defined]
        return guarded

    def _patch(self, module: ModuleType, attr: str, label: str) -> None:
        original = getattr(module, attr, None)
        if original is None or id(original) in self._swaps:
            return
        wrapper = self._wrap(label, original)
        self._swaps[id(original)] = wrapper
        setattr(module, attr, wrapper)

    def _swap_class(self, module: ModuleType, attr: str, replacement: type) -> None:
        original = getattr(module, attr)
        self._swaps[id(original)] = replacement
        setattr(module, attr, replacement)

    # ---- installing

    def install(self) -> None:
        """Replace the clock and random sources in their modules (once per process)."""
        if self._installed:
            return
        self._installed = True
        for attr in _TIME_NAMES:
            self._patch(time, attr, f"time.{attr}")
        self._patch(os, "urandom", "os.urandom")
        for attr in ("uuid1", "uuid4"):
            self._patch(uuid, attr, f"uuid.{attr}")
        for attr in _SECRETS_NAMES:
            self._patch(secrets, attr, f"secrets.{attr}")
        for attr in getattr(random, "__all__", ()):
            value = getattr(random, attr, None)
            if callable(value) and not isinstance(value, type):
                self._patch(random, attr, f"random.{attr}")
        self._swap_class(random, "Random", _guarded_random(self, random.Random, False))
        self._swap_class(random, "SystemRandom", _guarded_random(self, random.SystemRandom, True))
        self._swap_class(secrets, "SystemRandom", random.SystemRandom)
        self._swap_class(_datetime, "datetime", _guarded_datetime(self))
        self._swap_class(_datetime, "date", _guarded_date(self))

    def rebind(self, modules: Iterable[ModuleType]) -> None:
        """Swap originals that ``modules`` imported by name (``from time import time``)."""
        swaps = self._swaps
        for module in modules:
            namespace = getattr(module, "__dict__", None)
            if not isinstance(namespace, dict) or module.__name__ == __name__:
                continue
            for name, value in list(namespace.items()):
                replacement = swaps.get(id(value))
                if replacement is not None and replacement is not value:
                    namespace[name] = replacement

    def found(self) -> list[CallSite]:
        """The call sites seen, by first ``v``."""
        return sorted(self.sites.values(), key=lambda s: (s.v, s.file, s.line))


def _guarded_random(guard: CallGuard, base: type, always: bool) -> type:
    """A subclass of ``random.Random`` / ``SystemRandom`` that reports its use in a reducer."""
    label = f"random.{base.__name__}"

    def _note(self: Any, what: str) -> None:
        if guard.v is None or guard._busy:
            return
        if always or not getattr(self, "_rdt_local", False):
            guard._report(f"{label}.{what}")

    class Guarded(base):  # type: ignore[misc, valid-type]
        def __init__(self, x: Any = None, *args: Any, **kwargs: Any) -> None:
            # Seeded inside the reducer: deterministic, and its state dies with the call.
            self._rdt_local = guard.v is not None and x is not None and not always
            if guard.v is not None and not guard._busy and (x is None or always):
                guard._report(f"{label}()")
            busy, guard._busy = guard._busy, True
            try:
                super().__init__(x, *args, **kwargs)
            finally:
                guard._busy = busy

        def random(self) -> float:
            _note(self, "random")
            return super().random()

        def getrandbits(self, k: int) -> int:
            _note(self, "getrandbits")
            return super().getrandbits(k)

        def randbytes(self, n: int) -> bytes:
            _note(self, "randbytes")
            return super().randbytes(n)

    Guarded.__name__ = base.__name__
    Guarded.__qualname__ = base.__qualname__
    Guarded.__module__ = base.__module__
    return Guarded


def _guarded_datetime(guard: CallGuard) -> type:
    base = _datetime.datetime

    class datetime(base):  # type: ignore[misc, valid-type]  # noqa: N801 - same name
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            if guard.v is not None and not guard._busy:
                guard._report("datetime.datetime.now")
            return guard._quiet(lambda: super(datetime, cls).now(tz))

        @classmethod
        def utcnow(cls) -> Any:
            if guard.v is not None and not guard._busy:
                guard._report("datetime.datetime.utcnow")
            return guard._quiet(lambda: super(datetime, cls).utcnow())

        @classmethod
        def today(cls) -> Any:
            if guard.v is not None and not guard._busy:
                guard._report("datetime.datetime.today")
            return guard._quiet(lambda: super(datetime, cls).today())

    datetime.__module__ = "datetime"
    return datetime


def _guarded_date(guard: CallGuard) -> type:
    base = _datetime.date

    class date(base):  # type: ignore[misc, valid-type]  # noqa: N801 - same name
        @classmethod
        def today(cls) -> Any:
            if guard.v is not None and not guard._busy:
                guard._report("datetime.date.today")
            return guard._quiet(lambda: super(date, cls).today())

    date.__module__ = "datetime"
    return date


# --------------------------------------------------------------------------- mutation

_SHALLOW_LIMIT = 256
"""Top-level containers longer than this are left to the deep (checkpoint) check."""


def shallow_fingerprint(state: Any) -> dict[Any, Any] | list[Any] | None:
    """A shallow copy of ``state``'s top level (``None``: not a dict or list, or long).

    Compare with :func:`shallow_changed` after the call. The copy holds the same value objects,
    so the comparison is C-level and costs a pointer test per value unless one was replaced
    (the verify worker inlines the same two steps in its loop).
    """
    if type(state) in (dict, list) and len(state) <= _SHALLOW_LIMIT:
        return state.copy()
    return None


def shallow_changed(state: Any, fingerprint: dict[Any, Any] | list[Any]) -> bool:
    """Whether ``state``'s top level no longer equals the copy taken before the call."""
    return fingerprint != state


def mutation_path(before: Any, after: Any) -> tuple[str, list[dict[str, Any]]]:
    """The JSON pointer of the first change between two copies of an input, and the patch
    (with the old value beside each replace and remove, for the finding's ``old → new``)."""
    patch = diff(before, after, with_old=True)
    return (patch[0]["path"] if patch else ""), patch
