"""The `rdt` command line as a whole: every command of DESIGN.md §3 is there and documented."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from devtools.cli import app

runner = CliRunner()

DESIGNED_COMMANDS = [
    "demo",
    "sample",
    "record",
    "inject",
    "ls",
    "log",
    "state",
    "diff",
    "bisect",
    "what-if",
    "verify",
    "compare",
    "export",
    "import",
    "gen-test",
    "tui",
]


def test_rdt_help_lists_every_designed_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    missing = [name for name in DESIGNED_COMMANDS if f" {name} " not in result.output]
    assert missing == []


@pytest.mark.parametrize("name", DESIGNED_COMMANDS)
def test_every_command_has_help_with_an_example(name: str) -> None:
    result = runner.invoke(app, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "rdt " + name in result.output.replace("\n", " ")
    assert "example" in result.output.lower()


def test_unknown_command_is_a_usage_error() -> None:
    result = runner.invoke(app, ["no-such-command"])
    assert result.exit_code == 2
