"""Live mode against a real recorder in front of the sales-order sample (loopback, port 0)."""

from __future__ import annotations

import gc
import json

import pytest
import websockets

from devtools.cli import demo_stack
from devtools.tasks import spawn
from tests.tui.helpers import settle, submit
from tui.dialogs.inject import InjectDialog, parse_action
from tui.launch import live_app
from tui.live import LiveFeed
from tui.widgets.event_list import EventList
from tui.widgets.header import HeaderBar

pytestmark = pytest.mark.timeout(60)


async def send_orders(url: str, count: int) -> None:
    """A client creating ``count`` orders through the proxy (each answered by a broadcast)."""
    async with websockets.connect(url) as ws:
        for i in range(count):
            await ws.send(json.dumps({"type": "order/create", "customer": f"c{i}"}))
            await ws.recv()


async def wait_for(pilot, condition, rounds: int = 100) -> None:
    for _ in range(rounds):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not reached")


async def test_follows_the_tail_pauses_on_scroll_up_and_resumes_with_f(tmp_path) -> None:
    async with demo_stack(str(tmp_path / "live.rdtlog")) as stack:
        app = live_app(stack.control_url, token=stack.token)
        async with app.run_test(size=(120, 40)) as pilot:
            await send_orders(stack.proxy_url, 5)
            lst = app.query_one(EventList)
            await wait_for(pilot, lambda: len(lst.source) >= 5)
            assert app.query_one(HeaderBar).info.mode == "LIVE"
            assert lst.row.key == len(lst.source)  # following: on the newest event
            await pilot.press("k")  # the user steps back: following pauses
            assert not app.following
            at = lst.row.key
            await send_orders(stack.proxy_url, 3)
            await wait_for(pilot, lambda: len(lst.source) >= 8)
            assert lst.row.key == at  # the cursor stayed where the user put it
            assert app.query_one(HeaderBar).info.following is False
            await pilot.press("f")
            await settle(pilot)
            assert app.following and lst.row.key == len(lst.source)
            await pilot.press("g", "j")  # the list stays navigable
            assert lst.row.key == 2
            assert gc.get_freeze_count() > 0  # old rows are out of the collector's full walks
    assert gc.get_freeze_count() == 0  # … and back in once the app has stopped


async def test_state_tab_settles_on_the_followed_event_when_the_stream_pauses(tmp_path) -> None:
    """Regression: while following, the State tab lagged the selection (header at v 357, State
    "state after v 311"); it may refresh less often than the list, but must land on it."""
    from tui.demo import REDUCER
    from tui.widgets.state_view import StateView

    async with demo_stack(str(tmp_path / "live.rdtlog")) as stack:
        app = live_app(stack.control_url, token=stack.token, reducer=REDUCER)
        async with app.run_test(size=(120, 40)) as pilot:
            await send_orders(stack.proxy_url, 40)
            lst = app.query_one(EventList)
            state = app.query_one(StateView)
            await wait_for(pilot, lambda: len(lst.source) >= 40)
            assert app.following
            last = lst.source.peek(len(lst.source) - 1).key
            await wait_for(pilot, lambda: str(state.root.label) == f"state after v {last}")
            assert lst.row.key == last
            assert app.query_one(HeaderBar).info.position.startswith(f"v {last} ")
            assert state.state == app.replay.state_at(last)


async def test_inject_validates_keeps_history_and_shows_what_it_produced(tmp_path) -> None:
    async with demo_stack(str(tmp_path / "live.rdtlog")) as stack:
        app = live_app(stack.control_url, token=stack.token)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("i")
            assert isinstance(app.screen, InjectDialog)
            await submit(pilot, "{not json")
            assert isinstance(app.screen, InjectDialog)
            assert "not valid JSON" in str(app.screen.query_one("#error").render())
            await submit(pilot, '{"type": "order/create", "customer": "ACME"}')
            assert not isinstance(app.screen, InjectDialog)
            await wait_for(pilot, lambda: app.injections.items[-1].result is not None)
            item = app.injections.items[-1]
            assert item.result["ok"] and item.result["events"]
            assert "events [" in item.summary()
            lst = app.query_one(EventList)
            await wait_for(pilot, lambda: len(lst.source) >= 1)
            assert lst.row.type == "order/created"
            await pilot.press("i", "up")  # history recall
            assert "ACME" in app.screen.query_one("#action").value
            assert "events [" in str(app.screen.query_one("#history-text").render())
            await pilot.press("escape")


async def test_mark_in_live_mode_reaches_the_recorder(tmp_path) -> None:
    async with demo_stack(str(tmp_path / "live.rdtlog")) as stack:
        app = live_app(stack.control_url, token=stack.token)
        async with app.run_test(size=(120, 40)) as pilot:
            await send_orders(stack.proxy_url, 2)
            lst = app.query_one(EventList)
            await wait_for(pilot, lambda: len(lst.source) >= 2)
            await pilot.press("m")
            await wait_for(pilot, lambda: any("marked after" in n for n in app.notes))
            assert lst.row.key in lst.marked


