"""JsWorker: a real node process running the JavaScript fixture reducers in js_fixtures/."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.canonical import state_hash
from devtools.errors import InvalidJSON, ReducerLoadError
from replayer.errors import JsWorkerError, ReplayError, StateNotJSON
from replayer.jsworker import JsWorker, is_js_ref

FIXTURES = Path(__file__).resolve().parent / "js_fixtures"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs node on PATH")


def ref(name: str) -> str:
    return f"{FIXTURES / name.split(':')[0]}:{name.split(':')[1]}"


def ev(v: int, kind: str, **fields: object) -> tuple[int, bytes]:
    return v, json.dumps({"type": kind, "v": v, **fields}).encode()


def adds(first: int, last: int) -> list[tuple[int, bytes]]:
    return [ev(v, "add", n=v % 7) for v in range(first, last + 1)]


def pages_of(rows: list[tuple[int, bytes]], size: int) -> list[list[tuple[int, bytes]]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]


@pytest.fixture
def counter() -> Iterator[JsWorker]:
    with JsWorker.start(ref("counter.mjs:reducer")) as worker:
        worker.init()
        yield worker


def assert_one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text and "Traceback" not in text
    return text


# -- references and loading -----------------------------------------------------------------


def test_is_js_ref() -> None:
    assert is_js_ref("a/b.mjs:reducer") and is_js_ref("x.cjs:default") and is_js_ref("r.js:a.b")
    assert not is_js_ref("samples.sales_order:reducer") and not is_js_ref("a/b.py:reducer")


@pytest.mark.parametrize(
    ("name", "initial"),
    [
        ("counter.mjs:reducer", {"count": 0, "total": 0, "last": None}),
        ("counter.mjs:default", {"count": 0, "total": 0, "last": None}),
        ("counter.mjs:reducers.root", {"count": 0, "total": 0, "last": None}),
        ("counter.cjs:reducer", {"count": 0}),
        ("counter.cjs:reducers.root", {"count": 0}),
        ("plain.js:default", {"seen": []}),
        ("esm/reducer.js:default", {"n": 0}),
        ("with_helper.mjs:reducer", {"n": 0}),
    ],
)
def test_loads_esm_commonjs_default_nested_and_sibling_imports(name: str, initial: dict) -> None:
    with JsWorker.start(ref(name)) as worker:
        worker.init()
        assert json.loads(worker.get_state()) == initial
        assert worker.ref == ref(name)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "syntax_error.mjs:reducer",
            "SyntaxError: Unexpected token ',' (at {dir}/syntax_error.mjs:2)",
        ),
        ("throws_at_load.mjs:reducer", "RangeError: bad config (at {dir}/throws_at_load.mjs:1)"),
        ("missing_import.mjs:reducer", "Cannot find module '{dir}/does_not_exist.mjs' imported"),
        ("counter.mjs:nope", 'counter.mjs has no export "nope"'),
        ("counter.mjs:reducers.nope", 'counter.mjs has no export "reducers.nope"'),
        ("counter.mjs:reducers.notAFunction", "reducers.notAFunction is a number, not a function"),
        ("counter.mjs:value", "value is an object (Object), not a function"),
    ],
)
def test_load_failures_are_one_line(name: str, expected: str) -> None:
    with pytest.raises(ReducerLoadError) as caught:
        JsWorker.start(ref(name))
    text = assert_one_line(caught.value)
    assert text.startswith(f"cannot load reducer {ref(name)!r}: ")
    assert expected.format(dir=FIXTURES) in text


def test_no_such_file_not_js_and_malformed_refs(tmp_path: Path) -> None:
    missing = f"{tmp_path}/nope.mjs:reducer"
    with pytest.raises(ReducerLoadError, match="no such file") as caught:
        JsWorker.start(missing)
    assert_one_line(caught.value)
    with pytest.raises(ReducerLoadError, match="is not a JavaScript file"):
        JsWorker.start(f"{tmp_path}/x.py:reducer")
    with pytest.raises(ReducerLoadError, match="must look like path/to/file.js:name"):
        JsWorker.start(str(FIXTURES / "counter.mjs"))


def test_no_node_on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ReducerLoadError) as caught:
        JsWorker.start(ref("counter.mjs:reducer"))
    assert "no `node` on PATH" in assert_one_line(caught.value)


def _package(root: Path, version: str) -> None:
    (root / "lib.cjs").write_text("exports.inc = (n) => n + 1;\n")
    (root / "index.cjs").write_text((FIXTURES / "cjs_pkg" / "index.cjs").read_text())
    package = root / "node_modules" / "tiny-pkg"
    package.mkdir(parents=True, exist_ok=True)
    (package / "package.json").write_text(
        json.dumps({"name": "tiny-pkg", "version": version, "main": "index.js"})
    )
    (package / "index.js").write_text("exports.zero = 0;\n")


def _identity(target: str) -> dict:
    with JsWorker.start(target) as worker:
        worker.init()
        assert json.loads(worker.steps([ev(1, "x")])[0][1]) == {"n": 1}
        return json.loads(worker.identity)


def test_identity_covers_the_file_local_modules_and_package_versions(tmp_path: Path) -> None:
    _package(tmp_path, "1.0.0")
    target = f"{tmp_path / 'index.cjs'}:reducer"
    first = _identity(target)
    assert first == _identity(target)  # stable
    assert first["packages"] == ["tiny-pkg@1.0.0"]
    assert {Path(p).name for p, _ in first["modules"]} == {"index.cjs", "lib.cjs"}

    (tmp_path / "lib.cjs").write_text("exports.inc = (n) => n + 1; // edited\n")
    second = _identity(target)
    assert second != first and second["packages"] == first["packages"]

    _package(tmp_path, "1.0.1")
    (tmp_path / "lib.cjs").write_text("exports.inc = (n) => n + 1; // edited\n")
    third = _identity(target)
    assert third["packages"] == ["tiny-pkg@1.0.1"] and third["modules"] == second["modules"]

    (tmp_path / "index.cjs").write_text((tmp_path / "index.cjs").read_text() + "\n// edited\n")
    assert _identity(target)["modules"] != third["modules"]


def test_identity_sees_esm_sibling_modules(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "with_helper.mjs", tmp_path)
    shutil.copy(FIXTURES / "helpers.mjs", tmp_path)
    target = f"{tmp_path / 'with_helper.mjs'}:reducer"
    with JsWorker.start(target) as worker:
        before = worker.identity
        names = {Path(p).name for p, _ in json.loads(before)["modules"]}
    assert names == {"with_helper.mjs", "helpers.mjs"}
    (tmp_path / "helpers.mjs").write_text("export const step = 2;\n")
    with JsWorker.start(target) as worker:
        assert worker.identity != before


# -- states and hashes ----------------------------------------------------------------------


def test_init_get_set_and_hash_match_python(counter: JsWorker) -> None:
    assert json.loads(counter.get_state()) == {"count": 0, "total": 0, "last": None}
    assert counter.state_hash() == state_hash({"count": 0, "total": 0, "last": None})
    state = {"count": 5, "total": 1.5, "last": -0.0, "é": ["😀", {}]}
    counter.set_state(json.dumps(state).encode())
    assert counter.state_hash() == state_hash(state)
    assert json.loads(counter.get_state()) == state


def test_events_reach_the_reducer_as_json_parse_makes_them() -> None:
    with JsWorker.start(ref("echo.mjs:reducer")) as worker:
        worker.init()
        raw = b'{"type":"t","v":1,"ts":1795420800000150001,"x":1.0,"s":"\\u00e9"}'
        ((_, state),) = worker.steps([(1, raw)])
    # ts beyond 2**53 becomes the double; the event is not frozen or copied.
    assert state == (
        b'{"event":{"type":"t","v":1,"ts":1795420800000150000,"x":1,"s":"\xc3\xa9"},'
        b'"isFrozen":false}'
    )


def test_fold_gives_checkpoints_hashes_and_kept_states(counter: JsWorker) -> None:
    rows = adds(1, 2500)
    results = list(
        counter.fold_pages(
            pages_of(rows, 1000),
            checkpoint_every=500,
            pace=False,
            hashes="checkpoints",
            keep={1, 1234, 2500},
        )
    )
    assert [r.last_v for r in results] == [1000, 2000, 2500]
    checkpoints = [cp for r in results for cp in r.checkpoints]
    assert [v for v, _ in checkpoints] == [500, 1000, 1500, 2000, 2500]
    total = sum(v % 7 for v in range(1, 501))
    assert json.loads(checkpoints[0][1]) == {"count": 500, "total": total, "last": 500}
    hashes = [h for r in results for h in r.hashes]
    assert [v for v, _, _ in hashes] == [500, 1000, 1500, 2000, 2500]
    for (_, digest, _), (_, text) in zip(hashes, checkpoints, strict=True):
        assert digest == state_hash(json.loads(text))
    states = {v: s for r in results for v, s in r.states.items()}
    assert sorted(states) == [1, 1234, 2500]
    assert json.loads(states[1234])["count"] == 1234
    assert counter.get_state() == states[2500]


def test_hashes_each_equal_python_hashes_of_steps(counter: JsWorker) -> None:
    rows = [ev(1, "add", n=1.5), ev(2, "other"), ev(3, "add", n=-0.0), ev(4, "add", n=1e21)]
    (result,) = counter.fold_pages([rows], hashes="each")
    counter.init()
    states = counter.steps(rows)
    assert [(v, state_hash(json.loads(s)), None) for v, s in states] == result.hashes


def test_hashes_checkpoints_include_the_last_event_and_stop_at(counter: JsWorker) -> None:
    results = list(
        counter.fold_pages(
            pages_of(adds(1, 3000), 1000), checkpoint_every=1000, hashes="checkpoints", stop_at=1777
        )
    )
    assert [r.last_v for r in results] == [1000, 1777]
    assert [v for r in results for v, _, _ in r.hashes] == [1000, 1777]
    assert json.loads(counter.get_state())["count"] == 1777


def test_stop_at_before_a_page_and_gaps_in_v(counter: JsWorker) -> None:
    rows = [ev(v, "add", n=1) for v in (2, 5, 6, 9, 10)]
    results = list(counter.fold_pages([rows[:2], rows[2:]], keep={6, 9}, stop_at=9))
    assert [r.last_v for r in results] == [5, 9]
    assert json.loads(results[1].states[6])["last"] == 6
    assert json.loads(counter.get_state()) == {"count": 4, "total": 4, "last": 9}


def test_pacing_skips_checkpoints_that_would_cost_too_much() -> None:
    with JsWorker.start(ref("counter.mjs:reducer")) as worker:
        worker.init()
        taken = sum(
            len(r.checkpoints)
            for r in worker.fold_pages(pages_of(adds(1, 50_000), 1000), checkpoint_every=1)
        )
    assert 0 < taken < 50_000


def test_many_pages_pipelined_give_the_hand_loop_state(counter: JsWorker) -> None:
    rows = adds(1, 30_000)
    for _ in counter.fold_pages(pages_of(rows, 700)):
        pass
    total = sum(v % 7 for v in range(1, 30_001))
    assert json.loads(counter.get_state()) == {"count": 30_000, "total": total, "last": 30_000}


def test_leaving_a_fold_early_keeps_the_worker_usable(counter: JsWorker) -> None:
    for result in counter.fold_pages(pages_of(adds(1, 10_000), 100)):
        if result.last_v == 300:
            break
    counter.init()
    (result,) = counter.fold_pages([adds(1, 10)])
    assert result.last_v == 10 and json.loads(counter.get_state())["count"] == 10


def test_console_output_does_not_disturb_the_protocol() -> None:
    with JsWorker.start(ref("chatty.mjs:reducer")) as worker:
        worker.init()
        for _ in worker.fold_pages(pages_of(adds(1, 2000), 500)):
            pass
        assert json.loads(worker.get_state()) == {"n": 2000}


# -- errors ---------------------------------------------------------------------------------


def test_reducer_throw_is_a_replay_error_with_v_type_and_js_stack(counter: JsWorker) -> None:
    rows = adds(1, 2000) + [ev(2001, "boom", n=13)] + adds(2002, 5000)
    before = None
    with pytest.raises(ReplayError) as caught:
        for result in counter.fold_pages(pages_of(rows, 500)):
            before = result.last_v
    error = caught.value
    assert_one_line(error)
    assert str(error) == (
        "the reducer raised at v=2001 (event type 'boom'): TypeError: thirteen is unlucky"
    )
    assert before == 2000 and error.v == 2001
    assert error.event == {"type": "boom", "v": 2001, "n": 13}
    assert type(error.error).__name__ == "TypeError"
    assert f"{FIXTURES / 'counter.mjs'}:10" in error.traceback
    assert "worker.mjs" not in error.traceback
    # The state is that before the failing event; the worker goes on serving.
    assert json.loads(counter.get_state())["count"] == 2000
    (result,) = counter.fold_pages([adds(2002, 2003)])
    assert result.last_v == 2003


def test_throw_in_steps_and_in_init() -> None:
    with JsWorker.start(ref("counter.mjs:reducer")) as worker:
        worker.init()
        with pytest.raises(ReplayError, match=r"v=3 \(event type 'boom'\)"):
            worker.steps([ev(2, "add", n=1), ev(3, "boom", n=13)])
    worker = JsWorker.start(ref("init_throws.mjs:reducer"))
    with worker, pytest.raises(ReplayError) as caught:
        worker.init()
    assert str(caught.value) == (
        "the reducer raised at v=0 (event type '@@INIT'): Error: no initial state today"
    )


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("nan", "/a/b: NaN is not a JSON number"),
        ("inf", "/x/1: -Infinity is not a JSON number"),
        ("undef-array", "/list/1: undefined is not a JSON value"),
        ("undefined", "the root: undefined is not a JSON value"),
        ("map", "/m: a Map is not JSON (use an object)"),
        ("set", "/s: a Set is not JSON (use an array)"),
        ("bigint", "/n: a BigInt is not a JSON number"),
        ("fn", "/f: a function is not a JSON value"),
        ("symbol", "/s: a symbol is not a JSON value"),
        ("date", "/when: a Date is not a plain JSON object"),
        ("cycle", "/a/self: circular reference"),
        ("lone", "/s: string holds a lone surrogate (not valid UTF-8)"),
    ],
)
def test_a_state_that_is_not_json_names_the_path(kind: str, message: str) -> None:
    with JsWorker.start(ref("notjson.mjs:reducer")) as worker:
        worker.init()
        (result,) = worker.fold_pages([[ev(1, kind)]], hashes="each")
        assert result.hashes == [(1, None, f"state is not JSON at {message}")]
        expected = f"the state after v=1 is not JSON (state is not JSON at {message})"
        for call in (worker.get_state, worker.state_hash):
            with pytest.raises(StateNotJSON) as caught:
                call()
            assert assert_one_line(caught.value) == expected
        worker.init()
        with pytest.raises(StateNotJSON, match="after v=1 is not JSON"):
            list(worker.fold_pages([[ev(1, kind)]], checkpoint_every=1, pace=False))
        worker.init()
        with pytest.raises(StateNotJSON, match="after v=1 is not JSON"):
            worker.steps([ev(1, kind)])


def test_undefined_properties_are_left_out_like_json_stringify() -> None:
    with JsWorker.start(ref("notjson.mjs:reducer")) as worker:
        worker.init()
        worker.steps([ev(1, "undef-prop")])
        assert worker.get_state() == b'{"kept":1}'
        assert worker.state_hash() == state_hash({"kept": 1})


def test_invalid_event_json_names_the_v(counter: JsWorker) -> None:
    rows = [*adds(1, 3), (4, b'{"type": "add", "n": NaN}')]
    with pytest.raises(InvalidJSON) as caught:
        list(counter.fold_pages([rows]))
    assert assert_one_line(caught.value).startswith("event v=4 is not valid JSON")


def test_hang_past_the_timeout_names_the_v_range_and_stops_node() -> None:
    worker = JsWorker.start(ref("spin.mjs:reducer"), timeout=1.5)
    worker.init()
    rows = [*adds(1, 50), ev(51, "spin"), *adds(52, 3000)]
    started = time.monotonic()
    with pytest.raises(JsWorkerError) as caught:
        list(worker.fold_pages(pages_of(rows, 100)))
    assert time.monotonic() - started < 10
    text = assert_one_line(caught.value)
    assert "did not answer within 1.5 s while reducing v=1..100" in text
    assert worker._process.poll() is not None  # killed
    with pytest.raises(JsWorkerError):
        worker.get_state()
    worker.close()


def test_worker_killed_mid_replay() -> None:
    worker = JsWorker.start(ref("counter.mjs:reducer"))
    worker.init()

    def pages() -> Iterator[list[tuple[int, bytes]]]:
        for first in range(1, 100_000, 1000):
            if first == 5001:
                os.kill(worker._process.pid, signal.SIGKILL)
                worker._process.wait()
            yield adds(first, first + 999)

    with pytest.raises(JsWorkerError) as caught:
        list(worker.fold_pages(pages()))
    text = assert_one_line(caught.value)
    assert "was killed by SIGKILL while reducing v=" in text
    with pytest.raises(JsWorkerError, match="killed by SIGKILL"):
        worker.state_hash()
    worker.close()


def test_worker_exiting_shows_the_tail_of_its_stderr() -> None:
    with JsWorker.start(ref("exits.mjs:reducer")) as worker:
        worker.init()
        with pytest.raises(JsWorkerError) as caught:
            list(worker.fold_pages([[*adds(1, 10), ev(11, "exit")]]))
    text = assert_one_line(caught.value)
    assert "exited with code 7 while reducing v=1..11" in text
    assert "node's stderr: fatal: the reducer gave up at 11" in text


def test_close_is_idempotent_and_stops_node() -> None:
    worker = JsWorker.start(ref("counter.mjs:reducer"))
    worker.close()
    worker.close()
    assert worker._process.poll() == 0
    with pytest.raises(JsWorkerError, match="is closed"):
        worker.init()


# -- guards ---------------------------------------------------------------------------------

CLOCKS = [
    ("math.random", "Math.random", 6),
    ("date.now", "Date.now", 7),
    ("new-date", "new Date()", 8),
    ("date-call", "Date()", 9),
    ("performance.now", "performance.now", 11),
    ("hrtime", "process.hrtime", 12),
    ("hrtime.bigint", "process.hrtime.bigint", 13),
    ("crypto.randomUUID", "crypto.randomUUID", 14),
    ("crypto.getRandomValues", "crypto.getRandomValues", 15),
    ("node.randomUUID", "crypto.randomUUID", 16),
    ("node.imported", "crypto.randomUUID", 17),
    ("node.getRandomValues", "crypto.getRandomValues", 18),
]


@pytest.mark.parametrize(("kind", "name", "line"), CLOCKS)
def test_guards_name_the_first_v_and_call_site(kind: str, name: str, line: int) -> None:
    with JsWorker.start(ref("clocks.mjs:reducer"), guards=True) as worker:
        worker.init()
        rows = [ev(1, "quiet"), ev(2, "date-arg"), ev(3, kind), ev(4, "quiet"), ev(5, kind)]
        results = list(worker.fold_pages([rows[:4], rows[4:]]))
        assert json.loads(worker.get_state())["calls"] == 3  # the guarded functions work
        (call,) = worker.calls
    assert (call.name, call.v, call.count, call.line) == (name, 3, 2, line)
    assert call.file == str(FIXTURES / "clocks.mjs") and call.function == "reducer"
    assert [c.count for r in results for c in r.calls] == [1, 2]


def test_without_guards_nothing_is_recorded() -> None:
    with JsWorker.start(ref("clocks.mjs:reducer")) as worker:
        worker.init()
        (result,) = worker.fold_pages([[ev(1, "math.random"), ev(2, "date.now")]])
        assert result.calls == [] and worker.calls == []


def test_shallow_mutation_in_sloppy_commonjs_at_the_exact_v() -> None:
    with JsWorker.start(ref("sloppy_mutate.cjs:reducer"), guards=True) as worker:
        worker.init()
        rows = [ev(1, "x"), ev(2, "x"), ev(3, "bump"), ev(4, "x")]
        (result,) = worker.fold_pages([rows])
    assert [(m.kind, m.v, m.path) for m in result.mutations] == [("shallow", 3, "/count")]


def test_deep_mutation_found_in_its_window_then_exactly_by_a_scan() -> None:
    rows = [ev(v, "deep" if v == 11 else "x") for v in range(1, 31)]
    with JsWorker.start(ref("sloppy_mutate.cjs:reducer"), guards=True) as worker:
        worker.init()
        results = worker.fold_pages(pages_of(rows, 7), checkpoint_every=10)
        found = [m for r in results for m in r.mutations]
        assert [(m.kind, m.v, m.path, m.window) for m in found] == [
            ("window", 20, "/nested/items/1", (11, 20))
        ]
    with JsWorker.start(ref("sloppy_mutate.cjs:reducer")) as worker:  # the scan needs no guards
        worker.init()
        found = [m for r in worker.fold_pages([rows], mutation_scan_to=20) for m in r.mutations]
    assert [(m.kind, m.v, m.path) for m in found] == [("scan", 11, "/nested/items/1")]


def test_copy_on_write_frozen_reducer_passes_clean() -> None:
    with JsWorker.start(ref("frozen_immutable.mjs:reducer"), guards=True) as worker:
        worker.init()
        results = list(
            worker.fold_pages(pages_of(adds(1, 300), 50), checkpoint_every=25, mutation_scan_to=300)
        )
        assert all(r.mutations == [] and r.calls == [] for r in results)
        assert worker.mutations == []


def test_hidden_module_state_shows_on_a_second_run_in_the_same_process() -> None:
    rows = adds(1, 10)

    def run(worker: JsWorker) -> str:
        worker.init()
        for _ in worker.fold_pages([rows]):
            pass
        return worker.state_hash()

    with JsWorker.start(ref("hidden_state.mjs:reducer")) as first:
        cold = run(first)
        warm = run(first)
    with JsWorker.start(ref("hidden_state.mjs:reducer")) as second:
        assert run(second) == cold
    assert warm != cold


RTK = Path(__file__).resolve().parents[2] / "samples" / "js" / "node_modules"


@pytest.mark.skipif(
    not (RTK / "@reduxjs" / "toolkit").is_dir(),
    reason="needs `npm ci` in samples/js (Redux Toolkit is installed there, not by rdt)",
)
def test_redux_toolkit_immer_reducers_pass_the_guards_clean(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "rtk_orders.mjs", tmp_path)
    (tmp_path / "node_modules").symlink_to(RTK)
    rows = []
    for v in range(1, 301):
        if v % 3 == 1:
            rows.append(ev(v, "order/created", id=f"o{v}"))
        else:
            rows.append(ev(v, "line/added", id=f"o{v - (v - 1) % 3}", sku="A"))
    with JsWorker.start(f"{tmp_path / 'rtk_orders.mjs'}:reducer", guards=True) as worker:
        worker.init()
        results = list(
            worker.fold_pages(pages_of(rows, 50), checkpoint_every=25, mutation_scan_to=300)
        )
        assert [m for r in results for m in r.mutations] == [] and worker.calls == []
        assert json.loads(worker.get_state())["orders"]["count"] == 100
        packages = json.loads(worker.identity)["packages"]
    assert any(p.startswith("@reduxjs/toolkit@") for p in packages)
    assert any(p.startswith("immer@") for p in packages)
