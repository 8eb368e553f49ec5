"""Logs the TUI tests open: a small counter log and a log full of hostile strings."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")  # tests need no tab-underline animations

import pytest

from devtools.store import Log
from tests import factories as f

CORPUS = [
    "\x1b]0;pwned\x07",
    "\x1b]52;c;aGVsbG8=\x07",
    "\x9b31mred",
    "abc\u202edef",
    "[link=https://example.org]x[/link]",
    "[/bold]",
    "[type=x, v={'a[0]'}]",
]
"""Strings that must reach the screen as inert, visible text."""


@pytest.fixture(scope="session")
def small_log_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small log, written once per session (tests get their own copy)."""
    target = tmp_path_factory.mktemp("logs") / "small.rdtlog"
    f.write_log(str(target), messages=40, events=30, snapshots=(0, 5, 10), marks=(4,))
    return target


@pytest.fixture
def small_log(small_log_master: Path, tmp_path: Path) -> str:
    """40 messages, 30 counter events (``by`` = v), snapshots at v 0, 5 and 10, a mark at #4.

    A copy per test: a replay with a reducer may write checkpoints into it."""
    target = tmp_path / "small.rdtlog"
    shutil.copyfile(small_log_master, target)
    return str(target)


@pytest.fixture
def corpus_log(tmp_path: Path) -> str:
    """Every corpus string as a message payload, a message type, an event type and field, and
    as state keys and values of a snapshot."""
    target = str(tmp_path / "corpus.rdtlog")
    with Log.open(target, create=True) as log:
        writer = log.writer(name="corpus\x1b[31m", upstream=None, started_ns=f.T0)
        writer.add_connection(f.connection(1))
        messages = []
        events = []
        for i, text in enumerate(CORPUS):
            messages.append(f.message(2 * i + 1, {"type": text, "note": text}))
            messages.append(f.message(2 * i + 2, payload=text.encode("utf-8"), flag="not-json"))
            events.append(f.event(i + 1, text, note=text, cause_seq=2 * i + 1))
        messages.append(f.message(len(messages) + 1, payload=b"\x1b\x9b\x00bin", binary=True))
        writer.add_messages(messages)
        writer.add_events(events)
        state = {text: text for text in CORPUS}
        state["nested"] = {text: [text] for text in CORPUS}
        for v in range(1, len(CORPUS) + 1):
            writer.add_snapshot(f.snapshot(v, state))
        writer.close(ended_ns=f.T0 + 10**9)
    return target
