"""The JS samples under samples/js/: the Redux Toolkit twin folds to the Python reducer's states,
the buggy twin breaks at the same v, and each planted JS reducer does what its header says.

Real node and the real packages of samples/js/package-lock.json (``npm ci --prefix samples/js``).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from samples import sales_order, sales_order_buggy
from tests.replayer.planted import sales_order_v0
from tests.samples.js_support import (
    CANCELLED_V,
    EVENTS,
    JS_DIR,
    PLANTED_DIR,
    REMOVED_V,
    ROOT,
    SMALL_TS0,
    SUBMITTED_V,
    SampleServer,
    first_difference,
    fold_js,
    fold_py,
    middleware_traffic,
    planted_ref,
    requires_node,
    sales_events,
    write_sales_log,
)

pytestmark = pytest.mark.timeout(120)

TWIN = "samples/js/sales_order.mjs:reducer"
BUGGY_TWIN = "samples/js/sales_order_buggy.mjs:reducer"
CLEAN_TWINS = [
    TWIN,
    "samples/js/sales_order.mjs:default",
    "samples/js/combined.mjs:reducer",
    planted_ref("clean_immer.mjs"),
    planted_ref("clean_plain.cjs"),
]


@pytest.fixture(scope="module")
def planted_events():
    """The planted sales log's events with times below 2^53 (exact in JS)."""
    return sales_events(ts0=SMALL_TS0)


@pytest.fixture(scope="module")
def twin_states(planted_events):
    folded = fold_js(TWIN, planted_events, "--each")
    assert folded.code == 0, folded.err
    return folded.states()


def each(ref: str, events, *flags: str) -> dict:
    folded = fold_js(ref, events, "--each", *flags)
    assert folded.code == 0, folded.err
    return folded.states()


def without(states: dict, key: str) -> dict:
    return {v: {k: x for k, x in s.items() if k != key} for v, s in states.items()}


# --------------------------------------------------------------------------- the planted log


def test_the_planted_log_puts_its_special_events_at_the_shop_logs_v():
    from tests.replayer import planted

    events = sales_events()
    assert [e.v for e in events] == list(range(1, EVENTS + 1))
    first = {}
    for e in events:
        first.setdefault(e.type, e.v)
    assert first["order/submitted"] == SUBMITTED_V == planted.PROMO_V
    assert first["order/cancelled"] == CANCELLED_V == planted.TAGGED_V
    assert first["order/line-removed"] == REMOVED_V == planted.REMOVED_V
    removed = events[REMOVED_V - 1].event
    adds = [
        e
        for e in events[: REMOVED_V - 1]
        if e.type == "order/line-added"
        and (e.event["order"], e.event["sku"]) == (removed["order"], removed["sku"])
    ]
    assert len(adds) >= 2, "the first removal is of a line added more than once (the bug's case)"


def test_the_planted_log_is_what_the_sample_middleware_makes():
    """Each planted event, sent as its command, is accepted and emitted unchanged."""
    server = SampleServer()
    commands = {
        "order/created": lambda e: {"type": "order/create", "customer": e["customer"]},
        "order/line-added": lambda e: {
            "type": "order/add-line",
            **{k: e[k] for k in ("order", "sku", "qty", "price")},
        },
        "order/line-removed": lambda e: {
            "type": "order/remove-line",
            "order": e["order"],
            "sku": e["sku"],
        },
        "order/submitted": lambda e: {"type": "order/submit", "order": e["order"]},
        "order/cancelled": lambda e: {"type": "order/cancel", "order": e["order"]},
    }
    for e in sales_events():
        emitted = server.send(e.event["sender"], commands[e.type](e.event))
        assert emitted is not None, f"v={e.v} refused"
        (got,) = emitted
        assert {**got, "ts": e.event["ts"]} == e.event


def test_write_sales_log_records_the_python_hashes(tmp_path):
    from devtools.store import Log

    path = write_sales_log(tmp_path / "s.rdtlog", hashes_from=sales_order.reducer, hash_every=5)
    with Log.open(path) as log:
        events = list(log.reader().events())
    assert len(events) == EVENTS
    assert [e.v for e in events if e.hash] == list(range(5, EVENTS + 1, 5))


# --------------------------------------------------------------------------- the twins


