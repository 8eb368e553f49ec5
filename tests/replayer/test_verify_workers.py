"""`rdt verify` on a log of several workers: the worker-divergence finding, in --json, the
report and JUnit; a log of workers that agree verifies ok (Python and JavaScript reducers)."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET

import pytest
from typer.testing import CliRunner

from devtools.cli import app
from devtools.jsonutil import loads
from tests.cluster import ALL_GOOD, BUG_TRAFFIC, BUG_V, GOOD_GOOD_BUGGY, start_cluster
from tests.samples.js_support import requires_node

pytestmark = pytest.mark.timeout(120)
runner = CliRunner()
GOOD = "samples.sales_order:reducer"
BUGGY = "samples.sales_order_buggy:reducer"


def record(path: str, specs) -> str:
    async def main() -> None:
        cluster = await start_cluster(path, specs)
        try:
            await cluster.send(BUG_TRAFFIC)
            await cluster.settle(len(BUG_TRAFFIC))
        finally:
            await cluster.close()

    asyncio.run(main())
    return path


@pytest.fixture(scope="module")
def drifted(tmp_path_factory) -> str:
    return record(str(tmp_path_factory.mktemp("w") / "drifted.rdtlog"), GOOD_GOOD_BUGGY)


@pytest.fixture(scope="module")
def agreeing(tmp_path_factory) -> str:
    return record(str(tmp_path_factory.mktemp("w") / "agreeing.rdtlog"), ALL_GOOD)


def verify_json(log: str, reducer: str) -> tuple[int, dict]:
    result = runner.invoke(app, ["verify", log, "--reducer", reducer, "--json"])
    return result.exit_code, loads(result.stdout)


def test_the_drifted_worker_is_the_headline_with_who_where_and_the_diff(drifted):
    code, doc = verify_json(drifted, GOOD)
    assert code == 1 and doc["ok"] is False and doc["first_divergent_v"] == BUG_V
    (finding,) = doc["findings"]
    assert finding["kind"] == "worker-divergence" and finding["v"] == BUG_V
    assert finding["event"]["type"] == "order/line-removed"
    assert (finding["worker"]["index"], finding["worker"]["id"]) == (3, "w-c")
    assert finding["worker"]["version"] == "1.0-buggy"
    assert (finding["reference"]["index"], finding["reference"]["version"]) == (1, "1.0")
    assert [w["version"] for w in finding["workers"]] == ["1.0", "1.0.1", "1.0-buggy"]
    assert finding["replay_agrees_with"] == [1, 2] and finding["differs"] == "hash"
    # the replay against worker 3's own state after the v it was asked at
    assert finding["snapshot_v"] >= BUG_V and f"v={finding['snapshot_v']}" in finding["detail"]
    assert finding["diff"] == [
        {"op": "replace", "path": "/orders/o1/total", "value": -1000, "from_value": 0}
    ]


def test_replaying_the_drifted_reducer_agrees_with_the_drifted_worker(drifted):
    code, doc = verify_json(drifted, BUGGY)
    assert code == 1 and doc["first_divergent_v"] == BUG_V
    kinds = {f["kind"]: f for f in doc["findings"]}
    assert set(kinds) == {"worker-divergence", "recorded-hash"}  # worker 1's hashes are stored
    assert kinds["worker-divergence"]["replay_agrees_with"] == [3]
    assert kinds["worker-divergence"]["diff"][0]["value"] == 0  # the replay → worker 1's state


def test_the_report_and_junit_name_the_workers(drifted, tmp_path):
    report = tmp_path / "verify.xml"
    result = runner.invoke(app, ["verify", drifted, "--reducer", GOOD, "--junit", str(report)])
    assert result.exit_code == 1
    assert "error[worker-divergence]" in result.stdout
    assert "(worker-divergence)" in result.stdout.replace("\n", " ")
    failure = ET.parse(report).getroot().find("testsuite/testcase/failure")
    assert failure.get("type") == "worker-divergence"
    assert f"at v={BUG_V}" in failure.get("message")


def test_workers_that_agree_verify_ok(agreeing):
    code, doc = verify_json(agreeing, GOOD)
    assert code == 0 and doc["ok"] is True and doc["findings"] == []


@requires_node
def test_a_javascript_reducer_is_compared_with_the_workers_too(drifted):
    code, doc = verify_json(drifted, "samples/js/sales_order.mjs:reducer")
    assert code == 1 and doc["first_divergent_v"] == BUG_V
    (finding,) = doc["findings"]
    assert finding["kind"] == "worker-divergence" and finding["replay_agrees_with"] == [1, 2]
