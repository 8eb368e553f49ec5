"""`rdt import-events`: the pure rules directly, then real tables on SQLite, PostgreSQL and
MariaDB: 100,000 rows imported and replayed, 1,000 more picked up by a second run and by
``--follow``, and every bad-row rule refused (exit 3, named) or skipped (counted)."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from devtools.cli import app
from devtools.errors import BadInput
from devtools.event_table import PRESETS, BadRow, Layout, preset_layout, row_event
from devtools.import_events import import_events
from devtools.store import Log
from replayer.engine import Replay
from tests.conftest import POSTGRES_SKIP_REASON, POSTGRES_URL
from tests.factories import counter_reducer

ROOT = Path(__file__).resolve().parents[2]
MARIADB_URL = os.environ.get("RDT_TEST_MARIADB")
MARIADB_SKIP_REASON = "RDT_TEST_MARIADB is not set (CI sets it; see .ci/run)"
runner = CliRunner()
T = 1_795_420_800_000_000_000
LAYOUT = Layout(v_column="id", type_column="type", payload_column="payload", ts_column="ts")


# --------------------------------------------------------------------------- pure rules


def row(id_, type_="counter/added", payload='{"by": 1}', ts=None, **more):
    return {"id": id_, "type": type_, "payload": payload, "ts": ts, **more}


def test_a_row_becomes_an_event_with_its_payload_merged():
    made = row_event(row(7, payload='{"by": 3, "type": "ignored"}', ts=T), LAYOUT, 6, 0)
    assert made.v == 7 and made.type == "counter/added" and made.t_ns == T
    assert made.event == {"type": "counter/added", "by": 3, "v": 7, "ts": T}


def test_timestamps_sender_and_copied_columns():
    layout = Layout(
        v_column="id", ts_column="at", ts_unit="ms", sender_column="who", columns=("agg",)
    )
    made = row_event(
        {"id": 1, "type": "t", "payload": None, "at": 1500, "who": "u1", "agg": "a"}, layout, 0, 9
    )
    assert made.event == {"type": "t", "agg": "a", "v": 1, "ts": 1_500_000_000, "sender": "u1"}
    when = dt.datetime(2026, 1, 1, 0, 0, 0, 123456)
    made = row_event({"id": 1, "type": "t", "payload": b"{}", "ts": when}, LAYOUT, 0, 9)
    assert made.event["ts"] == int(when.replace(tzinfo=dt.UTC).timestamp()) * 10**9 + 123456000


@pytest.mark.parametrize(
    ("the_row", "last_v", "kind", "named"),
    [
        (row(5, payload="{not json"), 4, "payload-not-json", "id=5"),
        (row(5, payload="[1, 2]"), 4, "payload-not-object", "id=5"),
        (row(5, type_=None), 4, "no-type", "id=5"),
        (row(5, type_=""), 4, "no-type", "id=5"),
        (row(5), 5, "v-repeats", "id=5"),
        (row(3), 5, "v-backwards", "id=3"),
        (row(0), 0, "bad-v", "id=0"),
        (row("x"), 0, "bad-v", "id='x'"),
        (row(5, ts="noon"), 4, "bad-ts", "id=5"),
    ],
)
def test_every_bad_row_rule_names_the_row(the_row, last_v, kind, named):
    made = row_event(the_row, LAYOUT, last_v, 0)
    assert isinstance(made, BadRow) and made.kind == kind
    assert made.describe(LAYOUT).startswith(f"row {named}: ")


def test_without_a_v_column_rdt_numbers_the_rows():
    layout, table = preset_layout("resolve")
    assert table == "events" and layout.key == ("timestamp", "threadCounter", "threadId")
    resolve_row = {
        "threadId": 3,
        "threadCounter": 0,
        "timestamp": 1_700_000_000_123,
        "aggregateId": "order-1",
        "aggregateVersion": 1,
        "type": "ORDER_CREATED",
        "payload": '{"customer": "ACME"}',
    }
    made = row_event(resolve_row, layout, 41, 0)
    assert made.v == 42
    assert made.event == {
        "type": "ORDER_CREATED",
        "payload": {"customer": "ACME"},
        "aggregateId": "order-1",
        "aggregateVersion": 1,
        "timestamp": 1_700_000_000_123,
        "v": 42,
        "ts": 1_700_000_000_123_000_000,
    }


def test_presets_and_their_source():
    assert set(PRESETS) == {"row-per-event", "resolve"}
    assert "init-events.ts" in PRESETS["resolve"].doc
    layout, _ = preset_layout("row-per-event", v_column="seq")
    assert layout.v_column == "seq" and layout.payload_column == "payload"
    with pytest.raises(BadInput, match="--preset must be one of"):
        preset_layout("nope")
    with pytest.raises(BadInput, match="--order-by"):
        Layout(v_column=None).check()


# --------------------------------------------------------------------------- real tables


class EventTable:
    """An event table on one database, filled in batches."""

    def __init__(self, url: str, name: str) -> None:
        self.url = url
        self.name = name
        self.engine = sa.create_engine(url)
        self.meta = sa.MetaData()
        self.table = sa.Table(
            name,
            self.meta,
            sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
            sa.Column("type", sa.String(100)),
            sa.Column("payload", sa.Text),
            sa.Column("ts", sa.BigInteger),
        )
        self.meta.drop_all(self.engine)
        self.meta.create_all(self.engine)

    def add(self, start: int, count: int, **override) -> None:
        rows = [
            {
                "id": i,
                "type": "counter/added",
                "payload": json.dumps({"by": i}),
                "ts": T + i,
                **override,
            }
            for i in range(start, start + count)
        ]
        with self.engine.begin() as conn:
            for at in range(0, len(rows), 20_000):
                conn.execute(self.table.insert(), rows[at : at + 20_000])

    def drop(self) -> None:
        self.meta.drop_all(self.engine)
        self.engine.dispose()


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def event_table(request, tmp_path) -> Iterator[EventTable]:
    name = f"salesOrder_events_{uuid.uuid4().hex[:8]}"
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    elif request.param == "postgres":
        if not POSTGRES_URL:
            pytest.skip(POSTGRES_SKIP_REASON)
        url = request.getfixturevalue("postgres_log")
    else:
        if not MARIADB_URL:
            pytest.skip(MARIADB_SKIP_REASON)
        pytest.importorskip("pymysql", reason="the mysql extra: pip install -e '.[mysql]'")
        url = MARIADB_URL
    table = EventTable(url, name)
    try:
        yield table
    finally:
        table.drop()


def count_after(n: int) -> int:
    return n * (n + 1) // 2


def cli(*args: object):
    return runner.invoke(app, ["import-events", *[str(a) for a in args]])


def test_100000_rows_imported_replayed_and_resumed_by_a_second_run_and_by_follow(
    event_table, tmp_path
):
    log = str(tmp_path / "imported.rdtlog")
    event_table.add(1, 100_000)
    started = time.perf_counter()
    result = import_events(
        event_table.url, table=event_table.name, log=log, layout=LAYOUT, page=5000
    )
    assert (result.first_v, result.last_v, result.tally.imported) == (1, 100_000, 100_000)
    assert time.perf_counter() - started < 90
    with Replay.open(log, reducer=counter_reducer) as replay:
        assert replay.source_kind == "events"
        assert replay.state_at() == {"count": count_after(100_000)}
    with Log.open(log) as opened:
        reader = opened.reader()
        assert reader.event(100_000).event == {
            "type": "counter/added",
            "by": 100_000,
            "v": 100_000,
            "ts": T + 100_000,
        }
        assert reader.recording.server["events_from"] == "table"

    # a second run appends only the rows past the last imported v, into the same recording
    event_table.add(100_001, 1000)
    out = cli(event_table.url, "--table", event_table.name, "--log", log, "--ts-column", "ts",
              "--v-column", "id", "--json")  # fmt: skip
    assert out.exit_code == 0, out.output
    answer = json.loads(out.stdout)
    assert answer["appended"] and answer["imported"] == 1000
    assert (answer["first_v"], answer["last_v"]) == (100_001, 101_000)
    again = cli(event_table.url, "--table", event_table.name, "--log", log, "--v-column", "id",
                "--ts-column", "ts", "--json")  # fmt: skip
    assert json.loads(again.stdout)["imported"] == 0

    # --follow keeps tailing until interrupted
    follower = subprocess.Popen(
        [sys.executable, "-m", "devtools.cli", "import-events", event_table.url, "--table",
         event_table.name, "--log", log, "--v-column", "id", "--ts-column", "ts", "--follow",
         "--interval", "50"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(1.0)
        event_table.add(101_001, 1000)
        deadline = time.monotonic() + 30
        last = None
        while time.monotonic() < deadline:
            with Log.open(log) as opened:
                last = opened.reader().last_v()
            if last == 102_000:
                break
            time.sleep(0.1)
        assert last == 102_000
    finally:
        follower.send_signal(signal.SIGINT)
        stdout, stderr = follower.communicate(timeout=30)
    assert follower.returncode == 0, stderr
    assert "appended 1000 events" in stdout
    with Log.open(log) as opened:
        assert len(opened.recordings()) == 1
    with Replay.open(log, reducer=counter_reducer) as replay:
        assert replay.state_at() == {"count": count_after(102_000)}


def test_bad_rows_on_a_real_table_are_refused_or_skipped(event_table, tmp_path):
    log = tmp_path / "bad.rdtlog"
    event_table.add(1, 10)
    event_table.add(11, 1, payload="{oops")
    event_table.add(12, 1, type=None)
    event_table.add(13, 5)
    args = [event_table.url, "--table", event_table.name, "--log", log, "--v-column", "id"]
    refused = cli(*args)
    assert refused.exit_code == 3
    assert refused.stderr.count("\n") == 1
    assert "row id=11: payload is not JSON" in refused.stderr
    assert not log.exists()  # a refused first import leaves no new log behind
    skipped = cli(*args, "--on-bad", "skip")
    assert skipped.exit_code == 0, skipped.output
    assert "imported 15 events" in skipped.stdout
    assert "skipped 2 bad rows (1 no-type, 1 payload-not-json)" in skipped.stdout
    assert "row id=12: type is empty" in skipped.stdout


def test_a_repeated_or_backwards_v_is_caught_across_pages(tmp_path):
    db = tmp_path / "store.db"
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE ev (seq INTEGER, at INTEGER, type TEXT, payload TEXT)")
        rows = [(v, v, "counter/added", '{"by": 1}') for v in range(1, 8)]
        rows += [(4, 8, "counter/added", '{"by": 1}')]  # v 4 again, later in time
        conn.exec_driver_sql("INSERT INTO ev VALUES (?, ?, ?, ?)", rows)
    engine.dispose()
    log = tmp_path / "seq.rdtlog"
    base = [db, "--table", "ev", "--log", log, "--v-column", "seq", "--page-size", 4]
    repeated = cli(*base)
    assert repeated.exit_code == 3 and "row seq=4: v=4 repeats" in repeated.stderr
    backwards = cli(*base, "--order-by", "at")
    assert backwards.exit_code == 3 and "row at=8: v=4 goes backwards" in backwards.stderr
    skipped = cli(*base, "--order-by", "at", "--on-bad", "skip", "--json")
    assert json.loads(skipped.stdout)["skipped"] == {"v-backwards": 1}


def test_bad_options_are_one_line(tmp_path):
    db = tmp_path / "store.db"
    sa.create_engine(f"sqlite:///{db}").connect().exec_driver_sql("CREATE TABLE ev (v INTEGER)")
    log = tmp_path / "x.rdtlog"
    for args, needle in [
        ((tmp_path / "none.db", "--table", "ev"), "no such database file"),
        ((db, "--table", "missing"), "no table 'missing'"),
        ((db, "--table", "ev"), "has no column type"),
        ((db, "--table", "ev", "--preset", "x"), "--preset must be one of"),
        ((db, "--table", "ev", "--on-bad", "maybe"), "--on-bad must be"),
    ]:
        result = cli(*args, "--log", log)
        assert result.exit_code == 3, (args, result.output)
        assert needle in result.stderr and result.stderr.count("\n") == 1


def test_the_resolve_preset_on_a_table_shaped_like_resolves(tmp_path):
    db = tmp_path / "resolve.db"
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            'CREATE TABLE events ("threadId" BIGINT, "threadCounter" BIGINT, "timestamp" BIGINT,'
            ' "aggregateId" TEXT, "aggregateVersion" BIGINT, "type" TEXT, "payload" TEXT,'
            ' "eventSize" BIGINT, PRIMARY KEY ("threadId", "threadCounter"))'
        )
        rows = [
            (
                i % 3,
                i // 3,
                1_700_000_000_000 + i // 2,
                f"a{i % 5}",
                i,
                "ADDED",
                f'{{"by": {i}}}',
                9,
            )
            for i in range(1, 2001)
        ]
        conn.exec_driver_sql("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    engine.dispose()
    log = tmp_path / "resolve.rdtlog"
    first = cli(db, "--preset", "resolve", "--log", log, "--page-size", 300,
                "--where", '"threadCounter" < 400', "--json")  # fmt: skip
    assert first.exit_code == 0, first.output
    done = json.loads(first.stdout)["imported"]
    second = cli(db, "--preset", "resolve", "--log", log, "--page-size", 300, "--json")
    assert json.loads(second.stdout)["imported"] == 2000 - done
    with Log.open(log) as opened:
        events = list(opened.reader().events())
    assert [e.v for e in events] == list(range(1, 2001))
    keys = [(e.event["timestamp"], e.event["aggregateVersion"]) for e in events]
    assert [k[0] for k in keys] == sorted(k[0] for k in keys)
    assert sorted(e.event["payload"]["by"] for e in events) == list(range(1, 2001))
