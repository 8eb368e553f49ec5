"""`--order logux`: Logux's own order (``isFirstOlder`` of @logux/core, copied exactly), the
engine folding in it with recorded ``v`` numbers in and out, checkpoints kept apart by order,
and the commands that take it (state, diff, bisect, what-if, search) — Python and JS reducers."""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from devtools.cli import app
from replayer.engine import Replay
from replayer.errors import ReplayError, VersionOutOfRange
from replayer.order import NotLogux, is_first_older, logux_key, logux_ordering
from tests.factories import LOGUX_BASE, write_log, write_logux_log
from tests.samples.js_support import JS_DIR, requires_logux, requires_node

runner = CliRunner()
PY = "tests.replayer.logux_order:reducer"
JS = "tests/replayer/js_fixtures/logux_order.mjs:reducer"
B = LOGUX_BASE


def add(by: int, t: int, node: str | None = None, seq: int = 0) -> list[Any]:
    """One ``counter/add`` with its wire meta: time ``t`` relative to the connection's base
    time, from ``node`` (default: the connection's client)."""
    ident: list[Any] = [t, node, seq] if node else [t, seq]
    return [{"type": "counter/add", "by": by}, {"id": ident, "time": t}]


SKEWED = [
    ("in", ["connect", 5, "10:a", 0]),
    ("out", ["connected", 5, "server:s", [B - 1, B]]),
    ("in", ["sync", 1, *add(1, 0, seq=0)]),  # v=1, at B
    ("in", ["sync", 2, *add(2, -60_000, "20:b", 0)]),  # v=2: a client a minute behind
    ("in", ["sync", 3, *add(3, 5, seq=1)]),  # v=3, at B + 5
    ("in", ["sync", 4, *add(4, 5, "05:c", 0)]),  # v=4: the same time, a smaller node id
]
"""Arrival order 1, 2, 3, 4; Logux's order 2 (oldest), 1, 4 (node "05:c" < "10:a"), 3."""
LOGUX_ADDS = [2, 1, 4, 3]


@pytest.fixture
def skewed(tmp_path: Path) -> str:
    return write_logux_log(tmp_path / "skewed.rdtlog", SKEWED)


def rdt(*args: str) -> Any:
    return runner.invoke(app, [str(a) for a in args])


def one_line(result: Any) -> str:
    assert result.stderr.startswith("rdt: ") and result.stderr.count("\n") == 1, result.stderr
    return result.stderr


# ---------------------------------------------------------------- the rule (pure)


def meta(ident: str, time: int | float) -> dict[str, Any]:
    return {"id": ident, "time": time}


def test_time_comes_first_then_node_counter_and_the_ids_own_time():
    assert is_first_older(meta("9 z 9", 1), meta("1 a 0", 2))  # time decides
    assert is_first_older(meta("1 a 5", 1), meta("1 b 0", 1))  # then the node
    assert is_first_older(meta("1 a 2", 1), meta("1 a 10", 1))  # the counter as a number
    assert is_first_older(meta("1 a 2", 1), meta("2 a 2", 1))  # the id's own time
    same = meta("1 a 2", 1)
    assert not is_first_older(same, dict(same)) and logux_key(same) == logux_key(dict(same))


def test_nodes_compare_as_javascript_strings_by_utf16_code_units():
    bmp, astral = "\uff61", "\U0001f600"  # code points: bmp < astral; UTF-16 units: astral first
    assert is_first_older(meta(f"1 {astral} 0", 1), meta(f"1 {bmp} 0", 1))


def test_id_parts_are_read_as_parse_int_reads_them():
    assert logux_key(meta("1 a 0x10", 1))[2] == 16  # type: ignore[index]
    assert logux_key(meta("1 a 7abc", 1))[2] == 7  # type: ignore[index]
    assert logux_key(meta("1.9 a -3", 1))[2:] == (-3, 1)  # type: ignore[index]


def test_a_meta_that_is_not_logux_has_no_key_and_names_the_event():
    for bad in (None, {}, {"id": "1 a 0"}, meta("1 a", 1), meta("1 a x", 1), meta("1 a 0", True)):
        assert logux_key(bad) is None
    with pytest.raises(NotLogux, match=r"event v=7 has no Logux meta"):
        logux_ordering([(1, meta("1 a 0", 1)), (7, None)])


def test_the_ordering_maps_steps_to_recorded_numbers_and_back():
    ordering = logux_ordering([(1, meta("5 a 0", 5)), (2, meta("1 a 0", 1)), (4, meta("3 a 0", 3))])
    assert list(ordering.vs) == [2, 4, 1]
    assert [ordering.step(v) for v in (1, 2, 3, 4, 5)] == [3, 1, None, 2, None]
    assert ordering.v(2) == 4
    other = logux_ordering([(1, meta("0 a 0", 0)), (2, meta("1 a 0", 1)), (4, meta("3 a 0", 3))])
    assert other.digest != ordering.digest


