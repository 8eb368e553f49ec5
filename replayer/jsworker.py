"""Run a JavaScript reducer in one long-lived Node worker: the Python client.

``JsWorker.start("path/to/file.mjs:name")`` starts ``node replayer/js/worker.mjs`` (shipped in
the package; only Node built-ins, Node >= 20.6) and loads the reducer there. The caller then
drives the worker: :meth:`~JsWorker.init`, :meth:`~JsWorker.set_state`,
:meth:`~JsWorker.fold_pages` (pages of recorded events, pipelined), :meth:`~JsWorker.steps`,
:meth:`~JsWorker.get_state`, :meth:`~JsWorker.state_hash`. The worker holds the current state;
Python sees JSON bytes only.

**References.** ``path:name`` with a ``.js``, ``.mjs`` or ``.cjs`` file; ``name`` may be dotted
(``reducers.root``) and ``default`` names a default export (``module.exports`` for CommonJS).
A CommonJS file whose named exports Node cannot detect is searched through ``module.exports``.

**The process.** ``node worker.mjs --reply-fd=N``: requests on the child's stdin; replies on an
extra pipe whose write end the child inherits (``pass_fds``; its number is passed as
``--reply-fd``, usually 3 or a little more), because the reducer may ``console.log``: stdout
goes to ``/dev/null``, stderr to a temporary file whose tail is shown when the worker dies.
The worker reads stdin with blocking ``fs.readSync`` in a synchronous loop after loading.

**Framing** (:mod:`replayer.jsframing`): ``u32 header length, u32 body length`` (little
endian), the header (a JSON object), the body bytes. Replies name parts of their body as
``[offset, length]`` pairs in ``header["parts"]``.

**Requests** (``op`` in the header):

- ``load`` {path, name, guards} (the first request) → {ok, identity} or
  {ok: false, error: {kind: "load", message}}
- ``init`` → state = reducer(undefined, {type: "@@INIT"})
- ``set`` (body: state JSON) → state = JSON.parse(body)
- ``get`` → parts[0] = JSON.stringify(state), after checking that it is JSON
- ``hash`` → {hash}: PROTOCOL §5 state hash, computed in JS (``canonical.mjs``)
- ``fold`` {fid, v0, vs?, every, pace, hashes, keep, last, scan} (body: one JSON array of the
  page's events, ``b"[" + b",".join(payloads) + b"]"``; ``vs`` only when the page's ``v`` are
  not consecutive from ``v0``) → {last_v, checkpoints: [[v, part]], hashes: [[v, hash, problem]],
  states: [[v, part]], mutations, calls}. One ``JSON.parse`` per page: the reducer receives the
  events as ``JSON.parse`` makes them from the recorded bytes.
- ``steps`` {vs, patch?} (body as for fold) → parts: the state JSON after each event; with
  ``patch``, each event's patch from the state before it (``patch.mjs``,
  :mod:`replayer.patch`), then the last state's JSON.

A failed request answers {ok: false, error: {kind, ...}} with kind ``throw`` (v, name, message,
stack), ``notjson`` (v, pointer, problem, message), ``parse`` or ``internal``. After an error
inside a fold, the worker answers the rest of that fold's pages (same ``fid``) with
{skipped: true}, so that the client can drain the pages it had in flight.

**Pipelining.** :meth:`JsWorker.fold_pages` keeps up to :data:`IN_FLIGHT` pages sent ahead of
the replies it has read, so Python reads and sends page N+1 while node reduces page N. The
caller's thread iterates the pages (a log reader's connection stays on the thread that made
it) and writes requests; a reader thread reads replies into a queue, so that a worker writing
a large reply never waits for a Python blocked on a full stdin pipe. Writes are non-blocking
with ``select``, so a worker stuck in an endless loop is seen within ``timeout`` both while
sending and while waiting.

**Numbers.** JavaScript holds numbers as doubles: an integer beyond ±2**53 in an event or a
state (a nanosecond ``ts``) is what ``JSON.parse`` makes of it, and the worker's state hashes
write the double's form; Python's :mod:`devtools.canonical` writes the exact integer.

**States that are not JSON** (NaN, Infinity, undefined inside an array or as the state,
functions, symbols, BigInt, Map, Set, class instances such as Date, cycles, lone surrogates):
:class:`~replayer.errors.StateNotJSON` naming the JSON pointer; object properties that are
``undefined`` are left out, as ``JSON.stringify`` leaves them out.

**Guards** (``guards=True``, for ``rdt verify``): calls of ``Math.random``, ``Date.now``,
``new Date()``/``Date()`` without arguments, ``performance.now``, ``process.hrtime`` (and
``.bigint``), ``crypto.randomUUID``/``getRandomValues`` (``globalThis.crypto`` and
``node:crypto``, whose ``randomBytes``/``randomInt``/``randomFillSync`` too) made while the
reducer runs are recorded per call site (:class:`JsCall`), the functions still working.
Mutation of the input state (:class:`JsMutation`): a shallow check per event (the input's top
level copied before the call, compared by identity after), a ``JSON.stringify`` fingerprint of
the state at each multiple of ``checkpoint_every`` compared again at the next one and at the
fold's end (a deep write in the window), and, with ``mutation_scan_to=v`` (guards or not), a
fingerprint of the input before and after every call up to ``v``, giving the exact ``v`` and
pointer of the first change. None of these freezes anything, so sloppy-mode writes are seen.
Immer-based reducers (Redux Toolkit) never write their base and pass clean.

**Identity.** :attr:`JsWorker.identity` is a JSON text naming the Node version, the export,
the sha256 of the reducer file, of every local module it loaded (ES modules through a
``module.register`` load hook, CommonJS through ``require.cache``; modules imported lazily
later are not seen) and of its nearest ``package.json``, and the ``name@version`` of every
``node_modules`` package it loaded.
"""

