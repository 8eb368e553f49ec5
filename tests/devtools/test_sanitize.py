"""visible/safe_text: recorded text never reaches the terminal as a control or as markup."""

from __future__ import annotations

import io
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from rich.text import Text

from devtools.sanitize import UNSAFE_RANGES, safe_text, visible

CORPUS = [
    "\x1b]0;title\x07",  # OSC: set the window title
    "\x1b]52;c;aGVsbG8=\x07",  # OSC 52: write the clipboard
    "\x9b31mred",  # 8-bit CSI
    "abc\u202edcba",  # right-to-left override
    "[link=https://example.org]x[/link]",
    "[/bold]",
    "[type=x, v={'a[0]'}]",
    "\x1b[2J\x1b[H",
    "zero\u200bwidth\ufeff\u2066iso\u2069",
]


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),
        ("\x9b", "\\x9b"),
        ("a\u202eb", "a\\u202eb"),
        ("\x00\x7f\x85", "\\x00\\x7f\\x85"),
        ("tab\tline\nret\r", "tab\\tline\\nret\\r"),
        ("\u061c\u200f\u2028\u2029", "\\u061c\\u200f\\u2028\\u2029"),
        ("lone \ud800", "lone \\ud800"),
        ("tag \U000e0041", "tag \\U000e0041"),
        ("héllo wörld 😀 日本", "héllo wörld 😀 日本"),
        ("[bold]x[/bold]", "[bold]x[/bold]"),
        ("", ""),
    ],
)
def test_visible(text: str, shown: str) -> None:
    assert visible(text) == shown


def test_keep_newlines() -> None:
    assert visible("a\nb\r\x1b", keep_newlines=True) == "a\nb\\r\\x1b"
    assert visible("a\nb") == "a\\nb"


def test_printable_text_is_returned_as_is() -> None:
    text = "plain text " * 1000
    assert visible(text) is text


def test_covers_unicode_control_and_format_categories() -> None:
    """Every Cc, Cf, Cs, Zl, Zp code point of this Python's Unicode database is escaped."""
    covered = set()
    for low, high in UNSAFE_RANGES:
        covered.update(range(low, high + 1))
    wanted = {
        code
        for code in range(0x110000)
        if unicodedata.category(chr(code)) in {"Cc", "Cf", "Cs", "Zl", "Zp"}
    }
    assert wanted <= covered
    sample = "".join(chr(code) for code in sorted(wanted))
    assert all(
        unicodedata.category(c) not in {"Cc", "Cf", "Cs", "Zl", "Zp"} for c in visible(sample)
    )


@given(st.text(st.characters(codec=None, exclude_categories=())))
def test_nothing_unsafe_survives(text: str) -> None:
    shown = visible(text)
    assert all(unicodedata.category(c) not in {"Cc", "Cf", "Cs", "Zl", "Zp"} for c in shown)
    if text.isprintable():
        assert shown == text


def test_safe_text_is_text_not_markup() -> None:
    text = safe_text("[bold]x[/bold]\x1b", "red")
    assert isinstance(text, Text)
    assert text.plain == "[bold]x[/bold]\\x1b"
    assert text.spans == [] and str(text.style) == "red"


@pytest.mark.parametrize("payload", CORPUS)
def test_corpus_renders_inert(payload: str) -> None:
    stream = io.StringIO()
    console = Console(
        file=stream, record=True, force_terminal=True, color_system="truecolor", width=200
    )
    console.print(safe_text(payload))
    raw = stream.getvalue()
    exported = console.export_text()
    for output in (raw, exported):
        assert "\x1b]" not in output and "\x9b" not in output and "\x07" not in output
        assert "\u202e" not in output and "\u200b" not in output
    # Rich adds no escape sequences of its own for unstyled text, so any ESC would be the data's.
    assert "\x1b" not in raw
    assert exported.rstrip("\n") == visible(payload)
    if "[" in payload and payload.isprintable():
        assert payload in exported  # markup-looking text appears literally
