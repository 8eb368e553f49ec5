"""The replay engine over real logs (SQLite in tmp_path, PostgreSQL when configured)."""

from __future__ import annotations

import random
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.errors import EmptyRecording, ReducerLoadError, UnknownRecording
from devtools.store import Log
from replayer.checkpoints import Pacing
from replayer.engine import Replay
from replayer.errors import BadExpression, PredicateError, ReplayError, VersionOutOfRange
from samples import sales_order, sales_order_buggy
from tests import factories
from tests.factories import T0, counter_reducer, event, message, snapshot

BUGGY = "samples.sales_order_buggy:reducer"
NEGATIVE = "any(o['total'] < 0 for o in state['orders'].values())"


def sales_events(count: int, *, bug_at: int | None = None, seed: int = 7) -> list:
    """A sales-order event stream of ``count`` events.

    With ``bug_at``, the planted bug's sequence (create, add A twice, remove A) ends exactly at
    ``v == bug_at``; everything else never adds a SKU twice, so only that removal goes negative.
    """
    rng = random.Random(seed)
    evs: list = []
    orders: list[str] = []
    lines: dict[str, list[str]] = {}
    planted = [] if bug_at is None else list(range(bug_at - 3, bug_at + 1))

    def add(kind: str, **fields):
        v = len(evs) + 1
        evs.append(event(v, kind, sender=f"c{v % 4}", **fields))

    while len(evs) < count:
        v = len(evs) + 1
        if planted and v == planted[0]:
            add("order/created", id="bug", customer="ACME")
            add("order/line-added", order="bug", sku="A", qty=1, price=500)
            add("order/line-added", order="bug", sku="A", qty=1, price=500)
            add("order/line-removed", order="bug", sku="A")
            planted = []
            continue
        roll = rng.random()
        if not orders or roll < 0.1:
            oid = f"o{len(orders) + 1}"
            orders.append(oid)
            lines[oid] = []
            add("order/created", id=oid, customer=f"cust{rng.randrange(50)}")
        elif roll < 0.75:
            oid = rng.choice(orders)
            sku = f"s{len(lines[oid])}"
            lines[oid].append(sku)
            add(
                "order/line-added",
                order=oid,
                sku=sku,
                qty=rng.randrange(1, 5),
                price=rng.randrange(100, 900),
            )
        elif roll < 0.9:
            oid = rng.choice(orders)
            if lines[oid]:
                add("order/line-removed", order=oid, sku=lines[oid].pop())
            else:
                add("order/submitted", order=oid)
        else:
            add("order/ping", note="unknown type: state unchanged")
    return evs[:count]


def write_sales_log(target, count: int, *, bug_at: int | None = None, snapshots=()) -> None:
    with Log.open(target, create=True) as log:
        writer = log.writer(name="orders", started_ns=T0)
        writer.add_events(sales_events(count, bug_at=bug_at))
        for snap in snapshots:
            writer.add_snapshot(snap)
        writer.close(ended_ns=T0 + 10**9)


def reference_states(evs, reducer, state=None):
    state = reducer(state, {"type": "@@INIT"}) if state is None else state
    states = [state]
    for ev in evs:
        state = reducer(state, ev.event)
        states.append(state)
    return states


@pytest.fixture
def sales_log(log_target):
    write_sales_log(log_target, 450, bug_at=301)
    return log_target


def test_state_at_matches_a_plain_fold(sales_log):
    evs = sales_events(450, bug_at=301)
    expected = reference_states(evs, sales_order.reducer)
    with Replay.open(sales_log, reducer="samples.sales_order:reducer", checkpoint_every=50) as r:
        assert (r.base_v, r.first_v, r.last_v) == (0, 1, 450)
        assert r.state_at() == expected[450]
        for v in (0, 1, 49, 50, 51, 299, 300, 449, 450, 123, 7):
            assert r.state_at(v) == expected[v], v
        assert len(r.checkpoints) == 9
        assert [v for v, _ in r.events(10, 12)] == [10, 11, 12]
        assert r.event(12) == evs[11].event


def test_state_is_a_fresh_object(sales_log):
    with Replay.open(sales_log, reducer=sales_order.reducer, checkpoint_every=50) as r:
        first = r.state_at(100)
        first["orders"].clear()
        assert r.state_at(100)["orders"]


