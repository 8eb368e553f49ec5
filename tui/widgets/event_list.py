"""The virtualised event/message list: draws only the rows on screen, reads pages on demand.

A :class:`~textual.scroll_view.ScrollView` whose virtual height is the row count; each visible
line is drawn by :meth:`EventList.render_line` from the row source's cache. Rows not yet read
show as ``…`` while a worker thread reads their page, so a million-row log opens at once and
scrolling never blocks the screen.
"""

from __future__ import annotations

from typing import Any

from rich.segment import Segment
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui.rows import Row
from tui.text import clock, visible

ARROWS = {"in": "→", "out": "←"}


def row_text(row: Row | None, *, marked: bool, pinned: bool, skipped: bool) -> Text:
    """One list line for ``row`` (``None``: not read yet). Recorded strings are sanitised."""
    text = Text(no_wrap=True, overflow="ellipsis")
    flag = ("P" if pinned else " ") + ("●" if marked else " ") + ("s" if skipped else " ")
    text.append(flag, style="bold yellow")
    if row is None:
        text.append("  …")
        return text
    if row.kind == "event":
        text.append(f"{row.key:>9} ", style="bold")
        text.append(clock(row.t_ns) + " ", style="dim")
        text.append(visible(row.type or "?"), style="cyan")
        if row.sender is not None:
            text.append("  " + visible(row.sender), style="dim")
    else:
        record: Any = row.record
        text.append(f"{row.key:>9} ", style="bold")
        text.append(clock(row.t_ns) + " ", style="dim")
        text.append(f"{ARROWS.get(record.direction, '?')} c{record.connection} ", style="magenta")
        if row.type is not None:
            text.append(visible(row.type), style="cyan")
        else:
            text.append(f"[{visible(record.flag or 'raw')}]", style="red")
    if skipped:
        text.stylize("strike dim", 3)
    return text


