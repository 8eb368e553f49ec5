"""Runs the JavaScript unit tests (tests/js/*.test.mjs) with ``node --test`` under pytest."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node on PATH")
@pytest.mark.parametrize("name", sorted(p.name for p in HERE.glob("*.test.mjs")))
def test_node_test_file_passes(name: str) -> None:
    run = subprocess.run(
        ["node", "--test", str(HERE / name)], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
