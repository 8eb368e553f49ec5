"""``--recording REF`` means the same recording in every command that takes it.

The log holds three recordings: id 1 named ``alpha``, id 2 named ``7`` and id 3 named ``2``.
So ``1`` is an id, ``7`` is a name (no recording has id 7), ``2`` is both recording 2's id and
recording 3's name (exit 3, naming ``id:2`` and ``name:2``), and the prefixes pick either.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devtools.cli import app
from devtools.errors import AmbiguousRecording, UnknownRecording
from devtools.store import Log
from tests import factories
from tests.factories import T0, event

runner = CliRunner()
REDUCER = str(Path(factories.__file__)) + ":counter_reducer"
RECORDINGS = (("alpha", 3, 1), ("7", 4, 2), ("2", 5, 3))
"""(name, events, the ``by`` of each event) for recordings 1, 2, 3."""

SAME = [
    ("1", "id:1"),  # a number that is only an id
    ("7", "name:7"),  # a number that is only a name
    ("id:2", "name:7"),  # the prefixes
    ("3", "name:2"),
]
"""Pairs of refs that name the same recording."""


@pytest.fixture(scope="module")
def log(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("refs") / "refs.rdtlog")
    with Log.open(path, create=True) as opened:
        for name, count, by in RECORDINGS:
            writer = opened.writer(name=name, started_ns=T0)
            writer.add_events([event(v, by=by) for v in range(1, count + 1)])
            writer.close(ended_ns=T0 + 10**9)
    return path


@pytest.fixture(scope="module")
def against(tmp_path_factory) -> str:
    """A second reducer that disagrees on recording 2's events (``by`` 2) only."""
    path = tmp_path_factory.mktemp("against") / "other.py"
    path.write_text(
        "def reducer(state, ev):\n"
        "    state = state or {'count': 0}\n"
        "    if ev.get('type') != 'counter/added':\n"
        "        return state\n"
        "    extra = 100 if ev['by'] == 2 else 0\n"
        "    return {**state, 'count': state['count'] + ev['by'] + extra}\n"
    )
    return f"{path}:reducer"


def _lines(out: str) -> list:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


COMMANDS = {
    "log": (["log", "{log}", "--kind", "events", "--json"], lambda r: _lines(r.stdout)),
    "export": (["export", "{log}"], lambda r: _lines(r.stdout)[0]["name"]),
    "state": (["state", "{log}", "--reducer", REDUCER, "--json"], lambda r: r.stdout),
    "diff": (["diff", "{log}", "0", "1", "--reducer", REDUCER, "--json"], lambda r: r.stdout),
    "bisect": (
        ["bisect", "{log}", "--reducer", REDUCER, "--bad", "state['count'] >= 6", "--json"],
        lambda r: (r.exit_code, r.stdout),
    ),
    "what-if": (
        ["what-if", "{log}", "--reducer", REDUCER, "--skip", "1", "--json"],
        lambda r: r.stdout,
    ),
    "verify": (
        ["verify", "{log}", "--reducer", REDUCER, "--runs", "1", "--json"],
        lambda r: (r.exit_code, json.loads(r.stdout)["info"].get("events")),
    ),
    "compare": (
        ["compare", "{log}", "--reducer", REDUCER, "--against", "{against}", "--json"],
        lambda r: (r.exit_code, r.stdout),
    ),
    "gen-test": (
        ["gen-test", "{log}", "--reducer", REDUCER, "--from", "1", "--to", "2"],
        lambda r: r.stdout,
    ),
    "tui": (["tui", "{log}"], lambda r: r.stdout),
}


@pytest.fixture
def invoke(log, against, monkeypatch):
    """Run a command of :data:`COMMANDS` with ``-r REF``; the TUI prints its recording's name
    instead of opening the screen (the one stand-in here: there is no terminal)."""
    from tui.app import RdtApp

    monkeypatch.setattr(RdtApp, "run", lambda self, *a, **k: print(f"tui on {self.log_name}"))

    def run(command: str, ref: str):
        args, fingerprint = COMMANDS[command]
        argv = [a.format(log=log, against=against) for a in args] + ["--recording", ref]
        result = runner.invoke(app, argv)
        return result, fingerprint

    return run


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_takes_the_same_recording_for_the_same_ref(invoke, command):
    seen = {}
    for a, b in SAME:
        first, fingerprint = invoke(command, a)
        second, _ = invoke(command, b)
        assert first.exit_code in (0, 1), (a, first.output)
        assert second.exit_code == first.exit_code, (b, second.output)
        seen[a] = fingerprint(first)
        assert fingerprint(second) == seen[a], (command, a, b)
    # and the refs of different recordings give different answers
    assert len({repr(seen[a]) for a in ("1", "7", "3")}) == 3, seen


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_number_that_is_an_id_and_another_name_is_exit_3(invoke, command):
    result, _ = invoke(command, "2")
    assert result.exit_code == 3, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "ambiguous" in lines[0], result.stderr
    assert "id:2" in lines[0] and "name:2" in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_unknown_ref_is_exit_3(invoke, command):
    for ref in ("9", "id:7", "name:alpha2", "id:x"):
        result, _ = invoke(command, ref)
        assert result.exit_code == 3, (ref, result.output)
        assert "see rdt ls" in result.stderr and "Traceback" not in result.stderr


def test_the_rule_in_the_store(log):
    with Log.open(log) as opened:
        assert opened.recording("1").name == "alpha"
        assert opened.recording(1).name == "alpha"
        assert opened.recording("7").id == 2
        assert opened.recording("alpha").id == 1
        assert opened.recording("name:2").id == 3
        assert opened.recording("id:2").name == "7"
        assert opened.recording(2).name == "7"  # an int is an id: no ambiguity for code
        assert opened.recording().id == 3  # the latest
        with pytest.raises(AmbiguousRecording):
            opened.recording("2")
        with pytest.raises(UnknownRecording):
            opened.recording(7)


def test_help_says_the_rule():
    result = runner.invoke(app, ["state", "--help"])
    assert "id:N or name:N" in " ".join(result.output.split())
