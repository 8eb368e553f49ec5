"""``rdt sample`` through the real CLI app."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from devtools.cli import app

pytestmark = pytest.mark.timeout(60)

runner = CliRunner()


def test_help_has_an_example():
    result = runner.invoke(app, ["sample", "--help"])
    assert result.exit_code == 0
    assert "Example: rdt sample" in result.output


def test_unknown_sample_is_one_line_exit_3():
    result = runner.invoke(app, ["sample", "pizza"])
    assert result.exit_code == 3
    assert "unknown sample 'pizza'" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("name", ["sales-order", "sales-order-buggy", "shopping-list"])
def test_runs_prints_urls_and_generated_token(name, monkeypatch):
    monkeypatch.delenv("RDT_TOKEN", raising=False)
    result = runner.invoke(
        app, ["sample", name, "--port", "0", "--traffic", "5", "--duration", "0"]
    )
    assert result.exit_code == 0, result.output
    assert "clients:  ws://127.0.0.1:" in result.output
    assert "/devtools" in result.output
    token_line = next(line for line in result.output.splitlines() if line.startswith("token:"))
    assert len(token_line.split()[1]) >= 32
    assert "traffic:" in result.output


def test_given_token_is_not_echoed():
    result = runner.invoke(
        app, ["sample", "shopping-list", "--port", "0", "--token", "sekrit", "--duration", "0"]
    )
    assert result.exit_code == 0, result.output
    assert "sekrit" not in result.output
    assert "(from --token)" in result.output


def test_port_in_use_is_bad_input():
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(
            app, ["sample", "sales-order", "--port", str(port), "--duration", "0"]
        )
    assert result.exit_code == 3
    assert "cannot listen" in result.output
