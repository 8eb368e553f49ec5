"""The JS worker's canonical JSON (replayer/js/canonical.mjs) against devtools.canonical.

Both sides read the shared corpus tests/corpus/canonical.json: Python parses each JSON text
with devtools.jsonutil.loads and writes canonical_bytes; node parses it with JSON.parse and
writes canonical.mjs's text. The bytes and the state hashes must be identical. Integers beyond
±2**53 differ by nature (JavaScript holds doubles): checked separately, JS giving the double's
form.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from devtools.canonical import canonical_bytes, state_hash
from devtools.jsonutil import loads

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "corpus" / "canonical.json"
SCRIPT = ROOT / "tests" / "js" / "canonical_corpus.mjs"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs node on PATH")


@pytest.fixture(scope="module")
def corpus() -> dict:
    return json.loads(CORPUS.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def js(corpus: dict) -> dict:
    run = subprocess.run(
        ["node", str(SCRIPT), str(CORPUS)], capture_output=True, check=True, timeout=60
    )
    return json.loads(run.stdout)


def test_corpus_covers_the_cases_of_the_brief(corpus: dict) -> None:
    names = {entry["name"] for entry in corpus["same"]}
    for needed in (
        "negative zero",
        "1e21",
        "5e-324",
        "1e-7",
        "near 2^53",
        "deep object",
        "bmp and astral keys",
        "escapes",
        "empty containers",
        "unicode strings",
    ):
        assert needed in names


def test_every_corpus_entry_is_byte_identical(corpus: dict, js: dict) -> None:
    assert len(js["same"]) == len(corpus["same"])
    for entry, mine in zip(corpus["same"], js["same"], strict=True):
        value = loads(entry["json"])
        expected = canonical_bytes(value)
        assert bytes.fromhex(mine["hex"]) == expected, entry["name"]
        assert mine["hash"] == state_hash(value), entry["name"]


def test_utf16_key_order_is_not_code_point_order(js: dict) -> None:
    """U+1F600 (UTF-16 D83D DE00) sorts before U+E000 in JCS, after it by code point."""
    entry = next(e for e in js["same"] if e["name"] == "keys by utf-16 not code point")
    text = bytes.fromhex(entry["hex"]).decode()
    assert text == '{"\U00010000":2,"\ue000":3,"\uff61":1}'


def test_integers_beyond_2_53_are_the_double_form_in_js(corpus: dict, js: dict) -> None:
    for entry, mine in zip(corpus["beyond_safe"], js["beyond_safe"], strict=True):
        assert bytes.fromhex(mine["hex"]).decode() == entry["js"], entry["name"]
        # Python keeps the exact integer, so the two sides differ here by nature …
        assert canonical_bytes(loads(entry["json"])) != entry["js"].encode(), entry["name"]
        # … and agree once Python holds the same double.
        as_double = json.loads(entry["json"], parse_int=float)
        assert canonical_bytes(as_double) == entry["js"].encode(), entry["name"]
