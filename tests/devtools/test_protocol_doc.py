"""docs/PROTOCOL.md cannot drift: its hash vectors are recomputed here (Python and the Node
package), and the README and the docs point into the repository only."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from devtools.canonical import canonical_bytes, state_hash
from devtools.jsonutil import loads

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "PROTOCOL.md"


def vectors() -> list[dict]:
    text = DOC.read_text(encoding="utf-8")
    block = re.search(r"```jsonl\n(.*?)```", text, re.S)
    assert block, "docs/PROTOCOL.md has its ```jsonl block of hash vectors"
    return [json.loads(line) for line in block.group(1).splitlines() if line.strip()]


def test_every_vector_is_what_devtools_canonical_gives() -> None:
    found = vectors()
    assert len(found) >= 5
    for vector in found:
        value = loads(vector["in"])
        assert canonical_bytes(value) == vector["canonical"].encode("utf-8"), vector["in"]
        assert state_hash(value) == vector["hash"], vector["in"]


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node on PATH")
def test_the_node_package_gives_the_same_hashes_where_js_holds_the_numbers() -> None:
    """Integers beyond 2^53 aside (JS holds doubles), the package hashes every vector alike."""
    safe = [v for v in vectors() if not re.search(r"\d{17,}", v["in"])]
    script = (
        "import { canonical, stateHash } from './node/rdt-devtools/src/canonical.mjs';"
        "const vs = JSON.parse(process.argv[1]);"
        "const out = vs.map((v) => [canonical(JSON.parse(v)), stateHash(JSON.parse(v))]);"
        "console.log(JSON.stringify(out));"
    )
    run = subprocess.run(
        ["node", "--input-type=module", "-e", script, json.dumps([v["in"] for v in safe])],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(run.stdout) == [[v["canonical"], v["hash"]] for v in safe]


def test_readme_and_docs_point_into_the_repository_only() -> None:
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        assert "../shared" not in text, path.name
        for target in re.findall(r"\]\(([^)#]+)\)", text):
            if "://" not in target:
                assert (path.parent / target).exists(), f"{path.name} links {target}"
