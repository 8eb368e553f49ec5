"""The time-travel debugger's screen: the row list on the left, the detail tabs on the right.

Replay mode reads a log (:class:`~tui.rowsource.LogTimeline`); live mode shows a recorder's feed
(:class:`~tui.live.LiveFeed` into a :class:`~tui.rowsource.LiveTimeline`), drained in batches
by a timer so a fast feed never freezes the screen. All blocking work (reading pages, replaying
states, filtering, bisecting) runs in worker threads.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import replace
from typing import Any

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Footer, TabbedContent, TabPane

from devtools.errors import EmptyRecording, RdtError
from devtools.masking import mask
from tui.dialogs.help import HelpScreen
from tui.dialogs.inject import InjectDialog, InjectHistory, Injection, parse_action
from tui.dialogs.prompt import PromptDialog
from tui.filters import FilterError, RowFilter, parse_filter, unfolded
from tui.heap import FreezeOldRows
from tui.inspect import Details, details, links_of
from tui.progress import bisect_status, counting
from tui.rows import Row
from tui.rowsource import FilteredSource
from tui.text import visible
from tui.widgets.action_view import ActionView
from tui.widgets.cause_view import CauseView
from tui.widgets.diff_view import DiffView, patch_text
from tui.widgets.event_list import EventList
from tui.widgets.header import HeaderBar, HeaderInfo
from tui.widgets.hits_view import HitsView, hits_text
from tui.widgets.raw_view import RawView
from tui.widgets.state_view import StateView

LIVE_TICK = 0.08
"""Seconds between live-feed batches (the screen updates at most this often)."""
LIVE_BATCH = 4_000
"""Most records applied per batch (the rest wait for the next tick): bounds a tick's stall."""
LIVE_REFRESH_EVERY = 0.25
"""While records stream in, the header (and, following the tail, the detail tabs) is refreshed
at most this often (seconds), the last time once the stream pauses; each tick redraws only the
list. (Textual repaints the box around everything that changed: a header line changing with
the list would repaint the whole screen on every tick.)"""
LIVE_STATUS_EVERY = 1.0
"""Seconds between the recorder status requests behind the header's "N behind"."""


TABS = ("tab-state", "tab-diff", "tab-action", "tab-raw", "tab-cause", "tab-hits")
"""The detail tabs in order: keys 1–6 switch to them."""


