"""`rdt compare`: the first v where two reducer versions disagree."""

from __future__ import annotations

from typer.testing import CliRunner

from devtools.cli import app
from devtools.jsonutil import loads
from replayer.compare import compare_reducers
from tests.replayer.planted import REMOVED_V, write_shop_log

P = "tests.replayer.planted."
runner = CliRunner()


def test_versions_that_differ_are_named_at_the_first_v_with_the_diff(tmp_path):
    log = write_shop_log(tmp_path / "c.rdtlog")
    result = compare_reducers(log, f"{P}clean_shop:reducer", f"{P}version_b:reducer")
    assert result.first_divergent_v == REMOVED_V
    (finding,) = result.findings
    assert finding.kind == "reducer-divergence"
    assert finding.event["type"] == "item/removed"
    assert [op["path"] for op in finding.diff] == ["/count"]


def test_cli_exit_codes_and_json(tmp_path):
    log = write_shop_log(tmp_path / "c.rdtlog")
    same = runner.invoke(
        app,
        [
            "compare",
            log,
            "--reducer",
            f"{P}clean_shop:reducer",
            "--against",
            f"{P}clean_shop:reducer",
        ],
    )
    assert same.exit_code == 0, same.output
    differ = runner.invoke(
        app,
        [
            "compare",
            log,
            "--reducer",
            f"{P}clean_shop:reducer",
            "--against",
            f"{P}version_b:reducer",
            "--json",
        ],
    )
    assert differ.exit_code == 1
    doc = loads(differ.stdout)
    assert doc["ok"] is False and doc["first_divergent_v"] == REMOVED_V
    assert doc["findings"][0]["diff"][0]["path"] == "/count"


def test_a_reducer_that_raises_is_an_exception_finding(tmp_path):
    log = write_shop_log(tmp_path / "c.rdtlog")
    result = compare_reducers(log, f"{P}clean_shop:reducer", f"{P}raises_bug:reducer")
    assert [(f.kind, f.v) for f in result.findings] == [("exception", REMOVED_V)]


def test_bad_input_is_one_line_exit_3(tmp_path):
    log = write_shop_log(tmp_path / "c.rdtlog")
    bad = runner.invoke(
        app, ["compare", log, "--reducer", "nope:x", "--against", f"{P}clean_shop:reducer"]
    )
    assert bad.exit_code == 3 and bad.stderr.startswith("rdt: ")
    missing = runner.invoke(
        app,
        [
            "compare",
            str(tmp_path / "none.rdtlog"),
            "--reducer",
            f"{P}clean_shop:reducer",
            "--against",
            "a:b",
        ],
    )
    assert missing.exit_code == 3
