"""The Action tab: the selected event or message, as indented JSON (sanitised)."""

from __future__ import annotations

from rich.text import Text

from tui.rows import Row
from tui.text import json_text, visible
from tui.widgets.textpane import TextPane


class ActionView(TextPane):
    """The event object (or the message frame) of the selected row."""

    def show_row(self, row: Row | None) -> None:
        if row is None:
            self.show(Text("nothing selected", style="dim"))
            return
        head = Text(f"{row.label}  ", style="bold")
        head.append(visible(row.type or "(no type)"), style="cyan")
        head.append("\n\n")
        data = row.data()
        if data is None:
            head.append("not a JSON message; see the Raw tab", style="dim")
            self.show(head)
            return
        self.show(head + json_text(data))
