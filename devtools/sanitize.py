"""Make untrusted text safe to show: control and bidi/format characters become visible escapes.

Rich and Textual stop markup injection only when given ``Text`` objects; they pass terminal escape
sequences through. Every string read from a log goes through :func:`visible` (or
:func:`safe_text`, which also wraps it in a ``Text``) before it reaches a console or a widget.

Made visible: C0 controls and DEL, C1 controls (0x80–0x9F, including the 8-bit CSI 0x9B),
every format character (Unicode category Cf: zero-width characters, bidi embeddings, overrides
and isolates such as U+202E, U+061C, U+FEFF, soft hyphen, tag characters), the line and
paragraph separators U+2028/U+2029, and lone surrogates. ``\\t``, ``\\n`` and ``\\r`` are shown
as such, others as ``\\x1b``, ``\\u202e`` or ``\\U000e0041``. A backslash already in the text is
left alone, so ``\\x1b`` typed literally and a real ESC look alike — the point is that neither
reaches the terminal as a control.
"""

from __future__ import annotations

import re

from rich.style import Style
from rich.text import Text

__all__ = ["UNSAFE_RANGES", "safe_text", "visible"]

UNSAFE_RANGES: tuple[tuple[int, int], ...] = (
    (0x0000, 0x001F),  # C0 controls
    (0x007F, 0x009F),  # DEL, C1 controls (0x9B is the 8-bit CSI)
    (0x00AD, 0x00AD),  # soft hyphen
    (0x0600, 0x0605),  # Arabic number signs
    (0x061C, 0x061C),  # Arabic letter mark (bidi)
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),  # Mongolian vowel separator
    (0x200B, 0x200F),  # zero-width space/joiners, LRM, RLM
    (0x2028, 0x202E),  # line/paragraph separators, bidi embeddings and overrides
    (0x2060, 0x2064),  # word joiner, invisible operators
    (0x2066, 0x206F),  # bidi isolates, deprecated format characters
    (0xD800, 0xDFFF),  # lone surrogates
    (0xFEFF, 0xFEFF),  # zero-width no-break space (BOM)
    (0xFFF9, 0xFFFB),  # interlinear annotation
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),  # Egyptian hieroglyph format controls (Unicode 15 adds 1343[9-F])
    (0x1BCA0, 0x1BCA3),  # shorthand format controls
    (0x1D173, 0x1D17A),  # musical symbol format controls
    (0xE0001, 0xE0001),  # language tag
    (0xE0020, 0xE007F),  # tag characters
)
"""Code points :func:`visible` escapes: Unicode categories Cc, Cf, Cs, Zl and Zp (a test checks
that this covers them in the running Python's Unicode database)."""

_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _char_class(exclude: str = "") -> re.Pattern[str]:
    parts = []
    for low, high in UNSAFE_RANGES:
        for start, end in _split(low, high, {ord(c) for c in exclude}):
            parts.append(re.escape(chr(start)) + ("-" + re.escape(chr(end)) if end > start else ""))
    return re.compile("[" + "".join(parts) + "]")


def _split(low: int, high: int, holes: set[int]) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    start = low
    for code in range(low, high + 1):
        if code in holes:
            if code > start:
                spans.append((start, code - 1))
            start = code + 1
    if start <= high:
        spans.append((start, high))
    return spans


_UNSAFE = _char_class()
_UNSAFE_KEEP_NEWLINES = _char_class("\n")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    short = _SHORT.get(char)
    if short is not None:
        return short
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def visible(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every control, bidi/format character and lone surrogate made visible.

    Args:
        text: untrusted text.
        keep_newlines: keep ``\\n`` as a line break (for multi-line views); single-line cells
            leave it ``False`` so a newline shows as ``\\n``.

    Returns:
        ``text`` itself when nothing needed escaping.
    """
    if text.isprintable():  # C-speed fast path: no Cc, Cf, Cs, Zl, Zp (nor Zs/Co/Cn) inside
        return text
    pattern = _UNSAFE_KEEP_NEWLINES if keep_newlines else _UNSAFE
    return pattern.sub(_escape, text)


def safe_text(
    text: str, style: str | Style = "", *, keep_newlines: bool = False, no_wrap: bool | None = None
) -> Text:
    """A Rich ``Text`` of :func:`visible` ``(text)``: never parsed as markup, never a control.

    Args:
        text: untrusted text.
        style: a style for the whole text (our own, never taken from the data).
        keep_newlines: see :func:`visible`.
        no_wrap: passed to ``Text``.
    """
    return Text(visible(text, keep_newlines=keep_newlines), style=style, no_wrap=no_wrap)
