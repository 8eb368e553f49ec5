"""No false green: a recording with no events (recorded without a devtools channel or
--events-from inbound) gives no state, no verdict and no Redux export: one line, exit 3;
--allow-empty for those who mean it; --source messages still replays the client messages."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from devtools.cli import app
from tests import factories
from tests.tui.helpers import settle
from tui.launch import replay_app
from tui.widgets.state_view import StateView

runner = CliRunner()
REDUCER = "tests.factories:counter_reducer"


@pytest.fixture
def empty_log(tmp_path) -> str:
    target = str(tmp_path / "empty.rdtlog")
    factories.write_log(target, name="plain", messages=10, events=0, snapshots=())
    return target


def rdt(*args: object):
    return runner.invoke(app, [str(a) for a in args])


COMMANDS = [
    ("state", "{log}", "--reducer", REDUCER),
    ("diff", "{log}", "0", "1", "--reducer", REDUCER),
    ("bisect", "{log}", "--reducer", REDUCER, "--bad", "state['count'] > 1"),
    ("what-if", "{log}", "--reducer", REDUCER, "--skip", "1"),
    ("verify", "{log}", "--reducer", REDUCER),
    ("compare", "{log}", "--reducer", REDUCER, "--against", REDUCER),
    ("export", "{log}", "--format", "redux-devtools"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_every_command_refuses_an_empty_recording_in_one_line(command, empty_log):
    result = rdt(*(a.format(log=empty_log) for a in command))
    assert result.exit_code == 3, result.output
    assert result.stderr.count("\n") == 1
    assert "recording 1 ('plain') has no events" in result.stderr
    assert "--source messages" in result.stderr and "--allow-empty" in result.stderr
    assert result.stdout == ""


def test_allow_empty_state_prints_the_initial_state(empty_log):
    result = rdt("state", empty_log, "--reducer", REDUCER, "--allow-empty", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"v": 0, "state": {"count": 0}}


def test_allow_empty_verify_exits_0_with_a_note_never_a_plain_ok(empty_log):
    result = rdt("verify", empty_log, "--reducer", REDUCER, "--allow-empty")
    assert result.exit_code == 0, result.output
    assert "nothing verified (--allow-empty)" in result.stdout
    as_json = rdt("verify", empty_log, "--reducer", REDUCER, "--allow-empty", "--json")
    assert json.loads(as_json.stdout)["info"] == {
        "events": 0,
        "note": "no events: nothing verified (--allow-empty)",
    }


def test_allow_empty_redux_export_and_jsonl_export_unchanged(empty_log, tmp_path):
    out = tmp_path / "state.json"
    refused = rdt("export", empty_log, "--format", "redux-devtools", "-o", out)
    assert refused.exit_code == 3 and not out.exists()
    allowed = rdt("export", empty_log, "--format", "redux-devtools", "--allow-empty", "-o", out)
    assert allowed.exit_code == 0 and json.loads(out.read_text())["payload"] == "[]"
    lines = rdt("export", empty_log)  # JSON Lines is the recording itself: no events is fine
    assert lines.exit_code == 0 and '"kind":"message"' in lines.stdout


def test_source_messages_still_replays_the_client_messages(empty_log):
    result = rdt("state", empty_log, "--reducer", REDUCER, "--source", "messages", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["v"] == 5  # the 5 inbound messages, numbered 1..5


async def test_the_tui_state_pane_says_the_recording_has_no_events(empty_log):
    app_, log = replay_app(empty_log, reducer=REDUCER)
    try:
        async with app_.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            state = app_.query_one(StateView)
            assert state.state is None
            assert "has no events" in str(state.root.label)
            assert any("has no events" in note for note in app_.notes)
    finally:
        log.close()