from __future__ import annotations

import bisect
import contextlib
import fcntl
import itertools
import os
import queue
import select
import shutil
import signal
import subprocess
import tempfile
import threading
from collections import deque
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from devtools.errors import InvalidJSON, ReducerLoadError
from devtools.jsonutil import loads
from devtools.sanitize import visible
from replayer.errors import JsWorkerError, ReplayError, StateNotJSON
from replayer.jsframing import FrameReader, encode_frame, events_body, parts_of
from replayer.loader import JS_SUFFIXES, is_js_ref

__all__ = [
    "IN_FLIGHT",
    "JS_SUFFIXES",
    "JavaScriptError",
    "JsCall",
    "JsMutation",
    "JsWorker",
    "PageResult",
    "is_js_ref",
]

WORKER = Path(__file__).with_name("js") / "worker.mjs"
IN_FLIGHT = 3
"""Pages sent ahead of the replies read."""
HASH_MODES = ("none", "checkpoints", "each")
_STDERR_TAIL = 4096
PIPE_BYTES = 1 << 20
_INIT = {"type": "@@INIT"}


class JavaScriptError(Exception):
    """What a JavaScript reducer threw, carried in a :class:`ReplayError`.

    ``type(error).__name__`` is the JS error's name (``TypeError`` …) so that
    ``ReplayError``'s message reads as it does for Python.
    """

    def __init__(self, message: str, *, name: str, stack: str) -> None:
        super().__init__(message)
        self.name = name
        self.stack = stack


_ERROR_TYPES: dict[str, type[JavaScriptError]] = {}


def _js_error(name: str, message: str, stack: str) -> JavaScriptError:
    label = name if name.isidentifier() else "JavaScriptError"
    kind = _ERROR_TYPES.get(label)
    if kind is None:
        kind = type(label, (JavaScriptError,), {"__module__": "javascript"})
        _ERROR_TYPES[label] = kind
    return kind(message, name=name, stack=stack)


@dataclass(frozen=True, slots=True)
class JsCall:
    """One call site that used a clock or random source while the reducer ran."""

    name: str
    """What was called, e.g. ``Math.random`` or ``new Date()``."""
    file: str
    line: int
    column: int
    function: str
    v: int
    """The first event whose reduction made this call (0: ``@@INIT``)."""
    count: int
    """Calls from this site so far."""


