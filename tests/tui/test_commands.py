"""``rdt tui`` and ``rdt demo`` on the command line (CliRunner, and a subprocess for the demo)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devtools.cli import app

pytestmark = pytest.mark.timeout(90)
runner = CliRunner()


@pytest.mark.parametrize("command", ["tui", "demo"])
def test_help_has_an_example(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Example: rdt " + command in result.output


def test_tui_without_a_log_or_live_url_is_one_clear_line(tmp_path) -> None:
    result = runner.invoke(app, ["tui"])
    assert result.exit_code == 3
    assert "give a LOG" in result.output


def test_tui_on_a_missing_log_exits_3(tmp_path) -> None:
    result = runner.invoke(app, ["tui", str(tmp_path / "nope.rdtlog")])
    assert result.exit_code == 3
    assert "Traceback" not in result.output


def test_tui_with_a_reducer_that_cannot_load_exits_3(small_log) -> None:
    result = runner.invoke(app, ["tui", small_log, "--reducer", "no.such.module:reducer"])
    assert result.exit_code == 3
    assert "rdt:" in result.output


def test_tui_live_needs_a_websocket_url() -> None:
    result = runner.invoke(app, ["tui", "--live", "http://example.org"])
    assert result.exit_code == 3
    assert "ws://" in result.output


def test_demo_headless_prints_a_summary_and_exits_0() -> None:
    """Runs as a user would on CI: no terminal, a fresh process, everything stopped after."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "rdt"), "demo", "--headless", "--messages", "15"],
        capture_output=True,
        text=True,
        timeout=80,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "recorded" in out and "messages and" in out and "events" in out
    assert "verify: deterministic" in out
    assert "diff of the last event" in out
    assert "\x1b" not in out  # piped: plain text
    log = out.splitlines()[0].removeprefix("demo log: ").split(" (")[0]
    assert f"demo log removed: {log}" in out  # named, then removed without --keep
    assert not Path(log).exists()


def test_demo_keep_names_the_log_and_leaves_it_for_rdt_tui() -> None:
    rdt = str(Path(sys.executable).parent / "rdt")
    result = subprocess.run(
        [rdt, "demo", "--headless", "--messages", "5", "--keep"],
        capture_output=True,
        text=True,
        timeout=80,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    kept = [line for line in result.stdout.splitlines() if line.startswith("demo log kept: ")]
    assert len(kept) == 1
    log = Path(kept[0].removeprefix("demo log kept: "))
    try:
        assert f"open it with: rdt tui {log} --reducer samples.sales_order:reducer" in result.stdout
        from devtools.store import Log

        with Log.open(str(log)) as opened:
            assert opened.reader().counts().events > 0
    finally:
        import shutil

        shutil.rmtree(log.parent, ignore_errors=True)