class EventList(ScrollView, can_focus=True):
    """The list of events or messages, with a cursor."""

    BINDINGS = [
        Binding("j,down", "cursor_down", "Step", show=False),
        Binding("k,up", "cursor_up", "Back", show=False),
        Binding("g,home", "first", "First", show=False),
        Binding("G,end", "last", "Last", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
    ]

    COMPONENT_CLASSES = {"event-list--cursor"}

    DEFAULT_CSS = """
    EventList {
        width: 1fr;
        height: 1fr;
        border: round $primary 50%;
    }
    EventList:focus {
        border: round $primary;
    }
    EventList > .event-list--cursor {
        background: $accent 40%;
        text-style: bold;
    }
    """

    cursor: reactive[int] = reactive(0, always_update=True)

    class Highlighted(Message):
        """The cursor is on ``row`` (posted once its page is read)."""

        def __init__(self, index: int, row: Row | None) -> None:
            super().__init__()
            self.index = index
            self.row = row

    class MovedUp(Message):
        """The user moved or scrolled towards the start (live mode stops following)."""

    class MovedToEnd(Message):
        """The user asked for the last row (live mode follows the tail again)."""

    def __init__(self, source: Any, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.source = source
        self.marked: set[int] = set()
        self.pinned: int | None = None
        self.skipped: set[int] = set()
        self._loading = False
        self._announce = True
        self._styles: tuple[Any, Any] | None = None
        self._strips: dict[tuple[Any, ...], Strip] = {}
        """Drawn lines by row and look: a scroll (the live tail moving) redraws from here."""
        self.loads = 0
        """Pages read so far (tests and the benchmark look at it)."""

    # ------------------------------------------------------------------ data

    def on_mount(self) -> None:
        self._resize()

    def set_source(self, source: Any, cursor: int = 0) -> None:
        """Show another row source (a filter, the other kind) with the cursor at ``cursor``."""
        self.source = source
        self._resize()
        self.cursor = max(0, min(cursor, len(source) - 1))

    def rows_added(self) -> None:
        """Rows were appended to the (live) source: grow the list without moving the cursor.

        Only the scroll range changes, so the new virtual size is set without asking for a
        layout (a layout repaints the whole screen, ~10x a repaint of the list); the scrollbars
        are updated directly, and a scrollbar appearing still triggers its own layout.
        """
        size = Size(self.size.width, len(self.source))
        if size == self.virtual_size:
            return
        self.set_reactive(EventList.virtual_size, size)
        self._scroll_update(size)
        self.refresh()

    def _resize(self) -> None:
        self.virtual_size = Size(self.size.width, len(self.source))
        self.refresh()

    @property
    def row(self) -> Row | None:
        """The row under the cursor, when read."""
        return self.source.peek(self.cursor) if len(self.source) else None

    # ------------------------------------------------------------------ render

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        index = self.scroll_offset.y + y
        if index >= len(self.source):
            return Strip.blank(width, self.rich_style)
        row = self.source.peek(index)
        if row is None and not self.source.is_loaded(index):
            self._request()
        key = row.key if row is not None else None
        marked = key in self.marked
        pinned = key is not None and key == self.pinned
        skipped = key in self.skipped
        if self._styles is None:
            plain = self.rich_style
            self._styles = (plain, plain + self.get_component_rich_style("event-list--cursor"))
            self._strips.clear()
        kind = row.kind if row is not None else None
        look = (kind, key, index == self.cursor, marked, pinned, skipped, width)
        strip = self._strips.get(look) if row is not None else None
        if strip is not None:
            return strip
        text = row_text(row, marked=marked, pinned=pinned, skipped=skipped)
        base = self._styles[1] if index == self.cursor else self._styles[0]
        segments = [
            Segment(seg.text, base + seg.style if seg.style else base, seg.control)
            for seg in text.render(self.app.console, end="")
        ]
        strip = Strip(segments).extend_cell_length(width, base).crop(0, width)
        if row is not None:
            if len(self._strips) > 4 * max(self.size.height, 50):
                self._strips.clear()
            self._strips[look] = strip
        return strip

    def _request(self) -> None:
        if self._loading:
            return
        self._loading = True
        top = self.scroll_offset.y
        wanted = list(range(top, min(len(self.source), top + self.size.height + 1)))
        if self.cursor not in wanted:
            wanted.append(self.cursor)
        source = self.source
        self.run_worker(lambda: self._load(source, wanted), thread=True, group="rows")

    def _load(self, source: Any, wanted: list[int]) -> None:
        try:
            for index in wanted:
                if index < len(source) and not source.is_loaded(index):
                    source.load(index)
                    self.loads += 1
        finally:
            self.app.call_from_thread(self._loaded)

    def _loaded(self) -> None:
        self._loading = False
        self.refresh()
        if self._announce and self.source.is_loaded(self.cursor):
            self._post_highlight()

    def notify_style_update(self) -> None:
        self._styles = None  # the theme or focus changed: recompute the line styles
        super().notify_style_update()

    # ------------------------------------------------------------------ cursor

    def watch_cursor(self, old: int, new: int) -> None:
        top = self.scroll_offset.y
        self.scroll_to_cursor()
        if self.scroll_offset.y == top:
            self.refresh_line(old - top)
            self.refresh_line(new - top)
        else:
            self.refresh()
        if len(self.source) and not self.source.is_loaded(new):
            self._announce = True
            self._request()
        else:
            self._post_highlight()

    def _post_highlight(self) -> None:
        self._announce = False
        self.post_message(self.Highlighted(self.cursor, self.row))

    def scroll_to_cursor(self) -> None:
        height = self.scrollable_content_region.height or 1
        top = self.scroll_offset.y
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, immediate=True)

    def move_to(self, index: int) -> None:
        """Put the cursor on ``index`` (clamped to the rows)."""
        if len(self.source):
            self.cursor = max(0, min(index, len(self.source) - 1))

    def action_cursor_down(self) -> None:
        self.move_to(self.cursor + 1)

    def action_cursor_up(self) -> None:
        self.post_message(self.MovedUp())
        self.move_to(self.cursor - 1)

    def action_first(self) -> None:
        self.post_message(self.MovedUp())
        self.move_to(0)

    def action_last(self) -> None:
        self.move_to(len(self.source) - 1)
        self.post_message(self.MovedToEnd())

    def action_page_down(self) -> None:
        self.move_to(self.cursor + max(1, self.scrollable_content_region.height - 1))

    def action_page_up(self) -> None:
        self.post_message(self.MovedUp())
        self.move_to(self.cursor - max(1, self.scrollable_content_region.height - 1))

    def _on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self.post_message(self.MovedUp())

    async def _on_click(self, event: events.Click) -> None:
        self.move_to(self.scroll_offset.y + event.y - self.gutter.top)
        self.focus()