@dataclass(frozen=True, slots=True)
class JsMutation:
    """A write into the reducer's input state."""

    kind: str
    """``shallow`` (top level, per event), ``window`` (deep, between two fingerprints) or
    ``scan`` (per event, exact)."""
    v: int
    """The event whose reduction wrote (``window``: the window's last event)."""
    path: str | None
    """RFC 6901 pointer of the first changed place (``None`` when not known)."""
    window: tuple[int, int] | None = None
    """``window``: the first and last ``v`` of the events that may have written."""


@dataclass(frozen=True, slots=True)
class PageResult:
    """What one page of a fold gave back."""

    last_v: int
    checkpoints: list[tuple[int, bytes]]
    """``(v, state JSON)`` at the multiples of ``checkpoint_every`` the pacing took."""
    hashes: list[tuple[int, str | None, str | None]]
    """``(v, "sha256:…" or None, problem or None)``."""
    states: dict[int, bytes]
    """The state JSON after each kept ``v`` in this page."""
    calls: list[JsCall]
    """Guarded call sites called during this page (first v ever, count so far)."""
    mutations: list[JsMutation]


def _split_ref(ref: str) -> tuple[Path, str]:
    module, sep, name = ref.strip().rpartition(":")
    if not sep or not module or not name:
        raise ReducerLoadError(
            f"reducer reference {ref!r} must look like path/to/file.js:name "
            "(.js, .mjs or .cjs; :default for a default export)"
        )
    if not module.endswith(JS_SUFFIXES):
        raise ReducerLoadError(
            f"cannot load reducer {ref!r}: {module!r} is not a JavaScript file (.js, .mjs, .cjs)"
        )
    path = Path(module).expanduser()
    if not path.is_file():
        raise ReducerLoadError(f"cannot load reducer {ref!r}: no such file {module!r}")
    return path.resolve(), name


def _one_line(text: str) -> str:
    return visible(" ".join(text.split()))


