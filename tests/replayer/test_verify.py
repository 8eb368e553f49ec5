"""`rdt verify`: every planted bug caught at its exact v; clean reducers never flagged."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from devtools.cli import app
from devtools.jsonutil import loads
from replayer.verify import VerifyOptions, first_mismatch, recorded_window, verify_log
from tests.replayer.planted import PROMO_V, REMOVED_V, TAGGED_V, clean_shop, write_shop_log

pytestmark = pytest.mark.timeout(120)

P = "tests.replayer.planted."
runner = CliRunner()


@pytest.fixture(scope="module")
def shop_log(tmp_path_factory) -> str:
    return write_shop_log(tmp_path_factory.mktemp("verify") / "shop.rdtlog")


@pytest.fixture(scope="module")
def planted(shop_log):
    """``planted(module)``: the verify result for a planted-bug reducer, computed once."""
    results = {}

    def verify(module: str):
        if module not in results:
            opts = VerifyOptions(checkpoint_every=10)
            results[module] = verify_log(shop_log, f"{P}{module}:reducer", opts)
        return results[module]

    return verify


def kinds(result) -> dict[str, list]:
    out: dict[str, list] = {}
    for f in result.findings:
        out.setdefault(f.kind, []).append(f)
    return out


# --------------------------------------------------------------------------- pure comparisons


def test_first_mismatch_names_the_last_agreeing_and_first_differing_v():
    a = [[0, "h0"], [10, "h1"], [20, "x"], [30, "y"]]
    b = [[0, "h0"], [10, "h1"], [20, "z"], [30, "y"]]
    assert first_mismatch(a, b) == (10, 20)
    assert first_mismatch(a, a) is None
    # unknown hashes (a state that is not JSON) and missing points are not compared
    assert first_mismatch([[0, None], [5, "a"]], [[0, "q"], [5, "a"]]) is None
    assert first_mismatch([[0, "a"]], [[0, "b"]]) == (None, 0)


def test_recorded_window_skips_events_the_server_did_not_hash():
    replayed = {v: f"h{v}" for v in range(1, 11)}
    assert recorded_window(replayed, [(5, "h5"), (10, "bad")], None) == (5, 10)
    assert recorded_window(replayed, [(5, "h5"), (10, "h10")], None) is None
    assert recorded_window(replayed, [(3, "bad")], 0) == (0, 3)


# --------------------------------------------------------------------------- planted bugs


@pytest.mark.parametrize(
    ("module", "kind", "v"),
    [
        ("random_bug", "nondeterministic-call", PROMO_V),
        ("random_bug", "hash-divergence", PROMO_V),
        ("clock_bug", "nondeterministic-call", PROMO_V),
        ("datetime_bug", "nondeterministic-call", PROMO_V),
        ("set_order_bug", "hash-divergence", TAGGED_V),
        ("global_state_bug", "hash-divergence", PROMO_V),
        ("mutation_bug", "mutation", TAGGED_V),
        ("mutation_deep_bug", "mutation", TAGGED_V),
        ("unserializable_bug", "unserializable", REMOVED_V),
        ("raises_bug", "exception", REMOVED_V),
    ],
)
def test_planted_bug_is_caught_at_its_exact_v(planted, module, kind, v):
    result = planted(module)
    assert not result.ok
    found = kinds(result)
    assert kind in found, result.to_json()
    assert found[kind][0].v == v
    assert result.first_divergent_v == v
    assert found[kind][0].event["v"] == v


def test_findings_carry_the_path_call_site_and_diff(planted):
    mutation = kinds(planted("mutation_deep_bug"))["mutation"][0]
    assert mutation.extra["path"].startswith("/items/sku-3/tags/")
    assert mutation.diff and mutation.diff[0]["op"] == "add"

    clock = kinds(planted("clock_bug"))
    call = clock["nondeterministic-call"][0]
    assert call.extra["call"]["name"] == "time.time"
    assert call.extra["call"]["file"].endswith("planted/clock_bug.py")
    assert "clock_bug.py:14" in call.detail

    sets = kinds(planted("set_order_bug"))["hash-divergence"][0]
    assert sets.diff and all(op["path"].startswith("/items/sku-3/tags") for op in sets.diff)

    unser = kinds(planted("unserializable_bug"))
    assert unser["unserializable"][0].extra["path"] == "/removed"

    raised = kinds(planted("raises_bug"))["exception"][0]
    assert "KeyError" in raised.detail and "raises_bug.py" in raised.detail


def test_a_worker_that_dies_is_a_finding_and_the_next_verify_still_runs(planted, shop_log):
    died = planted("exit_bug")
    assert not died.ok
    assert {f.kind for f in died.findings} == {"exception"}
    assert all("died (exit 7)" in f.detail for f in died.findings)
    assert verify_log(shop_log, f"{P}clean_shop:reducer").ok


def test_every_verify_imports_the_reducer_afresh(planted, shop_log):
    """Workers are forks of long-lived servers: module-level state must not carry over."""
    first = kinds(planted("global_state_bug"))["hash-divergence"][0]
    again = verify_log(shop_log, f"{P}global_state_bug:reducer", VerifyOptions(checkpoint_every=10))
    second = kinds(again)["hash-divergence"][0]
    assert (second.v, second.diff) == (first.v, first.diff)


def test_mutation_is_found_with_the_default_checkpoint_interval(shop_log):
    """The deep check at checkpoints also pins a mutation when K is larger than the log."""
    result = verify_log(shop_log, f"{P}mutation_deep_bug:reducer")
    assert [(f.kind, f.v) for f in result.findings] == [("mutation", TAGGED_V)]


# --------------------------------------------------------------------------- recorded hashes


def test_recorded_hash_every_event_pins_the_exact_v(tmp_path):
    log = write_shop_log(tmp_path / "h.rdtlog", hashes_from=clean_shop.reducer)
    assert verify_log(log, f"{P}clean_shop:reducer").ok
    result = verify_log(log, f"{P}version_b:reducer", VerifyOptions(checkpoint_every=10))
    found = kinds(result)["recorded-hash"][0]
    assert found.v == REMOVED_V
    assert found.extra["exact"] is True
    assert found.diff == [{"op": "replace", "path": "/count", "value": found.diff[0]["value"]}] or (
        any(op["path"] == "/count" for op in found.diff)
    )


@pytest.mark.parametrize(("every", "window"), [(5, (35, 40)), (7, (35, 42))])
def test_sparse_recorded_hashes_report_the_window(tmp_path, every, window):
    log = write_shop_log(tmp_path / "s.rdtlog", hashes_from=clean_shop.reducer, hash_every=every)
    result = verify_log(log, f"{P}version_b:reducer", VerifyOptions(checkpoint_every=10))
    found = kinds(result)["recorded-hash"][0]
    assert found.v == window[1]
    assert found.extra["window"] == list(window)
    assert found.extra["exact"] is False
    assert f"v={window[0] + 1}..{window[1]}" in found.detail


def test_recorded_snapshot_mismatch(tmp_path):
    log = write_shop_log(
        tmp_path / "snap.rdtlog",
        hashes_from=clean_shop.reducer,
        hash_every=10**9,
        snapshot_every=10,
    )
    assert verify_log(log, f"{P}clean_shop:reducer").ok
    result = verify_log(log, f"{P}version_b:reducer")
    found = kinds(result)["recorded-snapshot"][0]
    assert found.v == REMOVED_V
    assert any(op["path"] == "/count" for op in found.diff)
    assert f"v={REMOVED_V - 9}..{REMOVED_V}" in found.detail


def test_postgres_log(postgres_log):
    log = write_shop_log(postgres_log, hashes_from=clean_shop.reducer, hash_every=3)
    assert verify_log(log, f"{P}clean_shop:reducer").ok
    result = verify_log(log, f"{P}set_order_bug:reducer", VerifyOptions(checkpoint_every=10))
    assert kinds(result)["hash-divergence"][0].v == TAGGED_V


# --------------------------------------------------------------------------- no false alarms


@pytest.mark.parametrize("module", ["clean_shop", "clean_float"])
def test_clean_reducers_are_never_flagged_across_many_seeds(tmp_path, module):
    import importlib

    clean = importlib.import_module(P + module).reducer
    logs = [
        write_shop_log(tmp_path / "a.rdtlog"),
        write_shop_log(tmp_path / "b.rdtlog", n=45, hashes_from=clean, snapshot_every=9),
    ]
    for seeds in [(1, 2, 3, 4), (5, 6, 7, 8)]:
        for log in logs:
            opts = VerifyOptions(runs=4, seeds=seeds, checkpoint_every=7)
            result = verify_log(log, f"{P}{module}:reducer", opts)
            assert result.ok, result.to_json()


def test_sample_sales_order_reducer_is_clean(tmp_path):
    from tests.replayer.test_verify_recipe import write_sales_log

    log = write_sales_log(tmp_path / "sales.rdtlog", orders=12)
    assert verify_log(log, "samples.sales_order:reducer", VerifyOptions(runs=3)).ok


# --------------------------------------------------------------------------- the command


def test_cli_json_for_one_and_several_logs(shop_log, tmp_path):
    ref = f"{P}set_order_bug:reducer"
    one = runner.invoke(app, ["verify", shop_log, "--reducer", ref, "--json"])
    assert one.exit_code == 1
    doc = loads(one.stdout)
    assert doc["ok"] is False and doc["first_divergent_v"] == TAGGED_V
    assert set(doc["findings"][0]) >= {"kind", "v", "event", "diff", "detail"}

    other = write_shop_log(tmp_path / "other.rdtlog", n=20)
    two = runner.invoke(app, ["verify", other, shop_log, "--reducer", ref, "--json"])
    assert two.exit_code == 1
    docs = loads(two.stdout)
    assert [d["log"] for d in docs] == [other, shop_log]
    assert [d["ok"] for d in docs] == [True, False]


def test_cli_readable_report_is_compiler_style(shop_log):
    result = runner.invoke(
        app, ["verify", shop_log, "--reducer", f"{P}clock_bug:reducer"], env={"COLUMNS": "250"}
    )
    assert result.exit_code == 1
    out = result.stdout
    assert (
        f"error[nondeterministic-call]: the reducer read a clock or a random source at v={PROMO_V}"
        in out
    )
    assert f"--> {shop_log}, event v={PROMO_V} (promo/started)" in out
    assert "= help:" in out and "= note:" in out


def test_cli_clean_exits_zero(shop_log):
    result = runner.invoke(app, ["verify", shop_log, "--reducer", f"{P}clean_shop:reducer"])
    assert result.exit_code == 0, result.output
    assert "ok:" in result.stdout


@pytest.mark.parametrize("bisect", [False, True])
def test_cli_cannot_replay_is_exit_3_or_125(tmp_path, shop_log, bisect):
    flags = ["--git-bisect"] if bisect else []
    code = 125 if bisect else 3
    missing = runner.invoke(
        app,
        ["verify", str(tmp_path / "nope.rdtlog"), "--reducer", f"{P}clean_shop:reducer", *flags],
    )
    assert missing.exit_code == code
    assert "nope.rdtlog" in missing.stderr and "Traceback" not in missing.output
    bad_ref = runner.invoke(
        app, ["verify", shop_log, "--reducer", "no.such.module:reducer", *flags]
    )
    assert bad_ref.exit_code == code
    assert "no.such.module" in bad_ref.stderr
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('cannot import me')\n")
    bad_file = runner.invoke(app, ["verify", shop_log, "--reducer", f"{broken}:reducer", *flags])
    assert bad_file.exit_code == code
    assert "cannot import me" in bad_file.stderr


def test_cli_not_a_log_and_unknown_recording(tmp_path, shop_log):
    junk = tmp_path / "junk.rdtlog"
    junk.write_bytes(b"not a database at all" * 10)
    result = runner.invoke(app, ["verify", str(junk), "--reducer", f"{P}clean_shop:reducer"])
    assert result.exit_code == 3 and result.stderr.startswith("rdt: ")
    result = runner.invoke(
        app, ["verify", shop_log, "--reducer", f"{P}clean_shop:reducer", "--recording", "nope"]
    )
    assert result.exit_code == 3 and "nope" in result.stderr


def test_exception_in_reducer_is_a_finding_not_a_skip(shop_log):
    """A reducer that raises is a bad commit for git bisect (exit 1), never a skip (125)."""
    result = runner.invoke(
        app, ["verify", shop_log, "--reducer", f"{P}raises_bug:reducer", "--git-bisect"]
    )
    assert result.exit_code == 1


@pytest.mark.parametrize("name", ["verify", "compare", "gen-test"])
def test_help_has_an_example(name):
    result = runner.invoke(app, [name, "--help"])
    assert result.exit_code == 0
    assert "Example: rdt " + name in result.stdout


def test_without_fork_each_worker_is_its_own_interpreter(shop_log, monkeypatch):
    """Where os.fork does not exist (Windows), every request spawns `python -m
    replayer.verify_runner`: the same findings at the same v, and a clean reducer passes."""
    import replayer.verify_pool as verify_pool

    monkeypatch.delattr(verify_pool.os, "fork")  # this platform has fork; pretend it has not
    opts = VerifyOptions(checkpoint_every=10)
    found = kinds(verify_log(shop_log, f"{P}set_order_bug:reducer", opts))
    assert found["hash-divergence"][0].v == TAGGED_V
    died = verify_log(shop_log, f"{P}exit_bug:reducer", opts)
    assert {f.kind for f in died.findings} == {"exception"}
    assert verify_log(shop_log, f"{P}clean_shop:reducer", opts).ok


# --------------------------------------------------------------------------- the headline


def test_headline_is_the_first_event_a_fresh_replay_disagrees_with_the_recorded_hashes(tmp_path):
    """Regression: with hidden module state the headline named the v at which a warmed-up run
    first disagreed with the fresh one (39), though the log's own per-event hashes still matched
    there; a fresh replay first disagrees with what the server recorded at v=50."""
    from tests.replayer.planted import call_count_bug

    log = write_shop_log(tmp_path / "h.rdtlog", hashes_from=clean_shop.reducer)
    fresh_v = call_count_bug.LIMIT - 1  # @@INIT is the first call
    warmed_v = fresh_v - 10 - 1  # the warm-up: @@INIT and 10 events, K = 10
    result = verify_log(log, f"{P}call_count_bug:reducer", VerifyOptions(checkpoint_every=10))
    found = kinds(result)
    assert result.first_divergent_v == fresh_v
    assert result.headline is found["recorded-hash"][0]
    assert found["recorded-hash"][0].v == fresh_v and found["recorded-hash"][0].extra["exact"]
    between = found["hash-divergence"]
    assert [(f.v, f.extra["cause"]) for f in between] == [(warmed_v, "hidden-state")]
    assert between[0].diff == [{"op": "add", "path": "/stale", "value": True}]
    assert result.decided_by == "recorded-hash"

    doc = loads(
        runner.invoke(
            app,
            [
                "verify",
                log,
                "--reducer",
                f"{P}call_count_bug:reducer",
                "--json",
                "--checkpoint-every",
                "10",
            ],
        ).stdout
    )
    assert set(doc) == {"ok", "first_divergent_v", "findings", "info"}
    assert doc["first_divergent_v"] == fresh_v
    text = runner.invoke(
        app,
        ["verify", log, "--reducer", f"{P}call_count_bug:reducer", "--checkpoint-every", "10"],
        env={"COLUMNS": "250"},
    ).stdout
    assert f"first at v={fresh_v} (recorded-hash)" in text
    assert (
        f"error[hash-divergence]: state differs between runs (hidden-state) at v={warmed_v}" in text
    )


@pytest.mark.parametrize(
    ("module", "cause", "v"),
    [("global_state_bug", "hidden-state", PROMO_V), ("set_order_bug", "hash-seed", TAGGED_V)],
)
def test_between_runs_the_cause_is_named_and_decides_without_recorded_truth(
    planted, module, cause, v
):
    result = planted(module)
    (between,) = kinds(result)["hash-divergence"]
    assert (between.v, between.extra["cause"]) == (v, cause)
    assert result.decided_by == f"hash-divergence: {cause}"


def test_help_says_how_the_headline_is_chosen():
    out = " ".join(runner.invoke(app, ["verify", "--help"], env={"COLUMNS": "200"}).stdout.split())
    assert "a fresh replay disagrees with them" in out
    assert "hidden-state" in out and "hash-seed" in out
