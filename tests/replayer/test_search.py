"""`rdt search`: the pure change detection, the one-pass search over a replay, and the CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from devtools.cli import app
from devtools.errors import BadInput
from replayer.engine import Replay
from replayer.errors import BadExpression, PredicateError, VersionOutOfRange
from replayer.search import (
    ABSENT,
    Change,
    GrepProbe,
    PathProbe,
    WhereProbe,
    changes,
    parse_query,
    probe,
    search,
)
from tests.replayer.test_engine import write_sales_log
from tests.samples.js_support import SMALL_TS0, requires_node
from tests.samples.js_support import write_sales_log as write_js_log

GOOD = "samples.sales_order:reducer"
runner = CliRunner()


def steps(*states):
    return [(v, {"type": f"t{v}"}, s) for v, s in enumerate(states, 1)]


# ---------------------------------------------------------------- the pure core


def test_path_appears_changes_disappears():
    found = list(
        changes(
            PathProbe.parse("/a/b"),
            (0, {}),
            steps({"a": {"b": 1}}, {"a": {"b": 1}, "x": 2}, {"a": {"b": 2}}, {"a": {}}, {}),
        )
    )
    assert [(c.v, c.old, c.new, c.what) for c in found] == [
        (1, ABSENT, 1, "appears"),
        (3, 1, 2, "changes"),
        (4, 2, ABSENT, "disappears"),
    ]
    assert [c.to_json() for c in found] == [
        {"v": 1, "new": 1},
        {"v": 3, "old": 1, "new": 2},
        {"v": 4, "old": 2},
    ]
    assert found[0].type == "t1"


def test_path_null_is_a_value_and_types_are_strict():
    found = list(changes(PathProbe.parse("/a"), (0, {"a": 1}), steps({"a": 1.0}, {"a": None})))
    assert [(c.v, c.old, c.new) for c in found] == [(1, 1, 1.0), (2, 1.0, None)]
    assert found[1].to_json() == {"v": 2, "old": 1.0, "new": None}


def test_path_into_lists_and_escapes():
    p = PathProbe.parse("/l/1/a~1b")
    assert p({"l": [0, {"a/b": 7}]}, None, 0) == 7
    assert p({"l": [0]}, None, 0) is ABSENT
    assert PathProbe.parse("/l/01")({"l": [1, 2]}, None, 0) is ABSENT
    assert PathProbe.parse("")({"x": 1}, None, 0) == {"x": 1}
    with pytest.raises(BadInput, match="JSON Pointer"):
        PathProbe.parse("orders")


def test_grep_starts_and_stops():
    found = list(
        changes(GrepProbe.parse(r'^"sku": "R\d'), (0, {}), steps({"sku": "R1"}, {"sku": "R2"}, {}))
    )
    assert [(c.v, c.what) for c in found] == [(1, "starts"), (3, "stops")]
    assert found[0].to_json() == {"v": 1, "old": False, "new": True}
    with pytest.raises(BadInput, match="not a valid regex"):
        GrepProbe.parse("(")


def test_where_flips_and_sees_event_and_v():
    watch = WhereProbe.parse("event is not None and event['type'] == 't2' or v == 4")
    found = list(changes(watch, (0, {}), steps({}, {}, {}, {}, {})))
    assert [(c.v, c.new) for c in found] == [(2, True), (3, False), (4, True), (5, False)]
    with pytest.raises(BadExpression, match="--where"):
        WhereProbe.parse("state[")
    with pytest.raises(PredicateError, match="--where .* raised at v=1"):
        list(changes(WhereProbe.parse("state['x']"), (0, {"x": 1}), steps({})))


def test_exactly_one_probe_and_the_tui_query():
    with pytest.raises(BadInput, match="exactly one"):
        probe()
    with pytest.raises(BadInput, match="exactly one"):
        probe(path="/a", grep="b")
    assert isinstance(parse_query("/orders/o1"), PathProbe)
    assert isinstance(parse_query("re:o1"), GrepProbe)
    assert isinstance(parse_query("state['total'] < 0"), WhereProbe)
    with pytest.raises(BadInput):
        parse_query("  ")


def test_change_to_json_keeps_values():
    assert Change(3, {"a": [1]}, ABSENT).to_json() == {"v": 3, "old": {"a": [1]}}


# ---------------------------------------------------------------- over a replay


@pytest.fixture
def log(tmp_path):
    path = str(tmp_path / "orders.rdtlog")
    write_sales_log(path, 200, bug_at=150)
    return path


def brute(replay, watch, lo, hi):
    """The changes by asking the replay for every state (the slow, obvious way)."""
    out, old = [], watch(replay.state_at(lo - 1), None, lo - 1)
    for v in range(lo, hi + 1):
        new = watch(replay.state_at(v), replay.event(v), v)
        if new != old or type(new) is not type(old):
            out.append((v, old, new))
        old = new
    return out


@pytest.mark.parametrize(
    "watch",
    [
        PathProbe.parse("/orders/o1/total"),
        GrepProbe.parse(r'"adds": 2$'),
        WhereProbe.parse("len(state['orders']) % 3 == 0"),
    ],
    ids=["path", "grep", "where"],
)
def test_search_agrees_with_state_at_every_v(log, watch):
    with Replay.open(log, reducer=GOOD, checkpoint_every=16) as replay:
        got = [(c.v, c.old, c.new) for c in search(replay, watch, from_v=30, to_v=180)]
        assert got == brute(replay, watch, 30, 180)
        assert got


def test_search_range_and_progress(log):
    seen = []
    with Replay.open(log, reducer=GOOD) as replay:
        list(search(replay, PathProbe.parse("/orders"), progress=seen.append))
        assert seen and seen[-1] == 200
        with pytest.raises(VersionOutOfRange, match="--from"):
            search(replay, PathProbe.parse("/a"), from_v=500)
        with pytest.raises(VersionOutOfRange, match="comes after"):
            search(replay, PathProbe.parse("/a"), from_v=50, to_v=10)


@requires_node
@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "watch",
    [WhereProbe.parse("len(state['orders']) % 2 == 1"), GrepProbe.parse(r'"lines": \{\}')],
    ids=["where", "grep"],
)
def test_search_with_a_js_reducer_matches_python(tmp_path, watch):
    """States parsed afresh from the Node worker (no shared objects) give the same changes."""
    path = write_js_log(tmp_path / "small.rdtlog", ts0=SMALL_TS0)
    results = []
    for ref in ("samples/js/sales_order.mjs:reducer", GOOD):
        with Replay.open(path, reducer=ref) as replay:
            results.append([c.to_json() for c in search(replay, watch)])
    assert results[0] == results[1] and len(results[0]) > 2


# ---------------------------------------------------------------- the CLI


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_cli_json_lines(log):
    result = run("search", log, "--reducer", GOOD, "--path", "/orders/o1/total", "--json")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0] == {"v": 1, "new": 0}
    assert all(set(doc) <= {"v", "old", "new"} for doc in lines)
    assert [doc["v"] for doc in lines] == sorted(doc["v"] for doc in lines)


def test_cli_text_from_to_and_exit_1_when_nothing_changes(log):
    result = run(
        "search", log, "--reducer", GOOD, "--where", "len(state['orders']) > 3", "--to", 100
    )
    assert result.exit_code == 0, result.output
    assert "at v 0: false" in result.stdout and "starts" in result.stdout
    assert "1 change" in result.stdout
    none = run("search", log, "--reducer", GOOD, "--grep", "no-such-text", "--from", 10)
    assert none.exit_code == 1 and "0 changes" in none.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--path", "orders"], "JSON Pointer"),
        (["--grep", "("], "not a valid regex"),
        (["--where", "state["], "not valid Python"),
        (["--where", "state['nope']"], "raised at v=0"),
        (["--path", "/a", "--grep", "a"], "exactly one"),
        ([], "exactly one"),
        (["--path", "/a", "--from", 999], "--from=999 is out of range"),
    ],
)
def test_cli_bad_input_is_one_line_exit_3(log, args, message):
    result = run("search", log, "--reducer", GOOD, *args)
    assert result.exit_code == 3, result.output
    assert result.stderr.startswith("rdt: ") and result.stderr.count("\n") == 1
    assert message in result.stderr


# ---------------------------------------------------------------- what-if insert


def test_what_if_insert_after_v_json_and_text(log):
    action = '{"type": "order/cancelled", "order": "o1", "ts": 5}'
    result = run("what-if", log, "--reducer", GOOD, "--insert-after", 12, action, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["first_divergent_v"] == 12 and doc["skipped"] == []
    assert doc["inserted"] == [{"after": 12, "action": json.loads(action)}]
    assert {"op": "replace", "path": "/orders/o1/status", "value": "cancelled"} in doc["diff"]
    text = run("what-if", log, "--reducer", GOOD, "--insert-after", 12, action)
    assert "inserting order/cancelled after v=12" in text.stdout
    assert '"open" → "cancelled"' in text.stdout


def test_what_if_insert_that_changes_nothing(log):
    with Replay.open(log, reducer=GOOD) as replay:
        result = replay.what_if_insert(5, {"type": "nothing/happened"})
        assert result.first_divergent_v is None and result.diff == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["--insert-after", 3, "nope"], "not JSON"),
        (["--insert-after", 3, "[1]"], 'string "type"'),
        (["--insert-after", 999, '{"type": "x"}'], "--insert-after=999 is out of range"),
        ([], "one of --skip"),
        (["--skip", 3, "--insert-after", 3, '{"type": "x"}'], "one of --skip"),
    ],
)
def test_what_if_insert_bad_input(log, args, message):
    result = run("what-if", log, "--reducer", GOOD, *args)
    assert result.exit_code == 3, result.output
    assert result.stderr.startswith("rdt: ") and message in result.stderr