def test_checkpoints_persist_and_a_changed_reducer_does_not_reuse_them(sales_log, tmp_path):
    with Replay.open(
        sales_log, reducer=sales_order.reducer, checkpoint_every=50, persist_after=0
    ) as r:
        r.build()
        assert r.checkpoints.loaded == 0
        key = r.key
    with Replay.open(
        sales_log, reducer=sales_order.reducer, checkpoint_every=50, persist_after=0
    ) as r:
        assert r.checkpoints.loaded == 9
        assert r.key == key
        assert (
            r.state_at(260)
            == reference_states(sales_events(450, bug_at=301), sales_order.reducer)[260]
        )
    path = tmp_path / "changed_reducer.py"
    path.write_text(
        "from samples.sales_order import reducer as base\n\n"
        "def reducer(s, e):\n    return base(s, e)\n"
    )
    with Replay.open(
        sales_log, reducer=f"{path}:reducer", checkpoint_every=50, persist_after=0
    ) as r:
        assert r.key != key
        assert r.checkpoints.loaded == 0
    with Replay.open(
        sales_log, reducer=sales_order.reducer, checkpoint_every=25, persist_after=0
    ) as r:
        assert r.checkpoints.loaded == 0


def test_initial_state_from_a_leading_snapshot(sqlite_log):
    factories.write_log(sqlite_log, events=0, snapshots=())
    with Log.open(sqlite_log) as log:
        writer = log.writer(name="late-join", started_ns=T0)
        writer.add_snapshot(snapshot(100, {"count": 5000}))
        writer.add_events(factories.counter_events(10, start=101))
        writer.close()
    with Replay.open(sqlite_log, reducer=counter_reducer, recording="late-join") as r:
        assert (r.base_v, r.first_v, r.last_v) == (100, 101, 110)
        assert r.state_at(100) == {"count": 5000}
        assert r.state_at(101) == {"count": 5101}
        assert r.state_at() == {"count": 5000 + sum(range(101, 111))}
        with pytest.raises(VersionOutOfRange, match="events run from v=101 to v=110"):
            r.state_at(99)


def test_message_source_numbers_parsed_inbound_messages(sqlite_log):
    msgs = [
        message(1, {"type": "counter/added", "by": 5}),
        message(2, {"type": "reply"}, direction="out"),
        message(3, payload="not json", flag="not-json"),
        message(4, {"type": "counter/added", "by": 7}),
        message(5, payload=b"\x00\x01", binary=True),
        message(6, {"type": "counter/added", "by": 2**70}),
    ]
    factories.write_log(sqlite_log, messages=0, events=0, snapshots=(), extra_messages=msgs)
    # A recording without events no longer falls back to its messages (issue 11): they are
    # replayed only when asked for, and auto/events refuse it unless allowed.
    for kind in ("auto", "events"):
        with pytest.raises(EmptyRecording, match="has no events"):
            Replay.open(sqlite_log, reducer=counter_reducer, source=kind)
    with Replay.open(sqlite_log, reducer=counter_reducer, source="messages") as r:
        assert r.source_kind == "messages"
        assert r.skipped_messages == 2
        assert r.last_v == 3
        assert r.state_at(1) == {"count": 5}
        assert r.state_at(3) == {"count": 12 + 2**70}
        assert r.event(2) == {"type": "counter/added", "by": 7}
    with Replay.open(sqlite_log, reducer=counter_reducer, source="events", allow_empty=True) as r:
        assert r.last_v == 0 and r.state_at() == {"count": 0}


def test_event_source_is_default_when_the_log_has_events(sqlite_log):
    factories.write_log(sqlite_log, messages=6, events=4, snapshots=())
    with Replay.open(sqlite_log, reducer=counter_reducer) as r:
        assert r.source_kind == "events"
        assert r.state_at() == {"count": 10}
    with Replay.open(sqlite_log, reducer=counter_reducer, source="messages") as r:
        assert r.source_kind == "messages" and r.last_v == 3


def test_reducer_that_raises_reports_v_event_and_its_own_traceback(sqlite_log, tmp_path):
    factories.write_log(sqlite_log, events=30, snapshots=())
    path = tmp_path / "explodes.py"
    path.write_text(
        "def reducer(state, event):\n"
        "    state = state or {'n': 0}\n"
        "    if event.get('v') == 17:\n"
        "        raise ValueError('cannot handle 17')\n"
        "    return {'n': state['n'] + 1} if 'v' in event else state\n"
    )
    with Replay.open(sqlite_log, reducer=f"{path}:reducer", checkpoint_every=5) as r:
        assert r.state_at(16) == {"n": 16}
        with pytest.raises(ReplayError) as info:
            r.state_at(20)
    error = info.value
    assert error.v == 17 and error.exit_code == 1
    assert error.event["v"] == 17
    assert "cannot handle 17" in error.traceback and "explodes.py" in error.traceback
    assert "engine.py" not in error.traceback