@requires_node
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_js_twins_build_the_python_states_event_by_event(seed):
    traffic = middleware_traffic(seed, 300)
    assert len(traffic.events) > 200 and traffic.rejected > 0
    python = fold_py(sales_order.reducer, traffic.events)
    assert python[traffic.events[-1]["v"]] == json.loads(json.dumps(traffic.state))
    for ref in CLEAN_TWINS:
        js = each(ref, traffic.events)
        assert first_difference({0: python[0], **js}, python) is None, ref


@requires_node
def test_twin_on_the_planted_log_and_its_tricky_skus(planted_events, twin_states):
    python = fold_py(sales_order.reducer, planted_events)
    assert first_difference({0: python[0], **twin_states}, python) is None
    # SKU names that are also Object.prototype members are plain keys to the twin
    server = SampleServer()
    events = server.send("c1", {"type": "order/create", "customer": "ACME"})
    for sku in ("constructor", "toString", "hasOwnProperty", "valueOf"):
        line = {"type": "order/add-line", "order": "o1", "sku": sku, "qty": 2, "price": 300}
        events += server.send("c1", line) + server.send("c2", line)
    events += server.send("c1", {"type": "order/remove-line", "order": "o1", "sku": "toString"})
    python = fold_py(sales_order.reducer, events)
    for ref in CLEAN_TWINS:
        assert first_difference({0: python[0], **each(ref, events)}, python) is None, ref


@requires_node
def test_initial_state_and_unknown_types_leave_the_state_as_is():
    init = fold_js(TWIN, [])
    assert init.code == 0 and init.out == [{"orders": {}, "count": 0}]
    assert init.out[0] == sales_order.reducer(None, {"type": "@@INIT"})
    created = {"type": "order/created", "id": "o1", "customer": "A"}
    created.update(v=1, ts=7, sender="c1")
    strange = [
        created,
        {"type": "order/listed", "v": 2, "ts": 8, "sender": "c1"},
        {"type": "order", "v": 3, "ts": 9, "sender": "c1"},
        {"type": "created", "id": "o9", "customer": "B", "v": 4, "ts": 10, "sender": "c1"},
        {"v": 5, "ts": 11, "sender": "c1"},
    ]
    python = fold_py(sales_order.reducer, strange)
    assert python[5] == python[1]
    for ref in CLEAN_TWINS:
        assert fold_js(ref, strange).out == [python[5]], ref


@requires_node
def test_nanoseconds_beyond_2_53_become_doubles_in_js():
    """JSON.parse makes the nearest double of a large integer: exact below 2^53, rounded above."""
    big = 2**53 + 1
    created = {"type": "order/created", "id": "o1", "customer": "A", "v": 1, "sender": "c1"}
    events = [{**created, "ts": big}]
    python = fold_py(sales_order.reducer, events)[1]["orders"]["o1"]
    js = fold_js(TWIN, events).out[0]["orders"]["o1"]
    assert python["created_ns"] == big
    assert js["created_ns"] == 2**53 != big
    assert float(js["created_ns"]) == float(python["created_ns"])
    # recorded logs have such times (the factories' T0 is beyond 2^53): equal as doubles only
    recorded = sales_events()
    python = fold_py(sales_order.reducer, recorded)[EVENTS]
    js = fold_js(TWIN, recorded).out[0]
    assert js != python
    as_doubles = json.loads(json.dumps(python), parse_int=float)
    assert json.loads(json.dumps(js), parse_int=float) == as_doubles


@requires_node
def test_buggy_twin_breaks_at_the_same_v_as_the_python_buggy_sample(planted_events, twin_states):
    python_clean = fold_py(sales_order.reducer, planted_events)
    python_buggy = fold_py(sales_order_buggy.reducer, planted_events)
    js_buggy = each(BUGGY_TWIN, planted_events)
    assert first_difference(python_clean, python_buggy) == REMOVED_V
    assert first_difference({0: python_clean[0], **twin_states}, {**js_buggy, 0: python_clean[0]})
    assert first_difference(twin_states, js_buggy) == REMOVED_V
    assert first_difference({0: python_buggy[0], **js_buggy}, python_buggy) is None
    # the documented sequence goes negative
    server = SampleServer()
    events = server.send("c1", {"type": "order/create", "customer": "ACME"})
    add = {"type": "order/add-line", "order": "o1", "sku": "A", "qty": 1, "price": 500}
    events += server.send("c1", add) + server.send("c1", add)
    events += server.send("c1", {"type": "order/remove-line", "order": "o1", "sku": "A"})
    assert fold_js(BUGGY_TWIN, events).out[0]["orders"]["o1"]["total"] == -1000
    assert fold_js(TWIN, events).out[0]["orders"]["o1"]["total"] == 0


