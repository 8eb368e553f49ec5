"""The checkpoint cache: states after multiples of K events, as JSON bytes.

Small replays keep their checkpoints in memory. Large ones persist them in the log's
checkpoint table (``LogReader.checkpoint_store()``: ``hashes`` / ``state`` / ``save``)
under a key that hashes the reducer's code, its reference, K, the source kind and the start
state, so a second open is instant and a changed reducer never reuses stale states. Persisted
states are written in batches by a background thread and then dropped from memory, so memory
stays flat in the log's length.

Checkpoints fall on multiples of K, but not every multiple gets one: :class:`Pacing` skips
boundaries while the checkpoints taken so far have cost more than a small share of the replay
(serialising and writing a large state every K events would otherwise cost more than the
reductions between them), and never lets more than a few tens of milliseconds of reductions
pass without one, so a later seek stays fast.
"""

from __future__ import annotations

import bisect
import hashlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson

from devtools.jsonutil import dumps
from devtools.jsonutil import loads as exact_loads
from replayer.errors import StateNotJSON
from replayer.source import may_hold_big_int

BATCH_BYTES = 2 * 2**20
"""Hand checkpoints to the writer thread in batches of about this many bytes (and when a
build finishes): few commits, and memory bounded by this, not by the log's length …"""
IN_FLIGHT = 3
"""… times this many batches waiting to be written, at most."""


SHARE = 0.01
"""Checkpoints may cost the replay's thread at most this share of its time (serialising; the
writing happens on the writer thread) …"""
FLOOR_S = 0.005
"""… or this many seconds, whichever is more (small replays checkpoint every K events)."""
SEEK_S = 0.06
"""At most this many seconds of reductions between two checkpoints (a seek's worst case)."""


def load_state(data: bytes) -> Any:
    """Parse checkpoint bytes; integers of any size stay exact.

    One C-level scan decides whether plain ``orjson.loads`` is exact (the general-purpose
    :func:`devtools.jsonutil.loads` runs a regex over the whole text: ~10 ms on a 120 kB state).
    """
    if may_hold_big_int(data):
        return exact_loads(data)
    return orjson.loads(data)


@dataclass(slots=True)
class Pacing:
    """Which multiples of K get a checkpoint, from the measured cost of checkpoints and replay.

    A checkpoint is taken when what checkpoints have cost so far, plus the last one's cost, fits
    in ``max(floor, share × replay time)``, or when ``seek`` seconds of reductions have passed
    since the last one. Times are readings of the replay thread's CPU clock
    (``time.thread_time()``) passed in by the caller: what a later seek will cost does not depend
    on how busy the machine was during this replay.
    """

    started: float
    share: float = SHARE
    floor: float = FLOOR_S
    seek: float = SEEK_S
    spent: float = 0.0
    """Seconds spent taking (serialising, hashing, writing) checkpoints."""
    last_cost: float = 0.0
    since: float = field(default=0.0)
    """When the last checkpoint was done (``started`` before the first)."""

    def __post_init__(self) -> None:
        self.since = self.started

    def due(self, now: float) -> bool:
        """Whether a checkpoint should be taken at this boundary."""
        if now - self.since >= self.seek:
            return True
        replay = now - self.started - self.spent
        return self.spent + self.last_cost <= max(self.floor, self.share * replay)

    def taken(self, began: float, ended: float) -> None:
        """Account for a checkpoint taken between ``began`` and ``ended``."""
        self.last_cost = ended - began
        self.spent += self.last_cost
        self.since = ended


def checkpoint_key(identity: bytes, every: int, source: str, start: bytes) -> str:
    """The cache key: changes whenever the reducer, K, the source or the start state does."""
    digest = hashlib.sha256()
    for part in (identity, str(every).encode(), source.encode(), start):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return "rdt1:" + digest.hexdigest()


def encode_state(state: Any, v: int) -> bytes:
    """The state as JSON bytes.

    Raises:
        StateNotJSON: the reducer returned something JSON cannot carry.
    """
    try:
        return dumps(state)
    except (TypeError, ValueError) as error:
        raise StateNotJSON(f"the state after v={v} is not JSON ({error})") from None