@requires_logux
def test_the_rule_sorts_exactly_as_logux_core_is_first_older():
    """Metas built to hit every branch (and ties), sorted by @logux/core itself in Node."""
    rng = random.Random(17)
    nodes = ["10:a", "10:b", "9:a", "\uff61", "\U0001f600", "a:b:c", "A"]
    metas = [
        meta(f"{rng.choice([1, 2, 10])} {rng.choice(nodes)} {rng.choice([0, 1, 2, 10, 11])}", t)
        for t in (rng.choice([1, 2, 3, 1.5]) for _ in range(300))
    ]
    script = (
        "import { isFirstOlder } from '@logux/core'\n"
        "import { readFileSync } from 'node:fs'\n"
        "let metas = JSON.parse(readFileSync(0, 'utf8'))\n"
        "let order = metas.map((m, i) => i)\n"
        "order.sort((a, b) => isFirstOlder(metas[a], metas[b]) ? -1 :"
        " isFirstOlder(metas[b], metas[a]) ? 1 : a - b)\n"
        "process.stdout.write(JSON.stringify(order))\n"
    )
    done = subprocess.run(
        ["node", "--input-type=module", "-e", script],
        cwd=JS_DIR,
        input=json.dumps(metas),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    ordering = logux_ordering(enumerate(metas, 1))
    assert [v - 1 for v in ordering.vs] == json.loads(done.stdout)


# ---------------------------------------------------------------- the engine


def test_logux_order_folds_by_time_and_gives_a_different_correct_state(skewed):
    with Replay.open(skewed, reducer=PY) as by_v:
        assert by_v.state_at() == {"adds": [1, 2, 3, 4], "last": 4}
    with Replay.open(skewed, reducer=PY, order="logux") as replay:
        assert replay.state_at() == {"adds": LOGUX_ADDS, "last": 3}
        assert replay.final_v == 3  # the event folded last, by its recorded number
        # --at V: the state after the events up to and including V in Logux's order
        assert replay.state_at(2) == {"adds": [2], "last": 2}
        assert replay.state_at(1) == {"adds": [2, 1], "last": 1}
        assert replay.state_at(0) == {"adds": [], "last": None}
        assert [replay.previous_v(v) for v in (2, 1, 4, 3)] == [0, 2, 1, 4]
        assert [v for v, _ in replay.events()] == [2, 1, 4, 3]
        assert [v for v, _ in replay.events(1, 4)] == [1, 4]
        assert replay.event(4)["by"] == 4
        assert replay.diff(2, 3) == [
            {"op": "add", "path": "/adds/1", "value": 1},
            {"op": "add", "path": "/adds/2", "value": 4},
            {"op": "add", "path": "/adds/3", "value": 3},
            {"op": "replace", "path": "/last", "value": 3},
        ]
        with pytest.raises(VersionOutOfRange, match="v=9 is out of range"):
            replay.state_at(9)


def test_bisect_and_what_if_name_recorded_numbers_in_logux_order(skewed):
    with Replay.open(skewed, reducer=PY, order="logux") as replay:
        hit = replay.bisect("len(state['adds']) >= 3")
        assert hit.v == 4 and hit.event["by"] == 4
        assert replay.bisect("v != 2 and 1 in state['adds']").v == 1  # v: recorded
        skipped = replay.what_if([1])
        assert skipped.first_divergent_v == 1
        assert skipped.state == {"adds": [2, 4, 3], "last": 3}
        inserted = replay.what_if_insert(4, {"type": "counter/add", "by": 9})
        assert inserted.first_divergent_v == 4
        assert inserted.state == {"adds": [2, 1, 4, 9, 3], "last": 3}


def raises_on_two(state: Any, action: dict[str, Any]) -> Any:
    if action.get("by") == 2:
        raise ValueError("two")
    return state or {}


def test_a_reducer_that_raises_is_reported_at_the_recorded_v(skewed):
    with (
        Replay.open(skewed, reducer=raises_on_two, order="logux") as replay,
        pytest.raises(ReplayError) as raised,
    ):
        replay.state_at()
    assert raised.value.v == 2 and "v=2" in str(raised.value)


def test_checkpoints_are_kept_apart_by_order(tmp_path):
    """A v-order checkpoint reused in Logux order would give v order's states."""
    rng = random.Random(3)
    frames: list[Any] = SKEWED[:2]
    times = list(range(400))
    rng.shuffle(times)
    for seq, t in enumerate(times):
        frames.append(("in", ["sync", seq + 1, *add(t, t, seq=seq)]))
    log = write_logux_log(tmp_path / "many.rdtlog", frames)
    opened = {"checkpoint_every": 10, "persist_after": 0}
    with Replay.open(log, reducer=PY, **opened) as by_v:
        assert by_v.state_at()["adds"] == times
    with Replay.open(log, reducer=PY, order="logux", **opened) as replay:
        assert replay.checkpoints.loaded == 0
        assert replay.state_at()["adds"] == sorted(times)
        middle = replay.state_at(times.index(200) + 1)
    assert middle["adds"] == list(range(201))
    with Replay.open(log, reducer=PY, order="logux", **opened) as again:
        assert again.checkpoints.loaded > 0  # its own, persisted
        assert again.state_at(times.index(200) + 1) == middle
        assert again.state_at() == {"adds": sorted(times), "last": 399}
    with sqlite3.connect(log) as db:
        keys = {row[0] for row in db.execute("SELECT DISTINCT key FROM checkpoints")}
    assert len(keys) == 2


def test_a_recording_that_is_not_logux_is_refused(tmp_path):
    log = str(tmp_path / "plain.rdtlog")
    write_log(log)
    with pytest.raises(NotLogux, match="--order logux needs a Logux recording"):
        Replay.open(log, reducer="tests.factories:counter_reducer", order="logux")


# ---------------------------------------------------------------- the commands


def test_rdt_state_takes_the_order_and_shows_recorded_numbers(skewed):
    by_v = rdt("state", skewed, "--reducer", PY, "--json")
    assert by_v.exit_code == 0, by_v.output
    assert json.loads(by_v.output) == {"v": 4, "state": {"adds": [1, 2, 3, 4], "last": 4}}
    logux = rdt("state", skewed, "--reducer", PY, "--order", "logux", "--json")
    assert logux.exit_code == 0, logux.output
    assert json.loads(logux.output) == {
        "v": 3,
        "state": {"adds": LOGUX_ADDS, "last": 3},
        "order": "logux",
    }
    at = rdt("state", skewed, "--reducer", PY, "--order", "logux", "--at", "1")
    assert at.exit_code == 0 and "state after v=1 (logux order)" in at.output


@requires_node
def test_javascript_and_python_reducers_agree_in_logux_order(skewed):
    for at in ("1", "2", "3", "4"):
        py = rdt("state", skewed, "--reducer", PY, "--order", "logux", "--at", at, "--json")
        js = rdt("state", skewed, "--reducer", JS, "--order", "logux", "--at", at, "--json")
        assert py.exit_code == js.exit_code == 0, (py.output, js.output)
        assert json.loads(py.output) == json.loads(js.output)
    js = rdt("state", skewed, "--reducer", JS, "--order", "logux", "--json")
    assert json.loads(js.output)["state"] == {"adds": LOGUX_ADDS, "last": 3}
    hit = rdt("bisect", skewed, "--reducer", JS, "--order", "logux", "--bad",
              "len(state['adds']) >= 3", "--json")  # fmt: skip
    assert hit.exit_code == 0 and json.loads(hit.output)["v"] == 4


def test_rdt_diff_search_bisect_and_what_if_in_logux_order(skewed):
    diff = rdt("diff", skewed, "0", "1", "--reducer", PY, "--order", "logux", "--json")
    assert diff.exit_code == 0, diff.output
    assert json.loads(diff.output)["patch"] == [
        {"op": "add", "path": "/adds/0", "value": 2},
        {"op": "add", "path": "/adds/1", "value": 1},
        {"op": "replace", "path": "/last", "value": 1},
    ]
    found = rdt("search", skewed, "--reducer", PY, "--order", "logux", "--path", "/last", "--json")
    assert found.exit_code == 0, found.output
    lines = [json.loads(line) for line in found.output.splitlines()]
    assert [(c["v"], c["new"]) for c in lines] == [(2, 2), (1, 1), (4, 4), (3, 3)]
    tail = rdt("search", skewed, "--reducer", PY, "--order", "logux", "--path", "/last",
               "--from", "4", "--json")  # fmt: skip
    assert [json.loads(line)["v"] for line in tail.output.splitlines()] == [4, 3]
    text = rdt("search", skewed, "--reducer", PY, "--order", "logux", "--path", "/last")
    assert "v 2..3 (logux order); at v 0" in text.output
    bisect = rdt("bisect", skewed, "--reducer", PY, "--order", "logux", "--bad",
                 "1 in state['adds']")  # fmt: skip
    assert bisect.exit_code == 0 and "what v=1 changed" in bisect.output
    what = rdt("what-if", skewed, "--reducer", PY, "--order", "logux", "--skip", "1", "--json")
    assert what.exit_code == 0 and json.loads(what.output)["first_divergent_v"] == 1


def test_bad_orders_are_one_line_exit_3(skewed, tmp_path):
    plain = str(tmp_path / "plain.rdtlog")
    write_log(plain)
    cases = [
        (["state", plain, "--reducer", "tests.factories:counter_reducer", "--order", "logux"],
         "--order logux needs a Logux recording"),
        (["state", skewed, "--reducer", PY, "--order", "time"], "--order must be v or logux"),
        (["state", skewed, "--reducer", PY, "--order", "logux", "--source", "messages"],
         "not --source messages"),
    ]  # fmt: skip
    for args, said in cases:
        result = rdt(*args)
        assert result.exit_code == 3, result.output
        assert said in one_line(result)