# --------------------------------------------------------------------------- planted JS bugs


@requires_node
def test_random_enters_the_state_at_the_first_submit(planted_events, twin_states):
    one = each(planted_ref("random.mjs"), planted_events)
    two = each(planted_ref("random.mjs"), planted_events)
    assert first_difference(one, two) == SUBMITTED_V
    assert first_difference(one, twin_states) == SUBMITTED_V
    assert first_difference(without(one, "code"), twin_states) is None
    assert isinstance(one[SUBMITTED_V]["code"], int)


@requires_node
@pytest.mark.parametrize("name", ["reducer", "newDate"])
def test_clock_enters_the_state_at_the_first_submit(planted_events, twin_states, name):
    before = time.time() * 1000
    states = each(planted_ref("clock.mjs", name), planted_events)
    after = time.time() * 1000
    assert first_difference(states, twin_states) == SUBMITTED_V
    assert first_difference(without(states, "opened_at"), twin_states) is None
    stamp = states[SUBMITTED_V]["opened_at"]
    if name == "newDate":
        from datetime import datetime

        stamp = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000
    assert before - 1 <= stamp <= after + 1, "the wall clock, not the event's time"


@requires_node
def test_a_date_made_from_the_event_time_is_deterministic(planted_events):
    one = each(planted_ref("clock.mjs", "eventDate"), planted_events)
    two = each(planted_ref("clock.mjs", "eventDate"), planted_events)
    assert one == two
    ts = planted_events[SUBMITTED_V - 1].event["ts"]
    from datetime import UTC, datetime

    expected = datetime.fromtimestamp(ts // 10**6 / 1000, UTC).isoformat(timespec="milliseconds")
    assert one[SUBMITTED_V]["opened_at"] == expected.replace("+00:00", "Z")


@requires_node
def test_hidden_module_state_shows_only_in_a_warmed_up_process(planted_events, twin_states):
    ref = planted_ref("hidden_state.mjs")
    fresh = [each(ref, planted_events), each(ref, planted_events)]
    assert fresh[0] == fresh[1], "separate processes agree"
    warm = fold_js(ref, planted_events, "--each", "--runs", "2")
    assert warm.code == 0, warm.err
    assert first_difference(warm.states(1), warm.states(2)) == SUBMITTED_V
    assert warm.states(1) == fresh[0]
    assert fresh[0][SUBMITTED_V]["submit_no"] == SUBMITTED_V + 1  # @@INIT is the first call
    assert first_difference(without(fresh[0], "submit_no"), twin_states) is None


@requires_node
def test_sloppy_mutation_writes_its_input_and_freezing_hides_it(planted_events, twin_states):
    ref = planted_ref("mutation_sloppy.cjs")
    source = (PLANTED_DIR / "mutation_sloppy.cjs").read_text()
    assert "use strict" not in source.split("\n\n", 1)[1]
    checked = fold_js(ref, planted_events, "--check-input")
    assert checked.code == 1
    assert f"changed its input state at v={CANCELLED_V} (order/cancelled)" in checked.err
    plain = each(ref, planted_events)
    assert first_difference(plain, twin_states) == CANCELLED_V
    assert plain[CANCELLED_V]["count"] == twin_states[CANCELLED_V]["count"] + 1000
    # frozen inputs: the sloppy write fails silently, no error, and the states look clean
    frozen = fold_js(ref, planted_events, "--each", "--freeze", "--check-input")
    assert frozen.code == 0, frozen.err
    assert first_difference(frozen.states(), twin_states) is None


@requires_node
@pytest.mark.parametrize("ref", CLEAN_TWINS)
def test_clean_reducers_never_change_their_input(planted_events, twin_states, ref):
    for flags in (["--check-input"], ["--freeze", "--check-input"]):
        folded = fold_js(ref, planted_events, "--each", "--runs", "2", *flags)
        assert folded.code == 0, folded.err
        assert folded.states(1) == folded.states(2) == twin_states


@requires_node
def test_throws_at_the_first_line_removal(planted_events):
    folded = fold_js(planted_ref("throws.mjs"), planted_events)
    assert folded.code == 1 and folded.out == []
    (line,) = folded.err.splitlines()
    assert f"threw at v={REMOVED_V} (order/line-removed): RangeError: no stock record" in line
    assert "planted/throws.mjs:" in line


@requires_node
def test_version_b_differs_at_the_first_removal_and_matches_python_v0(planted_events, twin_states):
    states = each(planted_ref("version_b.mjs"), planted_events)
    assert first_difference(states, twin_states) == REMOVED_V
    assert states[REMOVED_V]["removed_lines"] == 1
    python_v0 = fold_py(sales_order_v0.reducer, planted_events)
    assert first_difference({0: python_v0[0], **states}, python_v0) is None


@requires_node
@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (planted_ref("syntax_error.mjs"), r"cannot load .*syntax_error\.mjs: .*Unexpected token"),
        (planted_ref("no_export.mjs"), r'no_export\.mjs has no export "reducer"'),
        (planted_ref("no_export.mjs", "default"), r'no_export\.mjs has no export "default"'),
        (planted_ref("not_function.mjs"), r"not_function\.mjs:reducer is not a function"),
        ("samples/js/missing.mjs:reducer", r"cannot load .*missing\.mjs"),
    ],
)
def test_files_that_do_not_load_or_export_no_function(planted_events, ref, message):
    folded = fold_js(ref, planted_events[:3])
    assert folded.code == 3 and folded.out == []
    (line,) = folded.err.splitlines()
    assert re.search(message, line), line