class JsWorker:
    """One Node process running one JavaScript reducer; also a context manager."""

    def __init__(
        self,
        ref: str,
        process: subprocess.Popen[bytes],
        reply_fd: int,
        stderr: BinaryIO,
        timeout: float,
        guards: bool,
    ) -> None:
        self.ref = ref
        self.identity: bytes = b""
        self.guards = guards
        self.timeout = timeout
        self._process = process
        self._stdin_fd = process.stdin.fileno() if process.stdin else -1
        self._reply_fd = reply_fd
        self._stderr = stderr
        self._replies: queue.Queue[tuple[dict[str, Any], bytes] | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read_replies, name="rdt-js-replies")
        self._reader.daemon = True
        self._reader.start()
        self._dead: str | None = None
        self._folding = False
        self._fids = itertools.count(1)
        self._last_v: int | None = None
        self._calls: dict[tuple[str, str, int, int], JsCall] = {}
        self._mutations: list[JsMutation] = []
        self._closed = False

    # -- starting ------------------------------------------------------------------------------

    @classmethod
    def start(cls, ref: str, *, guards: bool = False, timeout: float = 30.0) -> JsWorker:
        """Start a Node worker and load the reducer ``ref`` names in it.

        Raises:
            ReducerLoadError: no ``node`` on PATH, no such file, a file that does not parse or
                load (the message has node's error and ``file:line``), a missing export, an
                export that is not a function.
        """
        path, name = _split_ref(ref)
        node = shutil.which("node")
        if node is None:
            raise ReducerLoadError(
                f"cannot load reducer {ref!r}: no `node` on PATH "
                "(JavaScript reducers run in Node.js 20.6 or later)"
            )
        read_fd, write_fd = os.pipe()
        stderr = tempfile.TemporaryFile(prefix="rdt-node-")  # noqa: SIM115 — lives with the worker
        try:
            process = subprocess.Popen(
                [node, str(WORKER), f"--reply-fd={write_fd}"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                pass_fds=(write_fd,),
                cwd=str(path.parent),
            )
        except OSError as error:
            os.close(read_fd)
            os.close(write_fd)
            stderr.close()
            raise ReducerLoadError(
                f"cannot load reducer {ref!r}: cannot run node ({error})"
            ) from None
        os.close(write_fd)
        assert process.stdin is not None
        os.set_blocking(process.stdin.fileno(), False)
        _grow_pipe(process.stdin.fileno())
        _grow_pipe(read_fd)
        worker = cls(ref, process, read_fd, stderr, timeout, guards)
        try:
            reply, _ = worker._call(
                {"op": "load", "path": str(path), "name": name, "guards": guards},
                what="loading the reducer",
            )
        except JsWorkerError as error:
            worker.close()
            raise ReducerLoadError(f"cannot load reducer {ref!r}: {error}") from None
        if not reply.get("ok"):
            worker.close()
            message = _one_line(str(reply.get("error", {}).get("message", "unknown error")))
            raise ReducerLoadError(f"cannot load reducer {ref!r}: {message}")
        worker.identity = str(reply.get("identity", "")).encode()
        return worker

    # -- the simple requests -------------------------------------------------------------------

    def init(self) -> None:
        """The current state becomes ``reducer(undefined, {type: "@@INIT"})``.

        Raises:
            ReplayError: the reducer threw (``v=0``).
        """
        reply, _ = self._call({"op": "init"}, what="reducing @@INIT (v=0)")
        self._take_calls(reply)
        if not reply.get("ok"):
            raise self._failure(reply["error"], {0: orjson.dumps(_INIT)})
        self._last_v = 0

    def set_state(self, state_json: bytes) -> None:
        """The current state becomes ``JSON.parse(state_json)``.

        Raises:
            InvalidJSON: ``state_json`` does not parse.
        """
        reply, _ = self._call({"op": "set"}, state_json, what="setting the state")
        if not reply.get("ok"):
            raise self._failure(reply["error"], {})
        self._last_v = None

    def get_state(self) -> bytes:
        """The current state's JSON (``JSON.stringify``).

        Raises:
            StateNotJSON: the state holds something JSON cannot carry (names the pointer).
        """
        reply, parts = self._call({"op": "get", "v": self._last_v}, what="writing the state")
        if not reply.get("ok"):
            raise self._failure(reply["error"], {})
        return parts[0]

    def state_hash(self) -> str:
        """``"sha256:…"`` of the current state (PROTOCOL.md §5), computed in the worker.

        Raises:
            StateNotJSON: the state holds something JSON cannot carry (names the pointer).
        """
        reply, _ = self._call({"op": "hash", "v": self._last_v}, what="hashing the state")
        if not reply.get("ok"):
            raise self._failure(reply["error"], {})
        return str(reply["hash"])

    def steps(
        self, rows: Sequence[tuple[int, bytes]], *, patch: bool = False
    ) -> list[tuple[int, bytes]]:
        """Reduce ``rows`` into the current state; the state JSON after each event.

        With ``patch``, each event's part is instead the patch from the state before it
        (:mod:`replayer.patch`), and one more part, ``(last v, state JSON)``, ends the list.

        Raises:
            ReplayError: the reducer threw (the state stays that before the event).
            StateNotJSON: a state after one of the events (with ``patch``: a changed part of
                it) is not JSON.
        """
        if not rows:
            return []
        vs = [v for v, _ in rows]
        header: dict[str, Any] = {"op": "steps", "vs": vs}
        if patch:
            header["patch"] = True
        reply, parts = self._call(
            header, events_body(rows), what=f"reducing {_span(vs[0], vs[-1])}"
        )
        self._take_calls(reply)
        if not reply.get("ok"):
            raise self._failure(reply["error"], dict(rows))
        self._last_v = vs[-1]
        return list(zip(vs + [vs[-1]] if patch else vs, parts, strict=True))

    # -- the fold ------------------------------------------------------------------------------

    def fold_pages(
        self,
        pages: Iterable[Sequence[tuple[int, bytes]]],
        *,
        checkpoint_every: int = 0,
        pace: bool = True,
        hashes: str = "none",
        keep: Collection[int] = (),
        stop_at: int | None = None,
        mutation_scan_to: int | None = None,
        hash_at: Collection[int] = (),
    ) -> Iterator[PageResult]:
        """Fold pages of ``(v, event JSON bytes)`` into the current state, pipelined.

        Args:
            pages: the events, in increasing ``v``, a page at a time (empty pages are skipped).
            checkpoint_every: K; checkpoints are offered at multiples of K (0: none).
            pace: skip checkpoints that would cost more than ~1% of the worker's CPU time (floor
                5 ms), never letting 60 ms of reductions pass without one (see
                :class:`replayer.checkpoints.Pacing`); False: every multiple of K.
            hashes: ``"none"``; ``"checkpoints"``: at every multiple of K and after the last
                event folded; ``"each"``: after every event.
            keep: the ``v`` whose state JSON is wanted in :attr:`PageResult.states`.
            stop_at: stop after this ``v``.
            mutation_scan_to: fingerprint the input state around every call up to this ``v``
                and report the first write exactly (see the module docstring).
            hash_at: also the state hash after each of these ``v`` (verify's probes of the
                recorded hashes and its per-event windows), in :attr:`PageResult.hashes`.

        Yields:
            One :class:`PageResult` per page, in order. Leaving the iteration early lets the
            pages already sent (at most :data:`IN_FLIGHT`) be reduced too.

        Raises:
            ReplayError: the reducer threw (the state stays that before the event).
            StateNotJSON: a checkpoint or kept state is not JSON.
            InvalidJSON: a page's events do not parse.
            JsWorkerError: the worker died or hung.
        """
        if hashes not in HASH_MODES:
            raise ValueError(f"hashes must be one of {HASH_MODES}, not {hashes!r}")
        self._check_usable()
        keep_sorted = sorted(keep)
        hash_sorted = sorted(hash_at)
        fid = next(self._fids)
        base = {
            "op": "fold",
            "fid": fid,
            "every": max(0, int(checkpoint_every)),
            "pace": bool(pace),
            "hashes": hashes,
            "scan": mutation_scan_to,
        }
        plan = _plan(pages, stop_at)
        inflight: deque[Sequence[tuple[int, bytes]]] = deque()
        exhausted = False
        self._folding = True
        try:
            while True:
                while not exhausted and len(inflight) < IN_FLIGHT:
                    item = next(plan, None)
                    if item is None:
                        exhausted = True
                        break
                    rows, last = item
                    lo, hi = rows[0][0], rows[-1][0]
                    header = dict(base, v0=lo, last=last)
                    if hi - lo != len(rows) - 1:
                        header["vs"] = [v for v, _ in rows]
                    if keep_sorted:
                        start = bisect.bisect_left(keep_sorted, lo)
                        end = bisect.bisect_right(keep_sorted, hi)
                        header["keep"] = keep_sorted[start:end]
                    if hash_sorted:
                        start = bisect.bisect_left(hash_sorted, lo)
                        end = bisect.bisect_right(hash_sorted, hi)
                        if end > start:
                            header["hash_at"] = hash_sorted[start:end]
                    inflight.append(rows)
                    self._send(header, events_body(rows), what=self._pending_what(inflight))
                if not inflight:
                    return
                rows = inflight[0]
                reply, parts = self._receive(what=f"reducing {_span(rows[0][0], rows[-1][0])}")
                inflight.popleft()
                if not reply.get("ok"):
                    exhausted = True
                    self._drain(inflight)
                    raise self._failure(reply["error"], dict(rows))
                if reply.get("skipped"):
                    continue
                result = self._page_result(reply, parts)
                self._last_v = result.last_v
                yield result
        finally:
            if inflight and self._dead is None:
                self._drain(inflight)
            self._folding = False

    def _pending_what(self, inflight: deque[Sequence[tuple[int, bytes]]]) -> str:
        first, last = inflight[0], inflight[-1]
        return f"reducing {_span(first[0][0], last[-1][0])}"

    def _drain(self, inflight: deque[Sequence[tuple[int, bytes]]]) -> None:
        while inflight:
            rows = inflight[0]
            reply, _ = self._receive(what=f"reducing {_span(rows[0][0], rows[-1][0])}")
            inflight.popleft()
            if reply.get("ok") and not reply.get("skipped"):
                self._last_v = reply.get("last_v", self._last_v)

    def _page_result(self, reply: dict[str, Any], parts: list[bytes]) -> PageResult:
        calls = self._take_calls(reply)
        mutations = [
            JsMutation(
                kind=str(m["kind"]),
                v=int(m["v"]),
                path=m.get("path"),
                window=tuple(m["window"]) if m.get("window") else None,  # type: ignore[arg-type]
            )
            for m in reply.get("mutations", ())
        ]
        self._mutations.extend(mutations)
        return PageResult(
            last_v=int(reply["last_v"]),
            checkpoints=[(v, parts[i]) for v, i in reply.get("checkpoints", ())],
            hashes=[(v, h, p) for v, h, p in reply.get("hashes", ())],
            states={v: parts[i] for v, i in reply.get("states", ())},
            calls=calls,
            mutations=mutations,
        )

    # -- guards --------------------------------------------------------------------------------

    @property
    def calls(self) -> list[JsCall]:
        """Every guarded call site seen so far in this worker, by first ``v``."""
        return sorted(self._calls.values(), key=lambda c: (c.v, c.file, c.line, c.column))

    @property
    def mutations(self) -> list[JsMutation]:
        """Every mutation reported so far in this worker (at most 20 in all)."""
        return list(self._mutations)

    def _take_calls(self, reply: dict[str, Any]) -> list[JsCall]:
        out = []
        for entry in reply.get("calls", ()):
            call = JsCall(
                name=str(entry["name"]),
                file=str(entry["file"]),
                line=int(entry["line"]),
                column=int(entry["column"]),
                function=str(entry["function"]),
                v=int(entry["v"]),
                count=int(entry["count"]),
            )
            self._calls[(call.name, call.file, call.line, call.column)] = call
            out.append(call)
        return out

    # -- errors --------------------------------------------------------------------------------

    def _failure(self, error: dict[str, Any], payloads: dict[int, bytes]) -> Exception:
        kind = error.get("kind")
        if kind == "throw":
            v = int(error.get("v") or 0)
            raw = payloads.get(v)
            event: Any = None
            if raw is not None:
                try:
                    event = loads(raw)
                except ValueError:
                    event = raw.decode("utf-8", "replace")
            js = _js_error(
                str(error.get("name") or "Error"),
                _one_line(str(error.get("message", ""))),
                str(error.get("stack", "")),
            )
            return ReplayError(v, event, js, js.stack)
        if kind == "notjson":
            v = error.get("v")
            where = "the current state" if v is None else f"the state after v={v}"
            return StateNotJSON(f"{where} is not JSON ({_one_line(str(error.get('message')))})")
        if kind == "parse":
            for v, raw in payloads.items():
                try:
                    loads(raw)
                except ValueError as problem:
                    return InvalidJSON(f"event v={v} is not valid JSON ({_one_line(str(problem))})")
            return InvalidJSON(f"not valid JSON ({_one_line(str(error.get('message')))})")
        return JsWorkerError(
            f"the Node worker failed ({kind}): {_one_line(str(error.get('message', '')))}"
        )

    def _check_usable(self) -> None:
        if self._closed:
            raise JsWorkerError(f"the Node worker for {self.ref!r} is closed")
        if self._dead is not None:
            raise JsWorkerError(self._dead)
        if self._folding:
            raise RuntimeError("a fold_pages iteration of this worker is still running")

    def _died(self, what: str, *, hung: bool) -> JsWorkerError:
        if hung:
            self._kill()
            message = (
                f"the JavaScript reducer {self.ref!r} did not answer within {self.timeout:g} s "
                f"while {what}; the Node worker was stopped"
            )
        else:
            code = self._wait_exit()
            if code is None:
                how = "closed its reply pipe"
            elif code < 0:
                try:
                    how = f"was killed by {signal.Signals(-code).name}"
                except ValueError:
                    how = f"was killed by signal {-code}"
            else:
                how = f"exited with code {code}"
            message = f"the Node worker running {self.ref!r} {how} while {what}"
        tail = self._stderr_tail()
        if tail:
            message += f"; node's stderr: {tail}"
        self._dead = message
        return JsWorkerError(message)

    def _wait_exit(self) -> int | None:
        try:
            return self._process.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            self._kill()
            return None

    def _stderr_tail(self) -> str:
        try:
            fd = self._stderr.fileno()
            size = os.fstat(fd).st_size
            data = os.pread(fd, _STDERR_TAIL, max(0, size - _STDERR_TAIL))
        except (OSError, ValueError):
            return ""
        lines = [line.strip() for line in data.decode("utf-8", "replace").splitlines()]
        lines = [line for line in lines if line][-6:]
        return visible(" | ".join(lines))

    # -- the pipes -----------------------------------------------------------------------------

    def _call(
        self, header: dict[str, Any], body: bytes = b"", *, what: str
    ) -> tuple[dict[str, Any], list[bytes]]:
        if header.get("op") != "load":
            self._check_usable()
        self._send(header, body, what=what)
        return self._receive(what=what)

    def _send(self, header: dict[str, Any], body: bytes, *, what: str) -> None:
        if self._dead is not None:
            raise JsWorkerError(self._dead)
        fd = self._stdin_fd
        for chunk in encode_frame(header, body):
            view = memoryview(chunk)
            while view:
                try:
                    written = os.write(fd, view)
                except BlockingIOError:
                    written = 0
                except (BrokenPipeError, OSError):
                    raise self._died(what, hung=False) from None
                view = view[written:]
                if view:
                    _, ready, _ = select.select([], [fd], [], self.timeout)
                    if not ready:
                        raise self._died(what, hung=True)

    def _receive(self, *, what: str) -> tuple[dict[str, Any], list[bytes]]:
        if self._dead is not None:
            raise JsWorkerError(self._dead)
        try:
            item = self._replies.get(timeout=self.timeout)
        except queue.Empty:
            raise self._died(what, hung=True) from None
        if item is None:
            self._replies.put(None)  # later readers see the end too
            raise self._died(what, hung=False)
        header, body = item
        return header, parts_of(header, body)

    def _read_replies(self) -> None:
        reader = FrameReader()
        fd = self._reply_fd
        try:
            while True:
                data = os.read(fd, max(1 << 16, min(reader.wanted(), 1 << 24)))
                if not data:
                    break
                for frame in reader.feed(data):
                    self._replies.put(frame)
        except OSError:
            pass
        self._replies.put(None)

    # -- closing -------------------------------------------------------------------------------

    def _kill(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=5.0)

    def close(self) -> None:
        """Stop the worker (closing its stdin ends it; killed if it does not exit in 2 s)."""
        if self._closed:
            return
        self._closed = True
        if self._process.stdin is not None:
            with contextlib.suppress(OSError):
                self._process.stdin.close()
        try:
            self._process.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            self._kill()
        self._reader.join(timeout=2.0)
        with contextlib.suppress(OSError):
            os.close(self._reply_fd)
        self._stderr.close()

    def __enter__(self) -> JsWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _grow_pipe(fd: int) -> None:
    """Ask Linux for a 1 MiB pipe buffer (a page of events fits): fewer wake-ups per page."""
    setpipe = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setpipe is not None:
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, setpipe, PIPE_BYTES)


def _span(lo: int, hi: int) -> str:
    return f"v={lo}" if lo == hi else f"v={lo}..{hi}"


def _plan(
    pages: Iterable[Sequence[tuple[int, bytes]]], stop_at: int | None
) -> Iterator[tuple[Sequence[tuple[int, bytes]], bool]]:
    """The pages to send, each with whether it is the last (one page of lookahead)."""
    previous: Sequence[tuple[int, bytes]] | None = None
    for page in pages:
        if not page:
            continue
        reached = False
        if stop_at is not None:
            if page[0][0] > stop_at:
                break
            if page[-1][0] >= stop_at:
                reached = True
                page = [row for row in page if row[0] <= stop_at]
        if previous is not None:
            yield previous, False
        previous = page
        if reached:
            break
    if previous is not None:
        yield previous, True
