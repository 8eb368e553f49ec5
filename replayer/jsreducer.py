"""A JavaScript reducer behind the :mod:`replayer.fold` seam, run in one Node worker.

:class:`JsReducer` adapts a :class:`~replayer.jsworker.JsWorker` (one long-lived ``node``
process, pages of recorded event bytes in over a pipe, states and hashes out) to the
:class:`~replayer.fold.ReducerRuntime` protocol, so the replay engine, bisect, what-if, compare,
gen-test and the TUI drive a JavaScript reducer exactly as they drive a Python one:

- the hot loop (:meth:`JsReducer.fold_pages`) hands the worker whole store pages of the
  recorded JSON bytes — events reach the reducer as ``JSON.parse`` makes them — and the worker
  sends back the states after multiples of K as JSON (it paces them itself);
- per-event walks (:meth:`JsReducer.steps`: search, bisect's last window, gen-test, compare)
  send the decoded events re-encoded, a batch at a time, and get each event's patch back
  (:mod:`replayer.patch`), so consecutive Python states share what the event left alone, as
  a Python reducer's do; the batch's last state comes whole too, to check the patched one;
- what-if compares the two timelines by per-event state hashes computed in the worker, so no
  state crosses the pipe per event.

States on the Python side are the JSON values of the worker's states (``JSON.stringify``, read
with exact integers). The worker holds one current state; this class tracks which Python state
object it is, so consecutive folds do not send it back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import orjson

from devtools.jsonutil import dumps
from replayer.checkpoints import load_state
from replayer.fold import CheckpointSink, Page, Progress, Timelines
from replayer.jsworker import JsWorker
from replayer.patch import apply_patch
from replayer.source import Loader

log = logging.getLogger(__name__)

STEP_BATCH = 256
"""Events per request in a per-event walk."""


class JsReducer:
    """A JavaScript reducer (``path/to/file.js|.mjs|.cjs:name``) in a Node worker."""

    language = "javascript"

    def __init__(self, worker: JsWorker) -> None:
        self.worker = worker
        self.ref: str | None = worker.ref
        self._held: Any = _NOTHING
        """The Python state object the worker's current state equals (``_NOTHING``: unknown)."""
        self.patches = True
        """Per-event walks get each state as a patch of the one before (False once a reducer
        was seen changing a state in place: then whole)."""

    @classmethod
    def load(cls, ref: str, *, guards: bool = False) -> JsReducer:
        """Start a worker for ``ref``.

        Raises:
            ReducerLoadError: no ``node``, a file that does not load, a missing export or one
                that is not a function (one line).
        """
        return cls(JsWorker.start(ref, guards=guards))

    def __repr__(self) -> str:
        return f"JsReducer({self.ref!r})"

    # ---- the worker's current state

    def _hold(self, state: Any) -> None:
        if state is not self._held:
            self.worker.set_state(dumps(state))
            self._held = state

    def _take(self) -> Any:
        state = load_state(self.worker.get_state())
        self._held = state
        return state

    # ---- ReducerRuntime

    def initial(self) -> Any:
        self.worker.init()
        return self._take()

    def step(self, state: Any, v: int, event: Any) -> Any:
        for _v, _event, after in self.steps(state, [(v, event)]):
            return after
        raise AssertionError("unreachable: one event gives one state")

    def steps(
        self, state: Any, events: Iterable[tuple[int, Any]]
    ) -> Iterator[tuple[int, Any, Any]]:
        batch: list[tuple[int, Any]] = []
        first = True
        for item in events:
            batch.append(item)
            if len(batch) >= STEP_BATCH:
                state = yield from self._step_batch(state, batch, first)
                batch, first = [], False
        if batch:
            yield from self._step_batch(state, batch, first)

    def _step_batch(
        self, state: Any, batch: list[tuple[int, Any]], first: bool
    ) -> Iterator[tuple[int, Any, Any]]:
        if first:
            self._hold(state)
        rows = [(v, dumps(event)) for v, event in batch]
        if self.patches:
            afters = self._patched(state, rows)
        else:
            afters = [load_state(data) for _v, data in self.worker.steps(rows)]
        # The worker is at the batch's last state now: a walk left inside the batch (bisect
        # stops at its first hit) must not leave an earlier state named as the worker's.
        self._held = afters[-1] if afters else state
        after = state
        for (v, event), after in zip(batch, afters, strict=True):
            yield v, event, after
        return after

    def _patched(self, state: Any, rows: list[tuple[int, bytes]]) -> list[Any]:
        """The states after ``rows`` from the worker's patches (they share what the events
        left alone); checked against the last state whole. A reducer that changed its input
        in place makes them differ: then this batch and every later one come whole."""
        parts = self.worker.steps(rows, patch=True)
        afters, after = [], state
        for _v, data in parts[:-1]:
            after = apply_patch(after, load_state(data))
            afters.append(after)
        whole = load_state(parts[-1][1])
        if _same_json(after, whole):
            return afters
        log.warning(
            "the JavaScript reducer changed a state in place (%s): states are sent whole "
            "from now on",
            self.ref,
        )
        self.patches = False
        self._held = _NOTHING
        self._hold(state)
        return [load_state(data) for _v, data in self.worker.steps(rows)]

    def fold_pages(
        self,
        state: Any,
        pages: Iterable[tuple[Page, Loader]],
        *,
        every: int = 0,
        sink: CheckpointSink | None = None,
        progress: Progress | None = None,
    ) -> tuple[int | None, Any]:
        self._hold(state)
        self._held = _NOTHING  # the worker's state moves on from here
        checkpoint = sink is not None and every > 0
        last: int | None = None
        try:
            for result in self.worker.fold_pages(
                (page for page, _loads in pages), checkpoint_every=every if checkpoint else 0
            ):
                for v, data in result.checkpoints:
                    sink.add_encoded(v, data)  # type: ignore[union-attr]
                if result.last_v is not None:
                    last = result.last_v
                    if progress is not None:
                        progress.advance(last)
        finally:
            if sink is not None:
                sink.flush()
        return last, (self._take() if last is not None else state)

    def what_if(
        self,
        state: Any,
        events: Iterable[tuple[int, Any]],
        skip: Iterable[int],
        *,
        original_to_end: bool = True,
    ) -> Timelines:
        """Both timelines folded in the worker, compared by per-event state hashes."""
        skipped = set(skip)
        rows = [(v, dumps(event)) for v, event in events]
        original_hashes = self._hashes(state, rows)
        original = self._take() if original_to_end else None
        kept = [row for row in rows if row[0] not in skipped]
        alternative_hashes = self._hashes(state, kept)
        alternative = self._take() if kept else state
        divergent: int | None = None
        current = original_hashes.get(rows[0][0] - 1) if rows else None
        for v, _payload in rows:
            if v in alternative_hashes:
                current = alternative_hashes[v]
            if current != original_hashes.get(v):
                divergent = v
                break
        if divergent is None and original is None:
            original = alternative
        return Timelines(divergent, original, alternative)

    def _hashes(self, state: Any, rows: Sequence[tuple[int, bytes]]) -> dict[int, str | None]:
        """The state hash after each row's event, folding from ``state`` (the first row's
        predecessor's hash under ``v - 1``)."""
        self._held = _NOTHING
        self.worker.set_state(dumps(state))
        out: dict[int, str | None] = {}
        if rows:
            out[rows[0][0] - 1] = self.worker.state_hash()
        pages = [rows[i : i + 1000] for i in range(0, len(rows), 1000)]
        for result in self.worker.fold_pages(pages, hashes="each"):
            for v, h, _problem in result.hashes:
                out[v] = h
        return out

    def identity(self) -> bytes:
        return self.worker.identity

    def close(self) -> None:
        self.worker.close()


class _Nothing:
    def __repr__(self) -> str:
        return "<no state>"


_NOTHING: Any = _Nothing()


def _same_json(a: Any, b: Any) -> bool:
    """Whether two parsed states are the same JSON, key order and ``true`` vs ``1`` included."""
    try:
        return orjson.dumps(a) == orjson.dumps(b)
    except TypeError:  # an integer past 64 bits: orjson cannot write it
        return dumps(a) == dumps(b)
