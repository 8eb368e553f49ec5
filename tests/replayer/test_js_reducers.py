"""JavaScript reducers through every replay feature: state, diff, bisect, what-if, compare,
verify, gen-test, checkpoints, the TUI and the Python API — real Node, real npm packages.

The logs are the planted sales log of :mod:`tests.samples.js_support` (special events at
``SUBMITTED_V`` 23, ``CANCELLED_V`` 31, ``REMOVED_V`` 40); the JS reducers are the Redux
Toolkit twin in ``samples/js/`` and the planted-bug variants beside it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devtools.cli import app
from devtools.jsonutil import loads
from replayer.engine import Replay
from replayer.errors import JsWorkerError, ReplayError
from replayer.verify import VerifyOptions, verify_log
from samples.sales_order import reducer as py_reducer
from tests.samples.js_support import (
    CANCELLED_V,
    REMOVED_V,
    SMALL_TS0,
    SUBMITTED_V,
    planted_ref,
    requires_node,
    write_sales_log,
)

pytestmark = [requires_node, pytest.mark.timeout(120)]

runner = CliRunner()
TWIN = "samples/js/sales_order.mjs:reducer"
PY = "samples.sales_order:reducer"


@pytest.fixture(scope="module")
def small_log(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The sales log with times below 2^53 (JS holds them exactly)."""
    return write_sales_log(tmp_path_factory.mktemp("js") / "small.rdtlog", ts0=SMALL_TS0)


