"""Windowed access to the rows of a timeline: a log read page by page, or a live feed in memory.

The event list asks :meth:`RowSource.peek` for the rows it is about to draw; rows not in the
cache are read a page at a time by :meth:`RowSource.load`, which the list calls from a worker
thread. A log's rows are never all loaded: a million-event log costs a few pages of memory.
:class:`FilteredSource` shows the rows of another source that match a filter — hiding rows,
never dropping them.

A :class:`Timeline` bundles the two row sources (events, messages) with the look-ups the detail
tabs need (snapshots, a message's replies, the marks).
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from devtools.logux_links import Link, LinkIndex
from devtools.model import Event, Mark, Message, Snapshot, WorkerSnapshot
from tui.links import log_links
from tui.rows import Row, RowKind, event_row, message_row
from tui.workers import WorkerAlert, alerts_of

PAGE = 128
"""Rows read per page."""
CACHE_PAGES = 64
"""Pages kept per source (least recently used are dropped)."""


class RowSource(Protocol):
    """What the event list reads from."""

    kind: RowKind

    def __len__(self) -> int: ...

    def peek(self, index: int) -> Row | None:
        """The row at ``index`` if it is at hand (never blocks)."""

    def is_loaded(self, index: int) -> bool:
        """Whether :meth:`peek` has an answer for ``index`` (a row, or a known hole)."""

    def load(self, index: int) -> None:
        """Read the page holding ``index`` (blocking; call from a worker thread)."""

    def index_of(self, key: int) -> int | None:
        """The index of the row with ``v``/``seq`` ``key``, or the next one after it."""


class LogRowSource:
    """Rows of one kind of a :class:`devtools.store.LogReader`, read in pages of :data:`PAGE`.

    Events are numbered without gaps, so row ``i`` is ``v = first_v + i``; messages are
    addressed by ``seq`` the same way (a seq lost to a recorded gap shows as a hole).
    """

    def __init__(self, reader: Any, kind: RowKind) -> None:
        self.kind = kind
        self._reader = reader
        self._lock = threading.Lock()
        self._pages: OrderedDict[int, list[Row | None]] = OrderedDict()
        if kind == "event":
            first, last = reader.first_v(), reader.last_v()
        else:
            first, last = (1, reader.last_seq())
        self.first = first or 1
        self._count = 0 if last is None or first is None else max(0, last - self.first + 1)

    def __len__(self) -> int:
        return self._count

    def key_at(self, index: int) -> int:
        return self.first + index

    def peek(self, index: int) -> Row | None:
        page = self._pages.get(index // PAGE)
        if page is None:
            return None
        self._pages.move_to_end(index // PAGE)
        return page[index % PAGE]

    def is_loaded(self, index: int) -> bool:
        return index // PAGE in self._pages

    def load(self, index: int) -> None:
        number = index // PAGE
        if number in self._pages:
            return
        start = self.first + number * PAGE
        stop = min(start + PAGE, self.first + self._count) - 1
        page: list[Row | None] = [None] * (stop - start + 1)
        with self._lock:
            if self.kind == "event":
                for event in self._reader.events(start, stop):
                    page[event.v - start] = event_row(event)
            else:
                for message in self._reader.messages(start, stop):
                    page[message.seq - start] = message_row(message)
        self._pages[number] = page
        while len(self._pages) > CACHE_PAGES:
            self._pages.popitem(last=False)

    def index_of(self, key: int) -> int | None:
        index = max(0, key - self.first)
        return index if index < self._count else None

    def scan(
        self,
        match: Callable[[Row], bool],
        progress: Callable[[int, int], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> list[int]:
        """The indices of the rows that ``match``, streaming the whole log once (blocking)."""
        found: list[int] = []
        done = 0
        with self._lock:
            records: Iterable[Event | Message] = (
                self._reader.events() if self.kind == "event" else self._reader.messages()
            )
            for record in records:
                row = event_row(record) if self.kind == "event" else message_row(record)  # type: ignore[arg-type]
                if match(row):
                    found.append(row.key - self.first)
                done += 1
                if done % 5000 == 0:
                    if cancelled is not None and cancelled():
                        break
                    if progress is not None:
                        progress(done, self._count)
        return found


class MemoryRowSource:
    """Rows held in memory, appended in key order (the live feed)."""

    def __init__(self, kind: RowKind) -> None:
        self.kind = kind
        self.rows: list[Row] = []
        self._keys: list[int] = []

    def __len__(self) -> int:
        return len(self.rows)

    def append(self, row: Row) -> bool:
        """Add ``row`` after the others; ``False`` (ignored) when its key was already seen."""
        if self._keys and row.key <= self._keys[-1]:
            return False  # a record seen twice (replay then live) is shown once
        self.rows.append(row)
        self._keys.append(row.key)
        return True

    def peek(self, index: int) -> Row | None:
        return self.rows[index] if 0 <= index < len(self.rows) else None

    def is_loaded(self, index: int) -> bool:
        return True

    def load(self, index: int) -> None:
        return None

    def index_of(self, key: int) -> int | None:
        index = bisect.bisect_left(self._keys, key)
        return index if index < len(self._keys) else None

    def scan(
        self,
        match: Callable[[Row], bool],
        progress: Callable[[int, int], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> list[int]:
        return [i for i, row in enumerate(list(self.rows)) if match(row)]


class FilteredSource:
    """The rows of ``base`` at ``indices`` (ascending): what a filter leaves visible."""

    def __init__(self, base: Any, indices: list[int], match: Callable[[Row], bool]) -> None:
        self.kind = base.kind
        self.base = base
        self.indices = indices
        self.match = match
        self._seen = len(base)

    def __len__(self) -> int:
        return len(self.indices)

    def peek(self, index: int) -> Row | None:
        return self.base.peek(self.indices[index]) if 0 <= index < len(self.indices) else None

    def is_loaded(self, index: int) -> bool:
        return 0 <= index < len(self.indices) and self.base.is_loaded(self.indices[index])

    def load(self, index: int) -> None:
        if 0 <= index < len(self.indices):
            self.base.load(self.indices[index])

    def index_of(self, key: int) -> int | None:
        base_index = self.base.index_of(key)
        if base_index is None:
            return None
        index = bisect.bisect_left(self.indices, base_index)
        return index if index < len(self.indices) else None

    def base_index(self, index: int) -> int:
        return self.indices[index]

    def catch_up(self) -> int:
        """Test rows appended to a live ``base`` since the last call; returns how many matched."""
        added = 0
        for base_index in range(self._seen, len(self.base)):
            row = self.base.peek(base_index)
            if row is not None and self.match(row):
                self.indices.append(base_index)
                added += 1
        self._seen = len(self.base)
        return added


class Timeline(Protocol):
    """Everything the screen reads: two row sources and the look-ups of the detail tabs."""

    events: Any
    messages: Any

    def snapshot_at_or_before(self, v: int) -> Snapshot | None: ...

    def message(self, seq: int) -> Message | None: ...

    def event(self, v: int) -> Event | None: ...

    def replies(self, message: Message, limit: int = 50) -> list[Message]: ...

    def events_caused_by(
        self, seq: int, limit: int = 50, near_v: int | None = None
    ) -> list[Event]: ...

    def marks(self) -> list[Mark]: ...

    def worker_alerts(self) -> list[WorkerAlert]:
        """Where workers disagree (a recording of several workers; else none)."""
        ...

    def worker_snapshots(self) -> list[WorkerSnapshot]: ...

    def links(self, record: Event | Message) -> list[Link]:
        """The Logux records linked to ``record`` (its answer, its action, its ``synced``)."""
        ...


class LogTimeline:
    """A log read through a :class:`devtools.store.LogReader` (replay mode)."""

    def __init__(self, reader: Any) -> None:
        self.reader = reader
        self.events = LogRowSource(reader, "event")
        self.messages = LogRowSource(reader, "message")
        self._alerts: list[WorkerAlert] | None = None
        self._worker_snapshots: list[WorkerSnapshot] | None = None
        server = reader.recording.server
        self.logux = isinstance(server, dict) and server.get("protocol") == "logux"
        """Whether the events are Logux actions (``rdt record --protocol logux|auto``)."""

    def snapshot_at_or_before(self, v: int) -> Snapshot | None:
        return self.reader.snapshot_at_or_before(v)

    def worker_alerts(self) -> list[WorkerAlert]:
        """Decided once from the log's worker hashes (blocking: one pass over them)."""
        if self._alerts is None:
            from devtools.workers import disagreements

            workers = self.reader.workers()
            found = disagreements(self.reader.worker_hashes()) if len(workers) > 1 else []
            self._alerts = alerts_of(found, workers)
        return self._alerts

    def worker_snapshots(self) -> list[WorkerSnapshot]:
        if self._worker_snapshots is None:
            self._worker_snapshots = self.reader.worker_snapshots()
        return self._worker_snapshots

    def message(self, seq: int) -> Message | None:
        return self.reader.message(seq)

    def event(self, v: int) -> Event | None:
        return self.reader.event(v)

    def replies(self, message: Message, limit: int = 50) -> list[Message]:
        """Messages out on ``message``'s connection after it, up to the next message in."""
        found: list[Message] = []
        for later in self.reader.messages(
            message.seq + 1, message.seq + 10 * limit, connection=message.connection
        ):
            if later.direction == "in":
                break
            found.append(later)
            if len(found) >= limit:
                break
        return found

    def events_caused_by(self, seq: int, limit: int = 50, near_v: int | None = None) -> list[Event]:
        """Events whose ``cause_seq`` is ``seq``: looked for near ``near_v`` when given (an
        event's siblings), else near the events recorded at the message's time."""
        if near_v is not None:
            return [
                event
                for event in self.reader.events(max(1, near_v - limit), near_v + limit)
                if event.cause_seq == seq
            ]
        message = self.reader.message(seq)
        if message is None or len(self.events) == 0:
            return []
        start = _first_event_at_or_after(self, message.t_ns)
        found: list[Event] = []
        for event in self.reader.events(start, start + 10 * limit):
            if event.cause_seq == seq:
                found.append(event)
                if len(found) >= limit:
                    break
        return found

    def marks(self) -> list[Mark]:
        return list(self.reader.marks())

    def links(self, record: Event | Message) -> list[Link]:
        return log_links(self.reader, record, logux=self.logux)


