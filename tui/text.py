"""How the TUI turns recorded data into display text: always through ``devtools.sanitize``.

Every string that came from a log or a live feed reaches a widget as a :class:`rich.text.Text`
built by :func:`devtools.sanitize.safe_text` (control, bidi and format characters made visible),
never as a markup string. The helpers here only add layout (JSON pretty-printing, hex dumps,
times) on top of that one sanitizer.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from rich.text import Text

from devtools.sanitize import safe_text, visible

__all__ = ["clock", "hex_dump", "json_text", "preview", "safe_text", "visible"]

MAX_JSON_CHARS = 200_000
"""Longest JSON text shown in a tab (the rest is cut with a note)."""


def clock(t_ns: int) -> str:
    """``HH:MM:SS.mmm`` (UTC) of a recorded wall-clock time; ``--:--`` when unknown."""
    if not t_ns:
        return "--:--:--.---"
    moment = dt.datetime.fromtimestamp(t_ns / 1e9, tz=dt.UTC)
    return moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def json_text(value: Any, style: str = "") -> Text:
    """``value`` as indented JSON on real lines, sanitised, as ``Text`` (long output is cut with a
    note). JSON escapes the control characters inside strings itself (``\\n``, ``\\u001b``);
    every other unsafe character (bidi, format) is made visible; only the layout's own line
    breaks stay line breaks."""
    try:
        rendered = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=repr)
    except (TypeError, ValueError):
        rendered = repr(value)
    cut = len(rendered) > MAX_JSON_CHARS
    text = safe_text(rendered[:MAX_JSON_CHARS], keep_newlines=True)
    if style:
        text.stylize(style)
    if cut:
        text.append(f"\n… {len(rendered) - MAX_JSON_CHARS:,} more characters", style="dim")
    return text


def preview(value: Any, limit: int = 60) -> str:
    """A one-line, sanitised preview of a JSON value (for tree labels and diffs)."""
    try:
        rendered = json.dumps(value, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        rendered = repr(value)
    if len(rendered) > limit:
        rendered = rendered[: limit - 1] + "…"
    return visible(rendered)


def hex_dump(data: bytes, limit: int = 4096) -> Text:
    """Classic 16-bytes-a-line hex dump with printable ASCII beside it."""
    lines = []
    for offset in range(0, min(len(data), limit), 16):
        chunk = data[offset : offset + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        ascii_ = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        lines.append(f"{offset:08x}  {hexes:<47}  {ascii_}")
    if len(data) > limit:
        lines.append(f"… {len(data) - limit:,} more bytes")
    return Text("\n".join(lines))