def test_bad_inputs_are_clear_errors(sales_log):
    with pytest.raises(ReducerLoadError):
        Replay.open(sales_log, reducer="no.such:thing")
    with pytest.raises(UnknownRecording):
        Replay.open(sales_log, reducer=sales_order.reducer, recording="nope")
    with Replay.open(sales_log, reducer=sales_order.reducer) as r:
        with pytest.raises(VersionOutOfRange, match="v=451 is out of range"):
            r.state_at(451)
        with pytest.raises(VersionOutOfRange):
            r.diff(-1, 3)
        with pytest.raises(VersionOutOfRange):
            r.what_if([0])
        with pytest.raises(BadExpression):
            r.bisect("state[")


def test_bisect_finds_the_planted_bug(sales_log):
    with Replay.open(sales_log, reducer=BUGGY, checkpoint_every=20) as r:
        result = r.bisect(NEGATIVE)
        assert result.v == 301
        assert result.event["type"] == "order/line-removed"
        assert {"op": "replace", "path": "/orders/bug/total", "value": -1000} in result.diff
        assert result.checkpoints_touched <= 2 + 5  # log2(22 checkpoints) + the two ends
        assert result.reductions <= 20
        assert r.bisect(NEGATIVE, good=100, bad_at=350).v == 301
        assert r.bisect(NEGATIVE, good=300, bad_at=301).v == 301


def test_bisect_never_and_contradictions(sales_log):
    with Replay.open(sales_log, reducer="samples.sales_order:reducer", checkpoint_every=20) as r:
        assert r.bisect(NEGATIVE).v is None
    with Replay.open(sales_log, reducer=BUGGY, checkpoint_every=20) as r:
        assert r.bisect(NEGATIVE, bad_at=300).v is None
        with pytest.raises(PredicateError, match="already holds at --good=310"):
            r.bisect(NEGATIVE, good=310)
        with pytest.raises(PredicateError, match="raised at v=450") as info:
            r.bisect("state['orders']['nope']['total'] < 0")
        assert info.value.v == 450


def test_what_if_skip(sales_log):
    evs = sales_events(450, bug_at=301)
    with Replay.open(sales_log, reducer=BUGGY, checkpoint_every=20) as r:
        result = r.what_if([301])
        assert result.skipped == [301]
        assert result.first_divergent_v == 301
        assert result.diff[0]["path"].startswith("/orders/bug")
        alt = [e for e in evs if e.v != 301]
        assert result.state == reference_states(alt, sales_order_buggy.reducer)[-1]
        ping = next(e.v for e in evs if e.type == "order/ping")
        noop = r.what_if([ping])
        assert noop.first_divergent_v is None and noop.diff == []