class RdtApp(App[None]):
    """``rdt tui``: replay a log or follow a live recorder."""

    TITLE = "rdt"

    BINDINGS = [
        Binding("slash", "filter", "Filter"),
        Binding("colon", "jump", "Jump"),
        Binding("e", "toggle_kind", "Events/Msgs"),
        Binding("p", "pin", "Pin"),
        Binding("s", "skip", "Skip"),
        Binding("b", "bisect", "Bisect"),
        Binding("i", "inject", "Inject"),
        Binding("m", "mark", "Mark"),
        Binding("f", "follow", "Follow"),
        Binding("F", "search", "Search"),
        Binding("z", "fold", "Fold pings", show=False),
        Binding("n", "next_hit", "Next hit", show=False),
        Binding("N", "previous_hit", "Previous hit", show=False),
        *(
            Binding(str(number), f"show_tab('{tab}')", tab.removeprefix("tab-"), show=False)
            for number, tab in enumerate(TABS, 1)
        ),
        # The list's own keys, wherever the focus is (the tab strip or a pane has it after Tab
        # and the arrows): the focused widget's bindings still come first.
        Binding("j", "list('cursor_down')", "Step", show=False),
        Binding("k", "list('cursor_up')", "Back", show=False),
        Binding("g", "list('first')", "First", show=False),
        Binding("G", "list('last')", "Last", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    CSS = """
    #main {
        height: 1fr;
    }
    #list {
        width: 2fr;
    }
    #tabs {
        width: 3fr;
    }
    """

    def __init__(
        self,
        timeline: Any,
        *,
        name: str = "log",
        replay: Any = None,
        reducer: str | None = None,
        feed: Any = None,
        log: Any = None,
    ) -> None:
        super().__init__()
        self.timeline = timeline
        self.log_name = mask(name)
        self.replay = replay
        self.reducer_ref = reducer
        self.feed = feed
        self.opened_log = log
        self.live = feed is not None
        self.kind = "event" if len(timeline.events) or self.live else "message"
        self.empty_note: str | None = None
        """A recording without events: what the State and Diff panes say instead of a state
        (its client messages are not events; the rule of :func:`devtools.errors.refuse_empty`)."""
        if not self.live and not len(timeline.events):
            self.empty_note = str(EmptyRecording(timeline.reader.recording))
        self.row_filter: RowFilter | None = None
        self.folded = False
        """``z``: Logux's ping/pong/synced messages hidden from the message list (never dropped)."""
        self.following = self.live
        self.busy: str | None = None
        self.details: Details | None = None
        self._rendered: set[str] = set()
        self._details_asked = 0
        """Numbers the detail computations: only the latest one's answer is shown."""
        self._refresh_timer: Any = None
        self.what_if: Any = None
        self.bisect_result: Any = None
        self.hits: list[Any] = []
        """The last search's changes (``F``), in ``v`` order."""
        self.search_query: str | None = None
        self.injections = InjectHistory()
        self.marks: dict[str, set[int]] = {"event": set(), "message": set()}
        self.notes: list[str] = []
        """Every notification shown (tests read it)."""
        self.applied = 0
        """Live records applied to the screen so far."""
        self._frozen = FreezeOldRows()
        """Keeps full garbage collections short as live rows accumulate."""
        self.stall_ms = 0.0
        """The longest live batch, in ms (the benchmark reads it)."""
        self._polling = False
        self.worker_alerts: list[Any] = []
        """Workers that disagree (:class:`tui.workers.WorkerAlert`), as they were raised."""

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield HeaderBar(id="header")
        with Horizontal(id="main"):
            yield EventList(self._base_source(), id="list")
            with TabbedContent(id="tabs"):
                with TabPane("State", id="tab-state"):
                    yield StateView(id="state")
                with TabPane("Diff", id="tab-diff"):
                    yield DiffView("select an event", id="diff")
                with TabPane("Action", id="tab-action"):
                    yield ActionView("select a row", id="action")
                with TabPane("Raw", id="tab-raw"):
                    yield RawView("select a row", id="raw")
                with TabPane("Cause", id="tab-cause"):
                    yield CauseView("select a row", id="cause")
                with TabPane("Hits", id="tab-hits"):
                    yield HitsView("F: search the history (needs --reducer)", id="hits")
        yield Footer()

    def on_mount(self) -> None:
        self._main = self.screen
        self._one(EventList).focus()
        self.refresh_header()
        self._load_marks()
        if self.live:
            self.run_worker(self.feed.read, name="live-feed", group="live", thread=True)
            self.set_interval(LIVE_TICK, self._live_tick, name="live-tick")
            self.set_interval(LIVE_STATUS_EVERY, self._poll_status, name="live-status")
            self._poll_status()
            return
        self._log_alerts()
        if self.empty_note is not None:
            self.notify(self.empty_note, title="no events", severity="warning")
        elif self.reducer_ref is not None and self.replay is None:
            self._open_replay()

    @property
    def event_list(self) -> EventList:
        return self._one(EventList)

    def _one(self, kind: type[Any]) -> Any:
        """The widget of type ``kind`` on the main screen (even while a dialog is on top)."""
        return self._main.query_one(kind)

    def _base_source(self) -> Any:
        return self.timeline.events if self.kind == "event" else self.timeline.messages

    def refresh_header(self) -> None:
        lst = self.event_list
        row = lst.row
        total = len(self._base_source())
        shown = len(lst.source)
        if row is not None:
            position = f"{row.label} ({lst.cursor + 1:,}/{shown:,})"
        else:
            position = f"-/{total:,}"
        self._one(HeaderBar).show(
            HeaderInfo(
                mode="LIVE" if self.live else "REPLAY",
                name=self.log_name,
                kind="events" if self.kind == "event" else "messages",
                position=position,
                shown=shown,
                events=len(self.timeline.events),
                messages=len(self.timeline.messages),
                filter=self.row_filter.text if self.row_filter else None,
                folded=self._folding,
                pinned=lst.pinned,
                following=self.following if self.live else None,
                busy=self.busy or (self.feed.error if self.live and self.feed.error else None),
                newer=max(0, shown - 1 - lst.cursor) if self.live and row is not None else 0,
                behind=self.feed.behind() if self.live else None,
                workers=self._workers_line(),
            )
        )

    def _workers_line(self) -> str | None:
        if not self.worker_alerts:
            return None
        more = len(self.worker_alerts) - 1
        return self.worker_alerts[0].headline + (f" (+{more} more)" if more else "")

    def raise_worker_alerts(self, alerts: list[Any]) -> None:
        """Say (a notification, the header) that workers disagree."""
        for alert in alerts:
            self.worker_alerts.append(alert)
            message = f"{alert.headline}: {alert.describe()}"
            self.notify(message, title="workers disagree", severity="error", timeout=30)
        if alerts:
            self.refresh_header()

    @work(thread=True, exclusive=True, group="workers")
    def _log_alerts(self) -> None:
        """Replay mode: where the log's workers disagree (one pass over their hashes)."""
        try:
            alerts = self.timeline.worker_alerts()
        except RdtError:
            return
        if alerts:
            self.call_from_thread(self.raise_worker_alerts, alerts)

    def notify(self, message: str, **kw: Any) -> None:  # type: ignore[override]
        """Show a toast (our own text, never markup) and keep it in :attr:`notes`."""
        message = mask(message)
        self.notes.append(message)
        kw.setdefault("markup", False)
        super().notify(message, **kw)

    def set_busy(self, what: str | None) -> None:
        self.busy = what
        self.refresh_header()

    # ------------------------------------------------------------------ selection

    def on_event_list_highlighted(self, message: EventList.Highlighted) -> None:
        if self.following:
            self._refresh_soon()
            return
        self.refresh_header()
        row = message.row
        if row is None:
            return
        self.details = Details(row, state_note="…", diff_note="…")
        self._rendered.clear()
        if self._active_tab() in ("tab-action", "tab-raw") and row.kind == "message":
            self._render_tab(self._active_tab())
        self._compute_details(row, self.event_list.pinned)

    def on_event_list_moved_up(self, message: EventList.MovedUp) -> None:
        if self.following:
            self.following = False
            self.refresh_header()

    def on_event_list_moved_to_end(self, message: EventList.MovedToEnd) -> None:
        """``G``/End: in live mode the newest event is the tail, so follow it."""
        if self.live and not self.following:
            self.action_follow()

    def _refresh_soon(self) -> None:
        """Refresh the header, and when following the details, within
        :data:`LIVE_REFRESH_EVERY` (the cursor moves on every batch while following: computing
        each step's details would only be thrown away)."""
        if self._refresh_timer is None:
            self._refresh_timer = self.set_timer(LIVE_REFRESH_EVERY, self._refresh_due)

    def _refresh_due(self) -> None:
        self._refresh_timer = None
        if not self._main.is_attached:
            return  # closing
        self.refresh_header()
        row = self.event_list.row
        if not self.following or row is None:
            return
        if self.details is None or self.details.row is not row:
            self._compute_details(row, self.event_list.pinned)

    def _compute_details(self, row: Row, pinned: int | None) -> None:
        self._details_asked += 1
        self._details_worker(row, pinned, self._details_asked)

    @work(thread=True, exclusive=True, group="details")
    def _details_worker(self, row: Row, pinned: int | None, asked: int) -> None:
        try:
            found = details(self.timeline, self.replay, row, pinned)
        except RdtError as error:
            found = Details(row, state_note=str(error), diff_note=str(error))
        if self.empty_note is not None:
            found = replace(found, state_note=self.empty_note, diff_note=self.empty_note)
        self.call_from_thread(self._show_details, found, asked)

    def _show_details(self, found: Details, asked: int) -> None:
        if asked != self._details_asked:
            return  # a newer computation was asked for meanwhile
        if not self.following and self.event_list.row is not found.row:
            return  # the cursor moved on meanwhile (its own computation is coming)
        self.details = found
        self._rendered.clear()
        self._render_tab(self._active_tab())

    def _active_tab(self) -> str:
        return self._one(TabbedContent).active

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self._render_tab(self._active_tab())

    def _render_tab(self, tab: str) -> None:
        """Fill ``tab`` from :attr:`details` (only the visible tab is drawn on each step)."""
        if tab == "tab-hits":
            if self.search_query is not None:
                row = self.event_list.row
                current = row.key if row is not None and row.kind == "event" else None
                self._one(HitsView).show(hits_text(self.search_query, self.hits, current))
            return
        found = self.details
        if found is None or tab in self._rendered:
            return
        self._rendered.add(tab)
        if tab == "tab-state":
            state = self._one(StateView)
            if found.workers is not None and found.workers.states:
                state.show_state(found.workers.states, found.workers.title)
            elif found.state_note is None:
                state.show_state(found.state, f"state after {found.row.label}")
            else:
                state.show_note(found.state_note)
        elif tab == "tab-diff":
            diff = self._one(DiffView)
            if self.what_if is not None:
                diff.show(self._what_if_text())
            elif found.patch is not None:
                diff.show_patch(found.diff_title, found.patch)
            else:
                diff.show_note(found.diff_note or "")
        elif tab == "tab-action":
            self._one(ActionView).show_row(found.row)
        elif tab == "tab-raw":
            self._one(RawView).show_row(found.row, found.cause)
        elif tab == "tab-cause":
            cause = self._one(CauseView)
            cause.show_chain(found.cause, found.caused, found.replies, found.links, found.workers)
            if found.links is None:
                self._links_worker(found)

    @work(thread=True, exclusive=True, group="links")
    def _links_worker(self, found: Details) -> None:
        self.call_from_thread(self._links_found, links_of(self.timeline, found), found)

    def _links_found(self, linked: Details, found: Details) -> None:
        if self.details is not found:
            return  # the cursor moved on meanwhile
        self.details = linked
        self._rendered.discard("tab-cause")
        if self._active_tab() == "tab-cause":
            self._render_tab("tab-cause")

    # ------------------------------------------------------------------ replay engine

    @work(thread=True, exclusive=True, group="replay")
    def _open_replay(self) -> None:
        self.call_from_thread(self.set_busy, "loading reducer…")
        try:
            from replayer.engine import Replay

            replay = Replay.open(self.timeline.reader, reducer=self.reducer_ref, recording=None)
        except (RdtError, ImportError) as error:
            self.call_from_thread(self.notify, str(error), title="replay", severity="error")
            self.call_from_thread(self.set_busy, None)
            return
        self.call_from_thread(self._replay_ready, replay)

    def _replay_ready(self, replay: Any) -> None:
        self.replay = replay
        self.set_busy(None)
        row = self.event_list.row
        if row is not None:
            self._compute_details(row, self.event_list.pinned)

    def _needs_replay(self, what: str) -> bool:
        if self.replay is None:
            self.notify(f"{what} needs a reducer: rdt tui LOG --reducer REF", severity="warning")
            return True
        return False

    # ------------------------------------------------------------------ actions

    def action_toggle_kind(self) -> None:
        self.kind = "message" if self.kind == "event" else "event"
        self.row_filter = None
        self.event_list.marked = self.marks[self.kind]
        self.event_list.set_source(self._base_source(), 0)
        self.refresh_header()
        if self._folding:
            self._refilter()

    @property
    def _folding(self) -> bool:
        """Whether folding hides rows of the list shown now (messages only)."""
        return self.folded and self.kind == "message"

    def action_fold(self) -> None:
        """``z``: fold (hide) or unfold Logux's ping/pong/synced messages."""
        self.folded = not self.folded
        self.notify(
            "ping/pong/synced folded (z: show them)" if self.folded else "ping/pong/synced shown"
        )
        if self.kind == "message":
            self._refilter()
        else:
            self.refresh_header()

    def action_filter(self) -> None:
        def check(text: str) -> str | None:
            try:
                parse_filter(text)
            except FilterError as error:
                return str(error)
            return None

        self.push_screen(
            PromptDialog(
                "Filter rows (empty: show all)",
                value=self.row_filter.text if self.row_filter else "",
                placeholder="order/*   sender:c1   event['total'] < 0",
                hint="type glob · sender:GLOB · expression over event, type, v, sender",
                validate=check,
            ),
            self._apply_filter_text,
        )

    def _apply_filter_text(self, text: str | None) -> None:
        if text is None:
            return
        self.apply_filter(parse_filter(text))

    def apply_filter(self, row_filter: RowFilter | None) -> None:
        """Show only the rows ``row_filter`` matches (``None``: all rows, but those folded)."""
        self.row_filter = row_filter
        self._refilter()

    def _visible(self) -> Any:
        """The predicate of the rows shown: the filter and the fold (``None``: every row)."""
        user = self.row_filter.match if self.row_filter is not None else None
        if not self._folding:
            return user
        if user is None:
            return unfolded
        return lambda row: unfolded(row) and user(row)

    def _refilter(self) -> None:
        """Show the rows :meth:`_visible` keeps, the cursor on the same row or the next."""
        base = self._base_source()
        row = self.event_list.row
        match = self._visible()
        if match is None:
            index = base.index_of(row.key) if row is not None else 0
            self.event_list.set_source(base, index or 0)
            self.refresh_header()
            return
        self.set_busy("filtering…")
        self._scan(base, match, row.key if row is not None else None)

    @work(thread=True, exclusive=True, group="filter")
    def _scan(self, base: Any, match: Any, key: int | None) -> None:
        def progress(done: int, total: int) -> None:
            self.call_from_thread(self.set_busy, f"filtering {100 * done // max(total, 1)}%")

        indices = base.scan(match, progress)
        self.call_from_thread(self._filtered, FilteredSource(base, indices, match), key)

    def _filtered(self, source: FilteredSource, key: int | None) -> None:
        index = source.index_of(key) if key is not None else 0
        self.busy = None
        self.event_list.set_source(source, index or 0)
        self.refresh_header()
        if not len(source):
            self.notify("no rows match the filter", severity="warning")

    def action_jump(self) -> None:
        def check(text: str) -> str | None:
            return None if text.strip().lstrip("#v ").isdigit() else "enter a number (v or #seq)"

        self.push_screen(
            PromptDialog("Jump to v (events) or #seq (messages)", validate=check), self._jump
        )

    def _jump(self, text: str | None) -> None:
        if text is None:
            return
        key = int(text.strip().lstrip("#v "))
        self.jump_to(key)

    def jump_to(self, key: int) -> None:
        """Move the cursor to the row with ``v``/``seq`` ``key`` (or the next one shown)."""
        index = self.event_list.source.index_of(key)
        if index is None:
            self.notify(f"no row at or after {key}", severity="warning")
            return
        if self.following:
            self.following = False
        self.event_list.move_to(index)

    def action_pin(self) -> None:
        row = self.event_list.row
        if row is None or row.kind != "event":
            self.notify("pin an event (not a message)", severity="warning")
            return
        lst = self.event_list
        lst.pinned = None if lst.pinned == row.key else row.key
        lst.refresh()
        self.refresh_header()
        self._compute_details(row, lst.pinned)

    def action_mark(self) -> None:
        row = self.event_list.row
        if row is None:
            return
        lst = self.event_list
        if row.key in lst.marked:
            lst.marked.discard(row.key)
        else:
            lst.marked.add(row.key)
            if self.live:
                self._send_mark(f"{row.label}")
        lst.refresh()

    def _load_marks(self) -> None:
        self.event_list.marked = self.marks[self.kind]
        with contextlib.suppress(RdtError):
            self.marks["message"].update(mark.seq for mark in self.timeline.marks())

    @work(exclusive=False, group="control")
    async def _send_mark(self, label: str) -> None:
        try:
            answer = await self.feed.mark(label)
        except (RdtError, OSError, TimeoutError) as error:
            self.notify(f"mark failed: {error}", severity="error")
            return
        self.notify(f"marked after message #{answer.get('seq')}")

    def action_skip(self) -> None:
        row = self.event_list.row
        if row is None or row.kind != "event" or self._needs_replay("what-if"):
            return
        lst = self.event_list
        if row.key in lst.skipped:
            lst.skipped.discard(row.key)
        else:
            lst.skipped.add(row.key)
        lst.refresh()
        if not lst.skipped:
            self.what_if = None
            self._compute_details(row, lst.pinned)
            return
        self.set_busy("what-if…")
        self._run_what_if(sorted(lst.skipped))

    @work(thread=True, exclusive=True, group="what-if")
    def _run_what_if(self, skip: list[int]) -> None:
        try:
            result = self.replay.what_if(skip)
        except RdtError as error:
            self.call_from_thread(self.notify, str(error), severity="error")
            self.call_from_thread(self.set_busy, None)
            return
        self.call_from_thread(self._what_if_done, result)

    def _what_if_done(self, result: Any) -> None:
        self.what_if = result
        self.set_busy(None)
        self._rendered.discard("tab-diff")
        self._one(TabbedContent).active = "tab-diff"
        self._render_tab("tab-diff")
        first = getattr(result, "first_divergent_v", None)
        self.notify(f"what-if: first affected v {first}" if first else "what-if: no change")

    def _what_if_text(self) -> Text:
        result = self.what_if
        skipped = list(getattr(result, "skipped", []) or [])
        first = getattr(result, "first_divergent_v", None)
        inserted = getattr(result, "inserted", None)
        if inserted:
            kinds = ", ".join(
                f"{visible(str(item['action'].get('type')))} after v {item['after']}"
                for item in inserted
            )
            title = f"what-if: inserting {kinds}; first affected v {first}"
        else:
            title = f"what-if: skipping v {', '.join(map(str, skipped))}; first affected v {first}"
        return patch_text(title + " — final state difference", getattr(result, "diff", []) or [])

    def action_bisect(self) -> None:
        if self._needs_replay("bisect"):
            return
        self.push_screen(
            PromptDialog(
                "Bisect: the first event after which this holds",
                placeholder="state['total'] < 0",
                hint="a Python expression over state and event",
                validate=lambda text: None if text.strip() else "enter an expression",
            ),
            self._start_bisect,
        )

    def _start_bisect(self, expr: str | None) -> None:
        if expr is None:
            return
        try:
            predicate = counting(expr)
        except RdtError as error:
            self.notify(str(error), title="bisect", severity="error")
            return
        self._bisect_status = lambda: bisect_status(expr, predicate)
        self.set_busy(self._bisect_status())
        self._bisect_timer = self.set_interval(0.25, self._bisect_progress)
        self._run_bisect(predicate)

    def _bisect_progress(self) -> None:
        if self.busy and self.busy.startswith("bisecting"):
            self.set_busy(self._bisect_status())

    @work(thread=True, exclusive=True, group="bisect")
    def _run_bisect(self, predicate: Any) -> None:
        try:
            result = self.replay.bisect(predicate)
        except RdtError as error:
            self.call_from_thread(self._bisect_done, None, str(error))
            return
        self.call_from_thread(self._bisect_done, result, None)

    def _bisect_done(self, result: Any, error: str | None) -> None:
        self._bisect_timer.stop()
        self.set_busy(None)
        self.bisect_result = result
        if error is not None:
            self.notify(error, title="bisect", severity="error")
            return
        v = getattr(result, "v", None)
        if v is None:
            self.notify("bisect: the expression never holds", severity="warning")
            return
        if self.kind != "event":
            self.action_toggle_kind()
        if self.row_filter is not None:
            self.apply_filter(None)
        self.jump_to(v)
        self._one(TabbedContent).active = "tab-diff"
        self.notify(f"bisect: first bad event is v {v}")

    def action_inject(self) -> None:
        if not self.live:
            self._insert_dialog()
            return
        self.push_screen(InjectDialog(self.injections), self._inject)

    # ------------------------------------------------------------------ what-if insert (a log)

    def _insert_dialog(self) -> None:
        row = self.event_list.row
        if self.replay is None:
            self.notify(
                "insert (what-if) needs a reducer: rdt tui LOG --reducer REF "
                "(inject works in live mode: rdt tui --live ws://…)",
                severity="warning",
            )
            return
        if row is None or row.kind != "event":
            self.notify("select an event to insert after", severity="warning")
            return
        title = f"What-if: insert an action after v {row.key} (hypothetical; the log is unchanged)"
        self.push_screen(
            InjectDialog(self.injections, title), lambda action: self._insert(row.key, action)
        )

    def _insert(self, after: int, action: dict | None) -> None:
        if action is None:
            return
        from devtools.jsonutil import dumps

        self.injections.items.append(Injection(dumps(action).decode(), action))
        self.set_busy("what-if…")
        self._run_insert(after, action)

    @work(thread=True, exclusive=True, group="what-if")
    def _run_insert(self, after: int, action: dict) -> None:
        try:
            result = self.replay.what_if_insert(after, action)
        except RdtError as error:
            self.call_from_thread(self.notify, str(error), severity="error")
            self.call_from_thread(self.set_busy, None)
            return
        self.call_from_thread(self._what_if_done, result)

    def _inject(self, action: dict | None) -> None:
        if action is None:
            return
        from devtools.jsonutil import dumps

        item = Injection(dumps(action).decode(), action)
        self.injections.items.append(item)
        self._send_inject(item)

    def inject_text(self, text: str) -> Injection | str:
        """Validate and inject ``text`` (what the dialog does), returning the history item."""
        parsed = parse_action(text)
        if isinstance(parsed, str):
            return parsed
        self._inject(parsed)
        return self.injections.items[-1]

    @work(exclusive=False, group="control")
    async def _send_inject(self, item: Injection) -> None:
        try:
            item.result = await self.feed.inject(item.action)
        except (RdtError, OSError, TimeoutError) as error:
            item.error = str(error)
            self.notify(f"inject failed: {error}", severity="error")
            return
        self.notify(f"injected: {item.summary()}")

    def action_follow(self) -> None:
        if not self.live:
            self.notify("follow works in live mode", severity="warning")
            return
        self.following = True
        self._apply_live(None)  # everything received so far: the newest event, not a lagging one
        lst = self.event_list
        lst.move_to(len(lst.source) - 1)
        self.refresh_header()

    def action_list(self, action: str) -> None:
        """j/k/g/G with the focus outside the list: run the list's action, focus the list."""
        lst = self.event_list
        lst.focus()
        getattr(lst, f"action_{action}")()

    def action_show_tab(self, tab: str) -> None:
        """Keys 1–6: show that detail tab."""
        self._one(TabbedContent).active = tab

    # ------------------------------------------------------------------ search

    def action_search(self) -> None:
        if self._needs_replay("search"):
            return

        def check(text: str) -> str | None:
            from replayer.search import parse_query

            try:
                parse_query(text)
            except RdtError as error:
                return str(error)
            return None

        self.push_screen(
            PromptDialog(
                "Search the history: the events at which this changes",
                value=self.search_query or "",
                placeholder="/orders/o1/total   re:ACME   state['total'] < 0",
                hint="/pointer (its value) · re:REGEX (state as JSON) · expression (state, event)",
                validate=check,
            ),
            self._start_search,
        )

    def _start_search(self, text: str | None) -> None:
        if text is None:
            return
        from replayer.search import parse_query

        self.set_busy("searching…")
        self._run_search(text.strip(), parse_query(text))

    @work(thread=True, exclusive=True, group="search")
    def _run_search(self, query: str, watch: Any) -> None:
        from replayer.search import search

        last = self.replay.last_v
        first = self.replay.first_v

        def progress(v: int) -> None:
            share = 100 * (v - first + 1) // max(last - first + 1, 1)
            self.call_from_thread(self.set_busy, f"searching {share}%")

        try:
            hits = list(search(self.replay, watch, progress=progress))
        except RdtError as error:
            self.call_from_thread(self._search_done, query, None, str(error))
            return
        self.call_from_thread(self._search_done, query, hits, None)

    def _search_done(self, query: str, hits: list[Any] | None, error: str | None) -> None:
        self.set_busy(None)
        if hits is None:
            self.notify(error or "search failed", title="search", severity="error")
            return
        self.search_query, self.hits = query, hits
        self._rendered.discard("tab-hits")
        self._one(TabbedContent).active = "tab-hits"
        self._render_tab("tab-hits")
        if not hits:
            self.notify("search: no change", severity="warning")
            return
        self.notify(f"search: {len(hits):,} changes, first at v {hits[0].v}")
        self._go_to_hit(hits[0].v)

    def _go_to_hit(self, v: int) -> None:
        if self.kind != "event":
            self.action_toggle_kind()
        self.jump_to(v)
        self._rendered.discard("tab-hits")
        self._render_tab(self._active_tab())

    def action_next_hit(self) -> None:
        self._step_hit(+1)

    def action_previous_hit(self) -> None:
        self._step_hit(-1)

    def _step_hit(self, direction: int) -> None:
        if not self.hits:
            self.notify("no search hits: F searches", severity="warning")
            return
        row = self.event_list.row
        here = row.key if row is not None and row.kind == "event" else 0
        vs = [hit.v for hit in self.hits]
        import bisect

        if direction > 0:
            i = bisect.bisect_right(vs, here)
            target = vs[i] if i < len(vs) else None
        else:
            i = bisect.bisect_left(vs, here) - 1
            target = vs[i] if i >= 0 else None
        if target is None:
            self.notify("no further hit" if direction > 0 else "no earlier hit")
            return
        self._go_to_hit(target)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    # ------------------------------------------------------------------ live

    def _live_tick(self) -> None:
        started = time.perf_counter()
        if not self._apply_live(LIVE_BATCH):
            return
        lst = self.event_list
        if self.following and len(lst.source):
            lst.move_to(len(lst.source) - 1)
        self._refresh_soon()
        self.stall_ms = max(self.stall_ms, 1000 * (time.perf_counter() - started))

    def _apply_live(self, limit: int | None) -> bool:
        """Move up to ``limit`` received records into the list; whether anything changed."""
        applied = self.feed.drain(limit)
        if not applied and not self.feed.error:
            return False
        feed = self.feed
        if feed.alerts:
            alerts = list(feed.alerts)
            feed.alerts.clear()
            self.raise_worker_alerts(alerts)
        if feed.workers_changed:
            feed.workers_changed = False
            row = self.event_list.row
            if row is not None and row.kind == "event" and not self.following:
                self._compute_details(row, self.event_list.pinned)
        self.applied += applied
        self._frozen.grew(applied)
        lst = self.event_list
        if isinstance(lst.source, FilteredSource):
            lst.source.catch_up()
        lst.rows_added()
        return True

    @work(exclusive=False, group="control")
    async def _poll_status(self) -> None:
        """Ask the recorder how much it has recorded (the header's "N behind")."""
        if self._polling or not self.feed.connected:
            return
        self._polling = True
        try:
            await self.feed.poll_status()
        finally:
            self._polling = False
        if self._main.is_attached:
            self._refresh_soon()

    async def on_unmount(self) -> None:
        if self._refresh_timer is not None:
            self._refresh_timer.stop()
            self._refresh_timer = None
        if self.feed is not None:
            await self.feed.close()
        self._frozen.release()
        if self.replay is not None:
            self.replay.close()  # its checkpoint-writer thread (the log is the timeline's)
