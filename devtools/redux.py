"""Redux DevTools extension interchange (PROTOCOL.md §4): events ↔ the extension's export file.

What the extension writes (redux-devtools ``extension/src/pageScript/index.ts`` ``exportState``
and ``app-core/src/middlewares/exportState.ts``): the page sends the staged actions
(``stagedActionIds[1:]`` looked up in ``actionsById``, so a plain array of action objects) and
its ``committedState``, both already serialised to JSON text, and the app downloads
``JSON.stringify({payload, preloadedState}, null, "\\t")`` as ``state.json``. Its Import button
(``importState.ts``) parses ``payload`` (and ``preloadedState`` when present); the payload may
also be a whole lifted state (``actionsById``, ``stagedActionIds``, ``skippedActionIds``,
``committedState``), and a file without ``payload`` is taken as a lifted state itself. We write
the first form and read all three.

The conversions are pure; :func:`dumps_file` gives the bytes to write. The two steps to and
from a log, :func:`export_document` (from a reader) and :func:`import_document` (into a new
recording), take the store's objects as arguments and do no other I/O.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import Any

from devtools.errors import BadInput, InvalidJSON, refuse_empty
from devtools.jsonutil import dumps, loads
from devtools.model import Event, Snapshot

__all__ = [
    "dumps_file",
    "export_document",
    "from_redux",
    "import_document",
    "initial_snapshot",
    "looks_like_redux",
    "to_redux",
]


def to_redux(events: Iterable[Event | dict], preloaded_state: Any = None) -> dict[str, str]:
    """The extension's export document: the events as the actions, both values JSON text.

    Args:
        events: the events (model objects or the event dicts), in ``v`` order.
        preloaded_state: the state before the first event; ``None`` omits ``preloadedState``.
    """
    actions = [e.event if isinstance(e, Event) else e for e in events]
    doc = {"payload": dumps(actions).decode("utf-8")}
    if preloaded_state is not None:
        doc["preloadedState"] = dumps(preloaded_state).decode("utf-8")
    return doc


def dumps_file(doc: dict[str, str]) -> bytes:
    """The document as the extension writes it (tab-indented, non-ASCII kept), with a newline."""
    return json.dumps(doc, indent="\t", ensure_ascii=False).encode("utf-8") + b"\n"


def initial_snapshot(snapshots: Sequence[Snapshot], first_v: int | None) -> Snapshot | None:
    """The snapshot to export as ``preloadedState``: at ``v = 0``, or else the latest one
    before the first event (the state that event applies to); ``None`` when there is none."""
    ordered = sorted(snapshots, key=lambda s: s.v)
    if first_v is None:
        return ordered[0] if ordered else None
    before = [s for s in ordered if s.v < first_v]
    return before[-1] if before else None


def looks_like_redux(doc: Any) -> bool:
    """Whether a parsed JSON document is an extension export (either shape)."""
    return isinstance(doc, dict) and (
        "payload" in doc or ("actionsById" in doc and "stagedActionIds" in doc)
    )


def _parse_text(value: Any, what: str) -> Any:
    if not isinstance(value, str):
        return value  # tolerate an already-parsed value
    try:
        return loads(value)
    except ValueError as error:
        reason = str(error).splitlines()[0] if str(error) else "invalid"
        raise InvalidJSON(
            f"the Redux DevTools file's {what} is not valid JSON ({reason})"
        ) from None


def _lifted_actions(lifted: dict) -> tuple[list[Any], Any]:
    by_id = lifted.get("actionsById")
    staged = lifted.get("stagedActionIds")
    if not isinstance(by_id, dict) or not isinstance(staged, list):
        raise BadInput("not a Redux DevTools export: no actions array or lifted state")
    skipped = set(lifted.get("skippedActionIds") or [])
    actions = []
    for action_id in staged[1:]:  # id 0 is the store's @@INIT
        if action_id in skipped:
            continue
        lifted_action = by_id.get(str(action_id))
        if not isinstance(lifted_action, dict) or "action" not in lifted_action:
            raise BadInput(f"Redux DevTools file: action {action_id} is missing from actionsById")
        actions.append(lifted_action["action"])
    return actions, lifted.get("committedState")


def from_redux(doc: Any) -> tuple[list[Event], Any]:
    """The events (the actions) and the preloaded state (``None`` if absent) of an export.

    Actions keep their own ``v`` when every action has an integer ``v``, increasing; otherwise
    they are numbered 1, 2, 3 …. An action's integer ``ts`` becomes the event's ``t_ns``.

    Raises:
        InvalidJSON: ``payload`` or ``preloadedState`` is not JSON text.
        BadInput: the document is not an export, or an action has no string ``type``.
    """
    if not looks_like_redux(doc):
        raise BadInput("not a Redux DevTools export (no 'payload')")
    preloaded = None
    if "payload" in doc:
        payload = _parse_text(doc["payload"], "payload")
        if doc.get("preloadedState") is not None:
            preloaded = _parse_text(doc["preloadedState"], "preloadedState")
    else:
        payload = doc
    if isinstance(payload, dict):
        actions, committed = _lifted_actions(payload)
        if preloaded is None:
            preloaded = committed
    elif isinstance(payload, list):
        actions = payload
    else:
        raise BadInput("not a Redux DevTools export: the payload is neither actions nor a state")
    for index, action in enumerate(actions):
        if not isinstance(action, dict) or not isinstance(action.get("type"), str):
            raise BadInput(f"Redux DevTools file: action {index} has no string 'type'")
    vs = [a.get("v") for a in actions]
    own = all(isinstance(v, int) and not isinstance(v, bool) for v in vs) and all(
        a < b for a, b in zip(vs, vs[1:], strict=False)
    )
    events = []
    for index, action in enumerate(actions):
        ts = action.get("ts")
        events.append(
            Event(
                v=action["v"] if own else index + 1,
                type=action["type"],
                event=action,
                t_ns=ts if isinstance(ts, int) and not isinstance(ts, bool) else 0,
            )
        )
    return events, preloaded


# --------------------------------------------------------------------------- to and from a log


def export_document(reader: Any, *, allow_empty: bool = False) -> dict[str, str]:
    """The export document of one recording (a :class:`devtools.store.LogReader`): its events,
    and the snapshot before the first event (or the first snapshot) as ``preloadedState``.

    Raises:
        EmptyRecording: the recording has no events and not ``allow_empty``.
    """
    first_v = reader.first_v()
    refuse_empty(reader.recording, first_v, allow_empty=allow_empty)
    snap: Snapshot | None
    if first_v is None:
        snap = initial_snapshot(list(reader.snapshots()), None)
    else:
        snap = reader.snapshot_at_or_before(first_v - 1)
    return to_redux(reader.events(), None if snap is None else snap.state)


def import_document(doc: Any, log: Any, name: str) -> tuple[int, int]:
    """Write an export document into a new recording of ``log`` (a :class:`devtools.store.Log`).

    The preloaded state becomes a snapshot just before the first event. A document that fails
    part way leaves no recording behind.

    Returns:
        The new recording's id and how many events it holds.

    Raises:
        InvalidJSON, BadInput: as :func:`from_redux`.
    """
    events, preloaded = from_redux(doc)
    times = [e.t_ns for e in events if e.t_ns > 0]
    writer = log.writer(name=name, started_ns=min(times) if times else time.time_ns())
    try:
        if preloaded is not None:
            first_v = events[0].v if events else 1
            writer.add_snapshot(Snapshot(v=max(first_v - 1, 0), state=preloaded))
        writer.add_events(events)
        writer.close(ended_ns=max(times) if times else None)
    except BaseException:
        writer.discard()
        raise
    return writer.recording_id, len(events)
