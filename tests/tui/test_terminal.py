"""``rdt tui`` in a real terminal: tmux runs it, keys are sent, the pane is read back."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (CI has it)"),
]


SOCKET = ""
"""The test's own private tmux server (no user config, no other sessions)."""


@pytest.fixture(autouse=True)
def private_tmux_server() -> None:
    """A tmux server of each test's own: a test's ``kill-server`` at its end may still be
    shutting that server down when the next test starts one, and a client reaching it then
    fails with "server exited unexpectedly" (seen in CI)."""
    global SOCKET
    SOCKET = f"rdt-test-{uuid.uuid4().hex[:8]}"


def tmux(*args: str, check: bool = True) -> str:
    return subprocess.run(
        ["tmux", "-L", SOCKET, "-f", "/dev/null", *args],
        check=check,
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout


def wait_for_pane(session: str, needle: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    pane = ""
    while time.monotonic() < deadline:
        pane = tmux("capture-pane", "-p", "-t", session)
        if needle in pane:
            return pane
        time.sleep(0.2)
    raise AssertionError(f"{needle!r} never appeared; the pane shows:\n{pane}")


def test_opens_a_log_steps_and_quits(small_log, tmp_path) -> None:
    rdt = Path(sys.executable).parent / "rdt"
    session = f"rdt-test-{uuid.uuid4().hex[:8]}"
    done = tmp_path / "exit-code"
    # COLUMNS/LINES from the test runner would override the real terminal size
    command = f"env -u COLUMNS -u LINES {rdt} tui {small_log}; echo $? > {done}; sleep 30"
    tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "40", command)
    try:
        pane = wait_for_pane(session, "v 1 (1/30)")  # the first page is read in a worker
        assert "REPLAY" in pane and "counter/added" in pane
        tmux("send-keys", "-t", session, "j", "j", "j")
        wait_for_pane(session, "v 4 (4/30)")
        tmux("send-keys", "-t", session, "G")
        wait_for_pane(session, "v 30 (30/30)")
        tmux("send-keys", "-t", session, "q")
        deadline = time.monotonic() + 15
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert done.read_text().strip() == "0"
    finally:
        tmux("kill-server", check=False)


def test_demo_quits_promptly_on_q(tmp_path) -> None:
    """Regression: ``q`` in ``rdt demo`` took 5-10 s to exit (the server, recorder, traffic and
    feed threads each waited out their own timeouts)."""
    rdt = Path(sys.executable).parent / "rdt"
    session = f"rdt-demo-{uuid.uuid4().hex[:8]}"
    done = tmp_path / "exit-code"
    command = f"env -u COLUMNS -u LINES {rdt} demo; echo $? > {done}; sleep 30"
    tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "40", command)
    try:
        wait_for_pane(session, "LIVE")
        wait_for_pane(session, "order/")  # traffic is flowing and shown
        tmux("send-keys", "-t", session, "q")
        deadline = time.monotonic() + 5
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert done.exists(), "rdt demo still running 5 s after q"
        assert done.read_text().strip() == "0"
    finally:
        tmux("kill-server", check=False)


def test_interactive_demo_names_its_log_and_keeps_it_with_keep(tmp_path) -> None:
    """Regression: the interactive demo's log was removed on exit and never named."""
    import re

    rdt = Path(sys.executable).parent / "rdt"
    session = f"rdt-demo-{uuid.uuid4().hex[:8]}"
    done = tmp_path / "exit-code"
    command = f"env -u COLUMNS -u LINES {rdt} demo --keep; echo $? > {done}; sleep 30"
    tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "40", command)
    log = None
    try:
        wait_for_pane(session, "demo · log /")  # the header names the log
        wait_for_pane(session, "order/")
        tmux("send-keys", "-t", session, "q")
        pane = wait_for_pane(session, "open it with: rdt tui")
        found = re.search(r"demo log kept: (\S+)", pane)
        assert found is not None, pane
        log = Path(found.group(1))
        assert log.is_file()
        assert f"rdt tui {log} --reducer samples.sales_order:reducer" in pane
    finally:
        tmux("kill-server", check=False)
        if log is not None:
            shutil.rmtree(log.parent, ignore_errors=True)


def test_search_and_tab_keys_in_a_real_terminal(small_log, tmp_path) -> None:
    from tests import factories

    rdt = Path(sys.executable).parent / "rdt"
    session = f"rdt-test-{uuid.uuid4().hex[:8]}"
    done = tmp_path / "exit-code"
    reducer = str(Path(factories.__file__)) + ":counter_reducer"
    command = (
        f"env -u COLUMNS -u LINES {rdt} tui {small_log} --reducer {reducer}; "
        f"echo $? > {done}; sleep 30"
    )
    tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "40", command)
    try:
        wait_for_pane(session, "v 1 (1/30)")
        tmux("send-keys", "-t", session, "3")  # the Action tab: JSON on real lines
        wait_for_pane(session, '"type": "counter/added",')
        tmux("send-keys", "-t", session, "F")
        wait_for_pane(session, "Search the history")
        tmux("send-keys", "-t", session, "-l", "/count")
        tmux("send-keys", "-t", session, "Enter")
        pane = wait_for_pane(session, "search /count: 30 changes")
        assert "v 1 (1/30)" in pane
        tmux("send-keys", "-t", session, "n", "n")
        wait_for_pane(session, "v 3 (3/30)")
        tmux("send-keys", "-t", session, "N")
        wait_for_pane(session, "v 2 (2/30)")
        tmux("send-keys", "-t", session, "1")  # back to the State tab
        wait_for_pane(session, "state after v 2")
        tmux("send-keys", "-t", session, "q")
        deadline = time.monotonic() + 15
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert done.read_text().strip() == "0"
    finally:
        tmux("kill-server", check=False)
