"""What the detail tabs show for a row, computed off the UI thread (blocking; no widgets).

State and Diff come from the replay engine when a reducer was given (``--reducer``), else from
the snapshots recorded in the log at exactly that ``v``, else a note saying a reducer is needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from devtools.errors import RdtError
from devtools.logux_links import Link
from devtools.model import Event, Message
from tui.rows import Row
from tui.workers import WorkerStates, worker_states

NEEDS_REDUCER = "no recorded snapshot at v {v}: open the log with --reducer REF to replay states"


@dataclass(frozen=True, slots=True)
class Details:
    """Everything the tabs show for one row."""

    row: Row
    state: Any = None
    state_note: str | None = None
    """Why there is no state (``None`` when ``state`` is set)."""
    diff_title: str = ""
    patch: list[dict[str, Any]] | None = None
    diff_note: str | None = None
    cause: Message | None = None
    caused: list[Event] = field(default_factory=list)
    replies: list[Message] = field(default_factory=list)
    workers: WorkerStates | None = None
    """Workers disagree at this event: both their states and the diff."""
    links: list[Link] | None = None
    """The Logux records linked to the row; ``None`` until looked up (only when the Cause tab
    is shown: see :func:`links_of`)."""


def state_at(timeline: Any, replay: Any, v: int) -> tuple[Any, str | None]:
    """The state after event ``v`` and ``None``, or ``None`` and why it is unknown."""
    if replay is not None:
        try:
            return replay.state_at(v), None
        except RdtError as error:
            return None, str(error)
    snap = timeline.snapshot_at_or_before(v)
    if snap is not None and snap.v == v:
        return snap.state, None
    return None, NEEDS_REDUCER.format(v=v)


def details(timeline: Any, replay: Any, row: Row, pinned: int | None = None) -> Details:
    """Compute the State, Diff and Cause contents for ``row`` (blocking)."""
    from replayer.diff import diff

    record: Any = row.record
    if isinstance(record, Message):
        cause = record if record.direction == "in" else None
        caused = timeline.events_caused_by(record.seq) if cause else []
        replies = timeline.replies(record) if cause else []
        return Details(
            row,
            state_note="select an event to see the state",
            diff_note="select an event to see its diff",
            cause=cause,
            caused=caused,
            replies=replies if cause else [record],
        )
    v = record.v
    state, note = state_at(timeline, replay, v)
    base = pinned if pinned is not None and pinned != v else v - 1
    title = f"v {base} → v {v}" + (" (pinned)" if base == pinned else "")
    patch = None
    diff_note = note
    if state is not None:
        if base < 1 and replay is not None:
            before, why = getattr(replay, "initial_state", None), None
        else:
            before, why = state_at(timeline, replay, base) if base >= 0 else (None, "no v 0")
        if why is None:
            patch = diff(before, state, with_old=True)
        else:
            diff_note = why
    cause = timeline.message(record.cause_seq) if record.cause_seq else None
    caused = timeline.events_caused_by(record.cause_seq, 10, near_v=v) if record.cause_seq else []
    replies = timeline.replies(cause) if cause is not None else []
    alerts = [alert for alert in timeline.worker_alerts() if alert.v == v]
    workers = worker_states(alerts, timeline.worker_snapshots()) if alerts else None
    return Details(
        row,
        workers=workers,
        state=state,
        state_note=note,
        diff_title=title,
        patch=patch,
        diff_note=diff_note,
        cause=cause,
        caused=caused or [record],
        replies=replies,
    )


def links_of(timeline: Any, found: Details) -> Details:
    """``found`` with its Logux links looked up (blocking: they may be a long way off)."""
    try:
        links = timeline.links(found.row.record)
    except RdtError:
        links = []
    return replace(found, links=links)
