"""The Diff tab: an RFC 6902 patch between two states, one operation a line (sanitised).

A ``replace`` reads ``replace /total  1567 → 719`` and a ``remove`` shows the value it removes
when the operation carries the old value (``replayer.diff.diff(a, b, with_old=True)``).
"""

from __future__ import annotations

from typing import Any

from rich.text import Text

from replayer.diff import OLD
from tui.text import preview, visible
from tui.widgets.textpane import TextPane

MAX_OPS = 2000
STYLES = {"add": "green", "remove": "red", "replace": "yellow", "move": "blue", "copy": "blue"}


def patch_text(title: str, patch: list[dict[str, Any]]) -> Text:
    """``patch`` as lines ``op path [old →] value`` under ``title``."""
    text = Text(title + "\n\n", style="bold")
    if not patch:
        text.append("no change\n", style="dim")
    for op in patch[:MAX_OPS]:
        kind = str(op.get("op", "?"))
        text.append(f"{kind:<8}", style=STYLES.get(kind, ""))
        text.append(visible(str(op.get("path", ""))))
        if "from" in op:
            text.append(" ← " + visible(str(op["from"])), style="dim")
        if OLD in op:
            text.append("  " + preview(op[OLD], 100), style="red" if kind == "remove" else "")
            if "value" in op:
                text.append(" → ")
        elif "value" in op:
            text.append("  ")
        if "value" in op:
            text.append(preview(op["value"], 100))
        text.append("\n")
    if len(patch) > MAX_OPS:
        text.append(f"… {len(patch) - MAX_OPS:,} more operations\n", style="dim")
    return text


class DiffView(TextPane):
    """The state change of the selected event, against the previous event or the pinned one."""

    def show_patch(self, title: str, patch: list[dict[str, Any]], note: str = "") -> None:
        text = patch_text(title, patch)
        if note:
            text.append("\n" + note, style="dim")
        self.show(text)

    def show_note(self, note: str) -> None:
        self.show(Text(note, style="dim"))