def test_a_replay_reads_past_a_page_in_order_and_a_paused_one_does_not_pin_the_wal(log_target):
    """Event pages share one connection, but no transaction stays open between pages."""
    count = 10_050  # many payload pages, and more than one 5,000-row page
    factories.write_log(log_target, messages=0, events=count, snapshots=())
    with Replay.open(log_target, reducer=counter_reducer) as r:
        iterator = r.events()
        first = [next(iterator) for _ in range(600)]  # paused inside the first page
        assert first[-1][0] == 600
        if "://" not in str(log_target):
            writer = r.reader.log.writer(name="more")
            writer.add_events(factories.counter_events(500))
            writer.close()
            with sqlite3.connect(log_target) as raw:
                busy, _frames, _done = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            assert busy == 0, "a paused replay kept the WAL from being checkpointed"
        assert [v for v, _ in iterator] == list(range(601, count + 1))
        assert r.state_at() == {"count": count * (count + 1) // 2}


def test_persisted_checkpoints_keep_huge_integers_exact(sqlite_log):
    evs = [event(v, by=2**70 + v) for v in range(1, 41)]
    factories.write_log(sqlite_log, messages=0, events=0, snapshots=(), extra_events=evs)
    expected = {"count": sum(2**70 + v for v in range(1, 31))}
    with Replay.open(
        sqlite_log, reducer=counter_reducer, checkpoint_every=10, persist_after=0
    ) as r:
        r.build()
    with Replay.open(
        sqlite_log, reducer=counter_reducer, checkpoint_every=10, persist_after=0
    ) as r:
        assert r.checkpoints.loaded == 4
        assert r.checkpoints.state(30) == expected
        assert r.state_at(35) == {
            "count": expected["count"] + sum(2**70 + v for v in range(31, 36))
        }


def _simulate(pacing: Pacing, *, boundaries: int, step: float, cost: float) -> list[float]:
    """Boundaries ``step`` seconds of reductions apart, each checkpoint costing ``cost``.

    Returns the times (in reduction seconds) at which checkpoints were taken.
    """
    now, reduced, taken = pacing.started, 0.0, []
    for _ in range(boundaries):
        now += step
        reduced += step
        if pacing.due(now):
            began, now = now, now + cost
            pacing.taken(began, now)
            taken.append(reduced)
    return taken


def test_pacing_takes_every_boundary_while_checkpoints_are_cheap():
    pacing = Pacing(100.0)
    taken = _simulate(pacing, boundaries=1000, step=0.01, cost=0.00005)  # 0.5% of the replay
    assert len(taken) == 1000


def test_pacing_takes_every_boundary_of_a_small_replay_whatever_the_cost():
    pacing = Pacing(0.0)
    taken = _simulate(pacing, boundaries=9, step=0.0001, cost=0.0005)  # 4.5 ms in all
    assert len(taken) == 9


@settings(max_examples=60, deadline=None)
@given(
    step=st.floats(1e-5, 0.05),
    cost=st.floats(1e-6, 0.02),
    boundaries=st.integers(1, 3000),
)
def test_pacing_bounds_checkpoint_cost_and_the_gap_between_checkpoints(step, cost, boundaries):
    pacing = Pacing(0.0, share=0.03, floor=0.05, seek=0.06)
    taken = _simulate(pacing, boundaries=boundaries, step=step, cost=cost)
    replay = boundaries * step
    # No more than ``seek`` seconds of reductions (plus one boundary's) without a checkpoint.
    gaps = [b - a for a, b in zip([0.0, *taken], taken, strict=False)]
    assert all(gap <= pacing.seek + step + 1e-9 for gap in gaps)
    # Beyond what the seek bound forces, checkpoints cost at most their share of the replay.
    forced = replay / pacing.seek + 1
    assert pacing.spent <= max(pacing.floor, pacing.share * replay) + cost * (forced + 1) + 1e-9


def test_checkpoints_are_written_in_the_background_and_then_leave_memory(sqlite_log, monkeypatch):
    """Batches go to the writer thread; once written, states are read back from the log."""
    import replayer.checkpoints as checkpoints

    monkeypatch.setattr(checkpoints, "BATCH_BYTES", 64)  # a batch every few checkpoints
    factories.write_log(sqlite_log, messages=0, events=500, snapshots=())
    with Replay.open(
        sqlite_log, reducer=counter_reducer, checkpoint_every=10, persist_after=0
    ) as r:
        r.build()
        # Pacing may skip boundaries here (each checkpoint costs a hand-over to the thread),
        # but the first one is always taken and the last batch is handed over at the end.
        taken = list(r.checkpoints.vs)
        assert len(taken) >= 2 and all(v % 10 == 0 for v in taken)
        assert r.checkpoints._memory == {}, "written states should not stay in memory"
        assert r.state_at(255) == {"count": 255 * 256 // 2}
    with sqlite3.connect(sqlite_log) as raw:
        saved = [v for (v,) in raw.execute("SELECT v FROM checkpoints ORDER BY v")]
    assert saved == taken


def test_a_log_that_refuses_checkpoints_keeps_them_in_memory(sqlite_log):
    """A failing write (here: the cache table dropped under us) never fails the replay."""
    factories.write_log(sqlite_log, messages=0, events=300, snapshots=())
    with Replay.open(
        sqlite_log, reducer=counter_reducer, checkpoint_every=10, persist_after=0
    ) as r:
        with sqlite3.connect(sqlite_log) as raw:
            raw.execute("DROP TABLE checkpoints")
        r.build()
        assert not r.checkpoints.persist
        assert len(r.checkpoints) == 30
        assert r.checkpoints.state(120) == {"count": 120 * 121 // 2}
        assert r.state_at(125) == {"count": 125 * 126 // 2}