@pytest.fixture(scope="module")
def ns_log(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The sales log with real nanosecond times (beyond 2^53)."""
    return write_sales_log(tmp_path_factory.mktemp("js") / "ns.rdtlog")


def rdt(*args: str) -> object:
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(result: object) -> str:
    text = result.stderr  # type: ignore[attr-defined]
    assert text.startswith("rdt: ") and text.count("\n") == 1, text
    assert "Traceback" not in result.output  # type: ignore[attr-defined]
    return text


# --------------------------------------------------------------------------- the replay commands


@pytest.mark.parametrize("at", [1, SUBMITTED_V, REMOVED_V, 60])
def test_state_of_the_js_twin_equals_the_python_reducers(small_log: str, at: int) -> None:
    js = rdt("state", small_log, "--reducer", TWIN, "--at", str(at), "--json")
    py = rdt("state", small_log, "--reducer", PY, "--at", str(at), "--json")
    assert js.exit_code == 0, js.output
    assert loads(js.stdout) == loads(py.stdout)


@pytest.mark.parametrize(
    "args",
    [
        ("diff", "--json", "20", str(REMOVED_V)),
        (
            "bisect",
            "--json",
            "--bad",
            "any(o['status'] == 'cancelled' for o in state['orders'].values())",
        ),
        ("what-if", "--json", "--skip", "3"),
    ],
)
def test_diff_bisect_and_what_if_agree_with_python(small_log: str, args: tuple[str, ...]) -> None:
    command, *rest = args
    js = rdt(command, small_log, "--reducer", TWIN, *rest)
    py = rdt(command, small_log, "--reducer", PY, *rest)
    assert js.exit_code == py.exit_code == 0, js.output
    assert loads(js.stdout) == loads(py.stdout)
    if command == "bisect":
        assert loads(js.stdout)["v"] == CANCELLED_V


def test_the_python_api_takes_a_js_reference_and_dotted_and_default_exports(small_log: str) -> None:
    with Replay.open(small_log, reducer=TWIN) as replay:
        assert replay.reducer.language == "javascript"
        state = replay.state_at(SUBMITTED_V)
    with Replay.open(small_log, reducer="samples/js/sales_order.mjs:default") as replay:
        assert replay.state_at(SUBMITTED_V) == state
    with Replay.open(small_log, reducer="samples/js/sales_order.mjs:slice.reducer") as replay:
        assert replay.state_at(SUBMITTED_V) == state


def test_compare_python_against_js_agrees_and_says_big_ints_were_doubles(ns_log: str) -> None:
    same = rdt("compare", ns_log, "--reducer", PY, "--against", TWIN, "--json")
    assert same.exit_code == 0, same.output
    doc = loads(same.stdout)
    assert doc["ok"] is True and doc["info"]["big_ints_as_doubles"] is True
    differ = rdt("compare", ns_log, "--reducer", TWIN, "--against", planted_ref("version_b.mjs"))
    assert differ.exit_code == 1
    assert f"v={REMOVED_V}" in differ.stdout


def test_a_reducer_that_throws_names_the_v_event_and_js_stack(small_log: str) -> None:
    result = rdt("state", small_log, "--reducer", planted_ref("throws.mjs"))
    assert result.exit_code == 1
    line, *rest = result.stderr.splitlines()
    assert line.startswith("rdt: ") and "Traceback" not in result.stderr
    assert f"v={REMOVED_V}" in line and "order/line-removed" in line and "RangeError" in line
    assert any("throws.mjs:" in text for text in rest)  # the JS stack
    with (
        Replay.open(small_log, reducer=planted_ref("throws.mjs")) as replay,
        pytest.raises(ReplayError) as raised,
    ):
        replay.state_at(REMOVED_V)
    assert "throws.mjs" in raised.value.traceback  # the JS stack, not a Python traceback


@pytest.mark.parametrize(
    ("ref", "words"),
    [
        (planted_ref("syntax_error.mjs"), "syntax_error.mjs"),
        (planted_ref("no_export.mjs"), "reducer"),
        (planted_ref("not_function.mjs"), "not a function"),
        ("samples/js/missing.mjs:reducer", "no such file"),
    ],
)
def test_reducers_that_cannot_load_are_one_line_exit_3(
    small_log: str, ref: str, words: str
) -> None:
    for command in (("state",), ("verify",), ("tui",)):
        result = rdt(*command, small_log, "--reducer", ref)
        assert result.exit_code == 3, (command, result.output)
        assert words in one_line_error(result)


def test_no_node_on_path_is_one_line_exit_3(
    small_log: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    result = rdt("state", small_log, "--reducer", TWIN)
    assert result.exit_code == 3
    assert "node" in one_line_error(result)


def test_a_worker_killed_mid_replay_is_a_clear_error(small_log: str) -> None:
    with Replay.open(small_log, reducer=TWIN, checkpoint_every=5) as replay:
        replay.state_at(10)
        process = replay.reducer.worker._process  # type: ignore[attr-defined]
        process.kill()
        process.wait()
        with pytest.raises(JsWorkerError) as raised:
            replay.state_at(50)
    assert "Node worker" in str(raised.value) and "killed" in str(raised.value)


def test_a_worker_that_dies_while_reducing_names_the_events(small_log: str, tmp_path: Path) -> None:
    dies = tmp_path / "dies.mjs"
    dies.write_text(
        "export function reducer(state = { n: 0 }, event) {\n"
        "  if (event.v === 30) process.kill(process.pid, 'SIGKILL');\n"
        "  return { n: state.n + 1 };\n"
        "}\n"
    )
    result = rdt("state", small_log, "--reducer", f"{dies}:reducer", "--at", "40")
    assert result.exit_code == 1
    line = one_line_error(result)
    assert "killed" in line and "v=" in line


# --------------------------------------------------------------------------- checkpoints


def test_checkpoints_persist_and_editing_a_local_module_never_reuses_them(tmp_path: Path) -> None:
    log = write_sales_log(tmp_path / "c.rdtlog", ts0=SMALL_TS0)
    folder = tmp_path / "reducer"
    folder.mkdir()
    (folder / "helpers.mjs").write_text("export const step = 1;\n")
    (folder / "main.mjs").write_text(
        "import { step } from './helpers.mjs';\n"
        "export function reducer(state = { n: 0 }, event) {\n"
        "  return event.type === '@@INIT' ? state : { n: state.n + step };\n"
        "}\n"
    )
    ref = f"{folder / 'main.mjs'}:reducer"

    def open_replay() -> Replay:
        return Replay.open(log, reducer=ref, checkpoint_every=5, persist_after=0)

    with open_replay() as replay:
        replay.build()
        assert replay.state_at(60) == {"n": 60}
    with open_replay() as replay:
        assert replay.checkpoints.loaded > 0  # reused: nothing changed
    (folder / "helpers.mjs").write_text("export const step = 2;\n")
    with open_replay() as replay:
        assert replay.checkpoints.loaded == 0  # the helper changed: a fresh replay
        assert replay.state_at(60) == {"n": 120}


# --------------------------------------------------------------------------- verify


@pytest.mark.parametrize(
    ("file", "kind", "v", "cause"),
    [
        ("random.mjs", "nondeterministic-call", SUBMITTED_V, None),
        ("random.mjs", "hash-divergence", SUBMITTED_V, "hash-seed"),
        ("clock.mjs", "nondeterministic-call", SUBMITTED_V, None),
        ("hidden_state.mjs", "hash-divergence", SUBMITTED_V, "hidden-state"),
        ("mutation_sloppy.cjs", "mutation", CANCELLED_V, None),
        ("throws.mjs", "exception", REMOVED_V, None),
    ],
)
def test_verify_catches_each_planted_js_bug_at_its_v(
    ns_log: str, file: str, kind: str, v: int, cause: str | None
) -> None:
    result = verify_log(ns_log, planted_ref(file), VerifyOptions(checkpoint_every=10))
    assert not result.ok
    found = [(f.kind, f.v, f.extra.get("cause")) for f in result.findings]
    assert (kind, v, cause) in found, found


@pytest.mark.parametrize(
    "ref",
    [
        TWIN,
        planted_ref("clean_immer.mjs"),
        planted_ref("clean_plain.cjs"),
        planted_ref("clock.mjs", "eventDate"),
        "samples/js/combined.mjs:reducer",
    ],
)
def test_verify_is_silent_on_clean_js_reducers_immer_included(ns_log: str, ref: str) -> None:
    result = verify_log(ns_log, ref, VerifyOptions(checkpoint_every=10))
    assert result.ok, [f.to_json() for f in result.findings]


def test_verify_compares_recorded_hashes_and_snapshots(tmp_path: Path) -> None:
    hashed = write_sales_log(tmp_path / "h.rdtlog", ts0=SMALL_TS0, hashes_from=py_reducer)
    ok = verify_log(hashed, TWIN, VerifyOptions(checkpoint_every=10))
    assert ok.ok
    changed = verify_log(hashed, planted_ref("version_b.mjs"), VerifyOptions(checkpoint_every=10))
    assert [(f.kind, f.v) for f in changed.findings] == [("recorded-hash", REMOVED_V)]
    snaps = write_sales_log(
        tmp_path / "s.rdtlog", hashes_from=py_reducer, hash_every=10**9, snapshot_every=10
    )
    assert verify_log(snaps, TWIN, VerifyOptions(checkpoint_every=10)).ok
    changed = verify_log(snaps, planted_ref("version_b.mjs"), VerifyOptions(checkpoint_every=10))
    assert [(f.kind, f.v) for f in changed.findings] == [("recorded-snapshot", REMOVED_V)]


def test_verify_cli_exit_codes_json_and_junit_for_js(ns_log: str, tmp_path: Path) -> None:
    clean = rdt("verify", ns_log, "--reducer", TWIN)
    assert clean.exit_code == 0, clean.output
    junit = tmp_path / "report.xml"
    bad = rdt("verify", ns_log, "--reducer", planted_ref("random.mjs"), "--junit", junit, "--json")
    assert bad.exit_code == 1
    doc = loads(bad.stdout)
    assert doc["first_divergent_v"] == SUBMITTED_V
    assert "Math.random" in junit.read_text()


# --------------------------------------------------------------------------- gen-test


def test_gen_test_writes_a_node_test_that_passes_now_and_shows_what_changed(
    tmp_path: Path,
) -> None:
    log = write_sales_log(tmp_path / "g.rdtlog", ts0=SMALL_TS0)
    shutil.copytree("samples/js", tmp_path / "js", ignore=shutil.ignore_patterns("node_modules"))
    os.symlink(Path("samples/js/node_modules").resolve(), tmp_path / "js" / "node_modules")
    reducer = tmp_path / "js" / "sales_order.mjs"
    out = tmp_path / "tests" / "slice.test.mjs"
    out.parent.mkdir()
    made = rdt(
        "gen-test", log, "--reducer", f"{reducer}:reducer", "--from", "20", "--to", "45", "-o", out
    )
    assert made.exit_code == 0, made.output
    source = out.read_text()
    assert "node:test" in source and '"../js/sales_order.mjs"' in source
    passed = subprocess.run(["node", "--test", str(out)], capture_output=True, text=True)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    # the reducer changes behaviour on the slice: the test fails and shows the values
    text = reducer.read_text()
    assert "count" in text
    reducer.write_text(text.replace("state.count += 1", "state.count += 2"))
    failed = subprocess.run(["node", "--test", str(out)], capture_output=True, text=True)
    assert failed.returncode != 0
    report = failed.stdout + failed.stderr
    assert "changed" in report and "count" in report


def test_gen_test_refuses_a_python_file_for_a_js_reducer(small_log: str, tmp_path: Path) -> None:
    result = rdt(
        "gen-test",
        small_log,
        "--reducer",
        TWIN,
        "--from",
        "2",
        "--to",
        "3",
        "-o",
        tmp_path / "t.py",
    )
    assert result.exit_code == 3
    assert "node --test" in one_line_error(result)


# --------------------------------------------------------------------------- the TUI


async def test_the_tui_replays_a_js_reducer(small_log: str) -> None:
    from tests.tui.helpers import settle
    from tui.launch import replay_app
    from tui.widgets.state_view import StateView

    tui, log = replay_app(small_log, reducer=TWIN)
    try:
        async with tui.run_test(size=(120, 40)) as pilot:
            for _ in range(100):
                await settle(pilot, rounds=1)
                if tui.replay is not None:
                    break
            assert tui.replay is not None and tui.replay.reducer.language == "javascript"
            await pilot.press(*["j"] * (SUBMITTED_V - 1))
            await settle(pilot)
            state = tui.query_one(StateView).state
            with Replay.open(small_log, reducer=PY) as python:
                assert state == python.state_at(SUBMITTED_V)
    finally:
        log.close()
