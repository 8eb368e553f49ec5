"""Guards: clock/random calls seen with their call site; mutation checks on states."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from replayer.guards import mutation_path, shallow_changed, shallow_fingerprint

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import json, sys, logging
    from replayer.guards import CallGuard
    guard = CallGuard()
    guard.install()
    sys.path.insert(0, sys.argv[1])
    import user_mod
    guard.rebind([user_mod])
    for v, name in enumerate(user_mod.CASES, start=1):
        guard.v = v
        getattr(user_mod, name)()
        guard.v = None
    user_mod.outside()
    print(json.dumps([[s.name, s.line, s.v] for s in guard.found()]))
    """
)

USER = textwrap.dedent(
    """
    import datetime, logging, os, random, secrets, time, uuid
    from time import monotonic
    _rng = random.Random(1)
    CASES = ["clock", "rand", "seeded", "ids", "quiet", "shared", "outside_only"]
    def clock():
        time.time_ns(); monotonic(); time.perf_counter(); datetime.date.today()
        datetime.datetime.now()
    def rand():
        random.choice([1, 2]); random.Random(); secrets.token_hex(4)
    def seeded():
        random.Random(42).random()
    def ids():
        uuid.uuid4(); os.urandom(2)
    def quiet():
        logging.getLogger("x").warning("not a finding")
    def shared():
        _rng.random()
    def outside_only():
        pass
    def outside():
        time.time(); random.random()
    """
)


def test_every_source_is_reported_with_its_line_and_v(tmp_path):
    (tmp_path / "user_mod.py").write_text(USER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    found = {(name, v) for name, _line, v in json.loads(done.stdout.splitlines()[-1])}
    assert found == {
        ("time.time_ns", 1),
        ("time.monotonic", 1),
        ("time.perf_counter", 1),
        ("datetime.date.today", 1),
        ("datetime.datetime.now", 1),
        ("random.choice", 2),
        ("random.Random()", 2),
        ("secrets.token_hex", 2),
        ("uuid.uuid4", 4),
        ("os.urandom", 4),
        ("random.Random.random", 6),
    }


def test_shallow_check_sees_top_level_changes_only():
    state = {"a": 1, "b": {"c": 2}}
    fp = shallow_fingerprint(state)
    assert not shallow_changed(state, fp)
    state["b"]["c"] = 3  # deep: left to the sentinel and checkpoint re-hashes
    assert not shallow_changed(state, fp)
    state["b"] = state["b"]  # the same object back: nothing a later reader could see
    assert not shallow_changed(state, fp)
    state["a"] = 2
    assert shallow_changed(state, fp)
    fp = shallow_fingerprint(state)
    del state["a"]
    assert shallow_changed(state, fp)
    items = [1, 2]
    fp = shallow_fingerprint(items)
    items.append(3)
    assert shallow_changed(items, fp)
    assert shallow_fingerprint("text") is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values, json_values)
def test_mutation_path_is_empty_exactly_when_nothing_changed(a, b):
    path, patch = mutation_path(a, b)
    assert (patch == []) == (json.dumps(a) == json.dumps(b) and type(a) is type(b)) or patch == []
    if patch:
        assert path == patch[0]["path"]