class CheckpointCache:
    """Checkpoint ``v`` → state bytes, in memory or persisted through a ``LogReader``.

    Persisting runs on one background thread: the replay's own thread only serialises a state
    and hands batches of them over; hashing and the database write (both release the GIL) run
    beside the replay. Until its batch is written a state stays in memory, so a seek never
    waits for the writer; at most ``IN_FLIGHT`` batches wait, which bounds memory.
    """

    def __init__(self, reader: Any, key: str, *, persist: bool) -> None:
        self.reader = reader
        self.key = key
        self.persist = persist
        self.vs: list[int] = []
        self._memory: dict[int, bytes] = {}
        self._pending: list[tuple[int, bytes]] = []
        self._pending_bytes = 0
        self._saving: deque[tuple[Future[None], list[int]]] = deque()
        self._writer: ThreadPoolExecutor | None = None
        if persist:
            try:
                self.vs = [v for v, _ in reader.checkpoint_store().hashes(key)]
            except Exception:  # noqa: BLE001 — a cache we cannot read is just empty
                self.persist = False
        self.loaded = len(self.vs)
        """How many checkpoints came from the log's cache."""

    def __len__(self) -> int:
        return len(self.vs)

    @property
    def last(self) -> int | None:
        return self.vs[-1] if self.vs else None

    def at_or_before(self, v: int) -> int | None:
        """The latest checkpoint ``<= v``."""
        i = bisect.bisect_right(self.vs, v)
        return self.vs[i - 1] if i else None

    def between(self, lo: int, hi: int) -> list[int]:
        """Checkpoints strictly between ``lo`` and ``hi``."""
        return self.vs[bisect.bisect_right(self.vs, lo) : bisect.bisect_left(self.vs, hi)]

    def add(self, v: int, state: Any) -> None:
        """Record the state after ``v`` (serialised once, here)."""
        if self.vs and v <= self.vs[-1]:
            return
        self.add_encoded(v, encode_state(state, v))

    def add_encoded(self, v: int, data: bytes) -> None:
        """Record the state after ``v`` given as its JSON bytes (a Node worker's states)."""
        if self.vs and v <= self.vs[-1]:
            return
        self.vs.append(v)
        self._memory[v] = data
        if self.persist:
            self._pending.append((v, data))
            self._pending_bytes += len(data)
            if self._pending_bytes >= BATCH_BYTES:
                self._hand_over()

    def _hand_over(self) -> None:
        """Give the pending states to the writer thread; wait if too many batches queue."""
        rows, self._pending, self._pending_bytes = self._pending, [], 0
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="rdt-checkpoints")
        self._saving.append((self._writer.submit(self._save, rows), [v for v, _ in rows]))
        while len(self._saving) > IN_FLIGHT or (self._saving and self._saving[0][0].done()):
            self._settle()

    def _save(self, rows: list[tuple[int, bytes]]) -> None:
        """Hash and write one batch (on the writer thread)."""
        hashed = [(v, data, "sha256:" + hashlib.sha256(data).hexdigest()) for v, data in rows]
        self.reader.checkpoint_store().save(self.key, hashed)

    def _settle(self) -> None:
        """Wait for the oldest batch; once written, its states leave memory."""
        future, vs = self._saving.popleft()
        try:
            future.result()
        except Exception:  # noqa: BLE001 — the cache is an optimisation, never a failure
            self.persist = False  # a read-only log: keep this and later states in memory
            return
        for v in vs:
            self._memory.pop(v, None)

    def flush(self) -> None:
        """Persist pending checkpoints and wait until they are written; on failure (a
        read-only log) keep them in memory."""
        if self._pending and self.persist:
            self._hand_over()
        self._pending, self._pending_bytes = [], 0
        while self._saving:
            self._settle()

    def close(self) -> None:
        """:meth:`flush`, then stop the writer thread."""
        self.flush()
        if self._writer is not None:
            self._writer.shutdown()
            self._writer = None

    def state(self, v: int) -> Any:
        """A fresh copy of the state after checkpoint ``v``."""
        data = self._memory.get(v)
        if data is None:
            data = self.reader.checkpoint_store().state(self.key, v)
            if data is None:
                raise KeyError(v)
        return load_state(data)
