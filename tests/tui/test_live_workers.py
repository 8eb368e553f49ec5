"""Live mode over a recorder of several workers: the moment one disagrees the screen says so
(a notification, the header), and at that event the State tab shows both workers' states and
the Cause tab their diff; a log of them opened afterwards says the same."""

from __future__ import annotations

import pytest

from tests.cluster import BUG_TRAFFIC, BUG_V, TOKEN, start_cluster
from tests.tui.helpers import settle
from tui.launch import live_app, replay_app
from tui.widgets.cause_view import CauseView
from tui.widgets.event_list import EventList
from tui.widgets.header import HeaderBar
from tui.widgets.state_view import StateView

pytestmark = pytest.mark.timeout(60)


async def wait_for(pilot, condition, rounds: int = 200) -> None:
    for _ in range(rounds):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not reached")


async def test_a_worker_that_disagrees_is_raised_live_with_both_states_and_the_diff(tmp_path):
    cluster = await start_cluster(str(tmp_path / "live.rdtlog"))
    try:
        app = live_app(cluster.recorder.control_url, token=TOKEN)
        async with app.run_test(size=(160, 40)) as pilot:
            await cluster.send(BUG_TRAFFIC[: BUG_V - 1])
            lst = app.query_one(EventList)
            await wait_for(pilot, lambda: len(lst.source) >= BUG_V - 1)
            assert app.worker_alerts == []  # all agree so far
            await cluster.send(BUG_TRAFFIC[BUG_V - 1 : BUG_V])
            await wait_for(pilot, lambda: app.worker_alerts)
            assert any(note.startswith(f"worker 3 disagrees at v={BUG_V}: ") for note in app.notes)
            header = app.query_one(HeaderBar).text.plain
            assert f"worker 3 disagrees at v={BUG_V}" in header  # … and the header
            await wait_for(pilot, lambda: len(app.timeline.worker_snapshots()) >= 5)
            await pilot.press("k")  # stop following; the cursor is on the drifted event
            app.jump_to(BUG_V)
            await settle(pilot)
            tree = app.query_one(StateView)
            labels = [str(node.label) for node in tree.root.children]
            assert any(
                label.startswith("worker 1 (w-a, sales-order 1.0) after v=6") for label in labels
            )
            assert any(
                label.startswith("worker 3 (w-c, sales-order 1.0-buggy) after v=6")
                for label in labels
            )
            await pilot.press("5")  # the Cause tab
            await settle(pilot)
            text = app.query_one(CauseView).plain
            assert "workers disagree" in text and "/orders/o1/total" in text
            assert "-1000" in text
    finally:
        await cluster.close()


async def test_a_log_of_workers_opened_afterwards_raises_the_same(tmp_path):
    path = str(tmp_path / "after.rdtlog")
    cluster = await start_cluster(path)
    try:
        await cluster.send(BUG_TRAFFIC)
        await cluster.settle(len(BUG_TRAFFIC))
    finally:
        await cluster.close()
    app, log = replay_app(path)
    try:
        async with app.run_test(size=(160, 40)) as pilot:
            await wait_for(pilot, lambda: app.worker_alerts)
            assert [a.headline for a in app.worker_alerts] == [f"worker 3 disagrees at v={BUG_V}"]
            assert "worker 3 disagrees" in app.query_one(HeaderBar).text.plain
    finally:
        log.close()