@requires_node
def test_node_test_suite_of_the_samples_passes():
    proc = subprocess.run(
        ["node", "--test", "samples/js/test/samples.test.mjs"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"^# pass 5$", proc.stdout, re.M), proc.stdout


def test_every_planted_file_says_what_it_plants():
    for path in sorted(PLANTED_DIR.iterdir()):
        head = path.read_text().splitlines()[0]
        assert head.startswith("// Planted:") or head.startswith("// Clean:"), path.name


# --------------------------------------------------------------------------- packages and CI


def test_packages_are_pinned_exactly_by_the_lock_file():
    package = json.loads((JS_DIR / "package.json").read_text())
    lock = json.loads((JS_DIR / "package-lock.json").read_text())
    assert package["private"] is True and package["type"] == "module"
    everything = package["dependencies"]
    # the repository's own Node package, installed as a copy (samples/js/.npmrc: install-links)
    assert everything["rdt-devtools"] == "file:../../node/rdt-devtools"
    deps = {k: v for k, v in everything.items() if k != "rdt-devtools"}
    # the Logux sample's server and client packages came with issue 17
    assert set(deps) == {"redux", "@reduxjs/toolkit", "ws", "@logux/core", "@logux/server"}
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", v) for v in deps.values()), deps
    packages = lock["packages"]
    assert packages[""]["dependencies"] == everything
    for name, version in deps.items():
        assert packages[f"node_modules/{name}"]["version"] == version
    local = {"../../node/rdt-devtools", "node_modules/rdt-devtools"}
    for name, entry in packages.items():
        if not name or name in local:
            continue
        assert entry.get("integrity", "").startswith("sha512-"), name
        resolved = entry.get("resolved")
        assert resolved is None or resolved.startswith("https://"), resolved
        assert not entry.get("link") and "git" not in entry.get("version", ""), name


@requires_node
def test_installed_packages_are_the_locked_ones():
    lock = json.loads((JS_DIR / "package-lock.json").read_text())
    for name, entry in lock["packages"].items():
        if name:
            installed = json.loads((JS_DIR / name / "package.json").read_text())
            assert installed["version"] == entry["version"], f"{name}: run npm ci"


def test_readme_test_command_installs_the_npm_packages_and_ci_finds_it():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    found = [
        m.group(1)
        for m in re.finditer(r"^    (python3 -m venv \.venv && .*pytest.*)$", readme, re.M)
    ]
    assert found, "the line .ci/run reads"
    assert "npm ci --prefix samples/js" in found[0]
    assert found[0].index("npm ci") < found[0].index("pytest")
    assert "apt-get install -y -qq nodejs npm" in ci
    assert "node_modules/" in (ROOT / ".gitignore").read_text().splitlines()
    assert "samples/js/sales_order.mjs:reducer" in readme


def test_js_tests_skip_with_a_reason_when_node_or_packages_are_missing(monkeypatch, tmp_path):
    from tests.samples import js_support

    monkeypatch.setattr(js_support.shutil, "which", lambda name: None)
    assert "node is not on PATH" in js_support.node_missing_reason()
    monkeypatch.undo()
    monkeypatch.setattr(js_support, "JS_DIR", Path(tmp_path))
    assert "npm ci --prefix samples/js" in (js_support.node_missing_reason() or "")