async def test_wrong_token_is_shown_not_raised(tmp_path) -> None:
    async with demo_stack(str(tmp_path / "live.rdtlog")) as stack:
        feed = LiveFeed(stack.control_url, "wrong")
        await feed.run()
        assert feed.error is not None and "token was refused" in feed.error


def test_inject_parser_refuses_non_actions() -> None:
    assert parse_action("[1]") == "an action must be a JSON object"
    assert parse_action('{"x": 1}') == 'an action needs a string "type"'
    assert parse_action('{"type": "a"}') == {"type": "a"}


async def test_live_what_if_over_a_reducer_that_raises_shows_the_error_and_stays_up(
    tmp_path,
) -> None:
    """Regression: the live replay's what-if called the reducer unwrapped, so a reducer that
    raised closed the TUI instead of showing the error."""
    async with demo_stack(str(tmp_path / "live.rdtlog")) as stack:
        app = live_app(
            stack.control_url,
            token=stack.token,
            reducer="tests.replayer.fixture_raising:reducer",
        )
        async with app.run_test(size=(120, 40)) as pilot:
            await send_orders(stack.proxy_url, 4)
            lst = app.query_one(EventList)
            await wait_for(pilot, lambda: len(lst.source) >= 4)
            await pilot.press("k")  # pause following, then go to the first event
            await pilot.press("g")
            await settle(pilot)
            await pilot.press("s")  # what-if without v=1: the reducer raises at the third order
            await wait_for(pilot, lambda: any("planted: a third order" in n for n in app.notes))
            assert app.is_running
            await pilot.press("j")
            await settle(pilot)
            assert lst.row.key == 2  # still navigable


async def test_paused_header_agrees_with_the_list_and_G_goes_to_the_newest_event(tmp_path) -> None:
    """Regression: paused, `G` went to v 1039 while the header said 1075 (the tail moved on
    and the list stayed paused); now `G` goes to the newest event and follows the tail."""

    async with demo_stack(str(tmp_path / "live.rdtlog")) as stack:
        app = live_app(stack.control_url, token=stack.token)
        async with app.run_test(size=(120, 40)) as pilot:
            await send_orders(stack.proxy_url, 5)
            lst = app.query_one(EventList)
            header = app.query_one(HeaderBar)
            await wait_for(pilot, lambda: len(lst.source) >= 5)
            await pilot.press("k")
            await send_orders(stack.proxy_url, 7)
            await wait_for(pilot, lambda: len(lst.source) >= 12)
            await settle(pilot)
            await wait_for(pilot, lambda: header.info.newer == 8)  # once the header catches up
            info = header.info
            assert info.following is False
            assert info.position == f"v 4 (4/{len(lst.source)})"  # the list's own count
            assert "paused · 8 newer" in header.text.plain

            traffic = spawn(send_orders(stack.proxy_url, 60), "test-traffic")
            await wait_for(pilot, lambda: len(lst.source) >= 20)
            await pilot.press("G")  # while records keep arriving
            assert app.following
            await traffic
            newest = 12 + 60
            await wait_for(pilot, lambda: len(lst.source) == newest)
            await wait_for(pilot, lambda: header.info.position == f"v {newest} ({newest}/{newest})")
            assert lst.row.key == newest
            assert header.info.newer == 0


async def test_following_header_says_how_far_the_list_is_behind(tmp_path) -> None:
    async with demo_stack(str(tmp_path / "live.rdtlog")) as stack:
        app = live_app(stack.control_url, token=stack.token)
        async with app.run_test(size=(120, 40)) as pilot:
            await send_orders(stack.proxy_url, 5)
            lst = app.query_one(EventList)
            header = app.query_one(HeaderBar)
            await wait_for(pilot, lambda: len(lst.source) >= 5)
            await wait_for(pilot, lambda: header.info.behind == 0)  # a status answer came
            assert "following · up to date" in header.text.plain


async def test_live_feed_counts_what_the_recorder_has_and_the_screen_does_not(tmp_path) -> None:
    """`behind` = queued here + recorded but not yet received (from the recorder's status)."""
    import asyncio

    async with demo_stack(str(tmp_path / "live.rdtlog")) as stack:
        feed = LiveFeed(stack.control_url, stack.token)
        assert feed.behind() is None  # the recorder's count is not known yet
        await send_orders(stack.proxy_url, 3)
        await stack.recorder.flush()
        await feed.poll_status()
        messages, events = feed.recorder_counts
        assert messages >= 6 and events == 3  # 3 orders in, their broadcasts out
        assert feed.behind() == messages + events  # nothing received yet
        reader = spawn(feed.run(), "test-feed")
        for _ in range(100):
            if feed.received >= messages + events:
                break
            await asyncio.sleep(0.05)
        assert feed.behind() == len(feed.pending) > 0  # received, not yet on the screen
        feed.drain()
        assert feed.behind() == 0
        await feed.close()
        await reader
        assert len(feed.timeline.events) == 3