def _first_event_at_or_after(timeline: LogTimeline, t_ns: int) -> int:
    """Binary search over ``v`` for the first event recorded at or after ``t_ns``."""
    lo, hi = timeline.events.first, timeline.events.first + len(timeline.events) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        event = timeline.reader.event(mid)
        if event is None or event.t_ns >= t_ns:
            hi = mid
        else:
            lo = mid + 1
    return max(timeline.events.first, lo - 5)


class LiveTimeline:
    """Records of a recorder's live feed, held in memory as they arrive (live mode)."""

    def __init__(self) -> None:
        self.events = MemoryRowSource("event")
        self.messages = MemoryRowSource("message")
        self._snapshots: list[Snapshot] = []
        self._marks: list[Mark] = []
        self._caused: dict[int, list[Event]] = {}
        self._alerts: list[WorkerAlert] = []
        self._worker_snapshots: list[WorkerSnapshot] = []
        self._links = LinkIndex()

    def add_alert(self, alert: WorkerAlert) -> None:
        self._alerts.append(alert)

    def add_worker_snapshot(self, snapshot: WorkerSnapshot) -> None:
        self._worker_snapshots.append(snapshot)

    def worker_alerts(self) -> list[WorkerAlert]:
        return list(self._alerts)

    def worker_snapshots(self) -> list[WorkerSnapshot]:
        return sorted(self._worker_snapshots, key=lambda s: (s.v, s.worker))

    def add_event(self, event: Event) -> None:
        self.add_event_row(event_row(event))

    def add_event_row(self, row: Row) -> None:
        """Append an event's row (built beforehand, e.g. in the feed's reader thread)."""
        event: Event = row.record  # type: ignore[assignment]
        if not self.events.append(row):
            return
        if event.cause_seq is not None:
            self._caused.setdefault(event.cause_seq, []).append(event)
        self._links.add_event(event)

    def add_message(self, message: Message) -> None:
        self.add_message_row(message_row(message))

    def add_message_row(self, row: Row) -> None:
        """Append a message's row (built beforehand)."""
        if self.messages.append(row):
            self._links.add_message(row.record)  # type: ignore[arg-type]

    def add_snapshot(self, snapshot: Snapshot) -> None:
        if not self._snapshots or snapshot.v >= self._snapshots[-1].v:
            self._snapshots.append(snapshot)

    def add_mark(self, mark: Mark) -> None:
        self._marks.append(mark)

    def snapshot_at_or_before(self, v: int) -> Snapshot | None:
        keys = [s.v for s in self._snapshots]
        index = bisect.bisect_right(keys, v)
        return self._snapshots[index - 1] if index else None

    def message(self, seq: int) -> Message | None:
        index = self.messages.index_of(seq)
        row = self.messages.peek(index) if index is not None else None
        return row.record if row is not None and row.key == seq else None  # type: ignore[return-value]

    def event(self, v: int) -> Event | None:
        index = self.events.index_of(v)
        row = self.events.peek(index) if index is not None else None
        return row.record if row is not None and row.key == v else None  # type: ignore[return-value]

    def replies(self, message: Message, limit: int = 50) -> list[Message]:
        start = self.messages.index_of(message.seq + 1)
        found: list[Message] = []
        if start is None:
            return found
        for row in self.messages.rows[start : start + 10 * limit]:
            later: Message = row.record  # type: ignore[assignment]
            if later.connection != message.connection:
                continue
            if later.direction == "in":
                break
            found.append(later)
            if len(found) >= limit:
                break
        return found

    def events_caused_by(self, seq: int, limit: int = 50, near_v: int | None = None) -> list[Event]:
        return self._caused.get(seq, [])[:limit]

    def marks(self) -> list[Mark]:
        return list(self._marks)

    def links(self, record: Event | Message) -> list[Link]:
        return self._links.links(record, self.event, self.message)
