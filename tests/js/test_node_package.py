"""The rdt-devtools Node package (node/rdt-devtools): its own ``node --test`` suite, and its
canonical JSON and state hashes byte-identical to Python's on the shared corpus."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from devtools.canonical import canonical_bytes, state_hash
from devtools.jsonutil import loads

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "node" / "rdt-devtools"
CORPUS = ROOT / "tests" / "corpus" / "canonical.json"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs node on PATH")


def test_the_package_unit_tests_pass() -> None:
    """Its pure parts (numbering, ts, join, auth, protocol) need no packages: no npm needed."""
    run = subprocess.run(
        ["node", "--test", "test/"], cwd=PACKAGE, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "# fail 0" in run.stdout


def test_the_package_canonical_module_is_the_replayers() -> None:
    """A copy (the package installs on its own), kept identical so the hashes cannot drift."""
    copy = (PACKAGE / "src" / "canonical.mjs").read_bytes()
    assert copy == (ROOT / "replayer" / "js" / "canonical.mjs").read_bytes()


def test_the_package_hashes_equal_pythons_on_the_shared_corpus() -> None:
    run = subprocess.run(
        [
            "node",
            str(ROOT / "tests" / "js" / "canonical_corpus.mjs"),
            str(CORPUS),
            str(PACKAGE / "src" / "canonical.mjs"),
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    mine = json.loads(run.stdout)
    corpus = json.loads(CORPUS.read_text(encoding="utf-8"))
    assert len(mine["same"]) == len(corpus["same"]) > 10
    for entry, got in zip(corpus["same"], mine["same"], strict=True):
        value = loads(entry["json"])
        assert bytes.fromhex(got["hex"]) == canonical_bytes(value), entry["name"]
        assert got["hash"] == state_hash(value), entry["name"]
