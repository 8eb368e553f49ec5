"""The Hits tab: the changes a search found (``F``), one a line; ``n``/``N`` step through them."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from replayer.search import ABSENT
from tui.text import preview, visible
from tui.widgets.textpane import TextPane

MAX_HITS = 2000
"""Hits listed (``n``/``N`` reach every one)."""


def _value(value: Any) -> str:
    return "absent" if value is ABSENT else preview(value, 60)


def hits_text(query: str, hits: list[Any], current: int | None = None) -> Text:
    """``hits`` under a title naming ``query``; the one at ``current`` v is marked."""
    text = Text(f"search {visible(query)}: {len(hits):,} change", style="bold")
    text.append("s" if len(hits) != 1 else "", style="bold")
    text.append("   n / N: next / previous\n\n", style="dim")
    if not hits:
        text.append("the observation never changes\n", style="dim")
    for hit in hits[:MAX_HITS]:
        here = hit.v == current
        text.append("▶ " if here else "  ", style="bold yellow")
        text.append(f"v {hit.v:<8}", style="bold" if here else "")
        text.append(f"{visible(hit.type or '-'):<22} ", style="cyan")
        text.append(f"{hit.what:<11}")
        if hit.what not in ("starts", "stops"):
            text.append(_value(hit.old), style="red")
            text.append(" → ")
            text.append(_value(hit.new), style="green")
        text.append("\n")
    if len(hits) > MAX_HITS:
        text.append(f"… {len(hits) - MAX_HITS:,} more\n", style="dim")
    return text


class HitsView(TextPane):
    """The search's hits."""
