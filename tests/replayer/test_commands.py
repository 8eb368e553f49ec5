"""`rdt state`, `rdt diff`, `rdt bisect`, `rdt what-if` through the real CLI app."""

from __future__ import annotations

import json

import jsonpatch
import pytest
from typer.testing import CliRunner

from devtools.cli import app
from tests.replayer.test_engine import BUGGY, NEGATIVE, write_sales_log

GOOD = "samples.sales_order:reducer"
runner = CliRunner()


@pytest.fixture
def log(tmp_path):
    path = str(tmp_path / "orders.rdtlog")
    write_sales_log(path, 200, bug_at=150)
    return path


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_state_json(log):
    result = run("state", log, "--reducer", GOOD, "--at", 4, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["v"] == 4 and "orders" in doc["state"]
    last = json.loads(run("state", log, "--reducer", GOOD, "--json").stdout)
    assert last["v"] == 200


def test_diff_json_applies(log):
    a = json.loads(run("state", log, "--reducer", GOOD, "--at", 20, "--json").stdout)["state"]
    b = json.loads(run("state", log, "--reducer", GOOD, "--at", 60, "--json").stdout)["state"]
    result = run("diff", log, 20, 60, "--reducer", GOOD, "--json")
    doc = json.loads(result.stdout)
    assert (doc["from"], doc["to"]) == (20, 60)
    assert jsonpatch.apply_patch(a, doc["patch"]) == b


def test_diff_tree_is_plain_text(tmp_path):
    from devtools.store import Log
    from tests.factories import T0, event

    path = str(tmp_path / "evil.rdtlog")
    with Log.open(path, create=True) as lg:
        writer = lg.writer(name="evil", started_ns=T0)
        writer.add_events(
            [
                event(1, "order/created", id="[bold]x\x1b[31m", customer="[red]ACME"),
            ]
        )
        writer.close()
    result = run("diff", path, 0, 1, "--reducer", GOOD)
    assert result.exit_code == 0, result.output
    assert "[bold]x\\x1b[31m" in result.stdout
    assert "\x1b" not in result.stdout


def test_bisect_finds_the_planted_bug(log):
    result = run("bisect", log, "--reducer", BUGGY, "--bad", NEGATIVE, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["v"] == 150
    assert doc["event"]["type"] == "order/line-removed"
    assert {"op": "replace", "path": "/orders/bug/total", "value": -1000} in doc["diff"]
    text = run("bisect", log, "--reducer", BUGGY, "--bad", NEGATIVE)
    assert text.exit_code == 0 and "v=150" in text.stdout


def test_bisect_never_exits_1(log):
    result = run("bisect", log, "--reducer", GOOD, "--bad", NEGATIVE, "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"v": None, "event": None, "diff": None}


def test_what_if_json(log):
    result = run("what-if", log, "--reducer", BUGGY, "--skip", "150", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["skipped"] == [150] and doc["first_divergent_v"] == 150
    assert any(op["path"] == "/orders/bug/total" for op in doc["diff"])


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("state", "{log}", "--reducer", "nope.mod:reducer"), "cannot load reducer"),
        (("state", "{log}", "--reducer", GOOD, "--at", "999"), "out of range"),
        (("state", "{log}", "--reducer", GOOD, "--recording", "nope"), "nope"),
        (("state", "{log}", "--reducer", GOOD, "--source", "frames"), "--source"),
        (("diff", "{log}", "0", "500", "--reducer", GOOD), "out of range"),
        (("bisect", "{log}", "--reducer", GOOD, "--bad", "state["), "not valid Python"),
        (("bisect", "{log}", "--reducer", GOOD, "--bad", "state['x']"), "raised at v=200"),
        (("what-if", "{log}", "--reducer", GOOD, "--skip", "a,b"), "--skip takes"),
        (("what-if", "{log}", "--reducer", GOOD, "--skip", "900"), "out of range"),
        (("state", "/nonexistent/x.rdtlog", "--reducer", GOOD), "rdt:"),
    ],
)
def test_bad_input_is_one_line_exit_3(log, args, words):
    result = run(*[a.format(log=log) for a in args])
    assert result.exit_code == 3, result.output
    assert words in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_reducer_that_raises_exits_1_with_v_event_and_traceback(log, tmp_path):
    path = tmp_path / "crash.py"
    path.write_text(
        "def reducer(state, event):\n"
        "    if event.get('v') == 33:\n"
        "        raise KeyError('order')\n"
        "    return state or {}\n"
    )
    result = run("state", log, "--reducer", f"{path}:reducer")
    assert result.exit_code == 1
    assert "v=33" in result.stderr
    assert '"v":33' in result.stderr
    assert "crash.py" in result.stderr and "KeyError" in result.stderr


@pytest.mark.parametrize("name", ["state", "diff", "bisect", "what-if"])
def test_help_has_an_example(name):
    result = run(name, "--help")
    assert result.exit_code == 0
    assert "Example: rdt " + name in result.stdout


def test_diff_tree_shows_old_and_new_values(tmp_path):
    from devtools.store import Log
    from tests.factories import T0, event

    path = str(tmp_path / "totals.rdtlog")
    with Log.open(path, create=True) as lg:
        writer = lg.writer(name="totals", started_ns=T0)
        writer.add_events(
            [
                event(1, "order/created", id="o1", customer="ACME"),
                event(2, "order/line-added", order="o1", sku="a", qty=1, price=1567),
                event(3, "order/line-added", order="o1", sku="b", qty=2, price=719),
            ]
        )
        writer.close()
    before = json.loads(run("state", path, "--reducer", GOOD, "--at", 2, "--json").stdout)
    after = json.loads(run("state", path, "--reducer", GOOD, "--at", 3, "--json").stdout)
    old_total = before["state"]["orders"]["o1"]["total"]
    new_total = after["state"]["orders"]["o1"]["total"]
    assert old_total != new_total
    result = run("diff", path, 2, 3, "--reducer", GOOD)
    assert result.exit_code == 0, result.output
    assert f"total: {old_total} → {new_total}" in result.stdout
    plain = json.loads(run("diff", path, 2, 3, "--reducer", GOOD, "--json").stdout)["patch"]
    assert all("from_value" not in op for op in plain)  # --json stays a plain RFC 6902 patch
