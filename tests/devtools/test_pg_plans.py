"""PostgreSQL plans that do not depend on luck: the hot reads take the primary key's index.

A table loaded in bulk and never analyzed (or analyzed before this recording was added) makes
the planner expect a handful of rows; left to itself it then picks a bitmap heap scan of every
remaining row of the recording and a top-N sort, a page cost that grows with what is left of
the log. These tests load rows the way a bulk import does, with autovacuum off on the tables
(so nothing analyzes behind the test's back), and EXPLAIN every hot query exactly as rdt runs
it (captured from the engine), requiring an index scan and neither a sort nor a bitmap nor a
sequential scan.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import sqlalchemy as sa

from devtools import schema
from devtools.jsonutil import dumps
from devtools.store import PAYLOAD_PAGE, Log

pytestmark = pytest.mark.timeout(120)

T0 = 1_795_420_800_000_000_000
N = 30_000
KEY = "tests.reducer:v1"


def _bulk_load(log: Log, rid: int, n: int) -> None:
    """Rows of recording ``rid`` written straight through the driver: no ANALYZE anywhere."""
    raw = log.engine.raw_connection()
    try:
        cur = raw.cursor()
        for table in ("events", "messages", "snapshots", "checkpoints", "worker_hashes"):
            cur.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
        events = [
            (rid, v, "counter/add", dumps({"type": "counter/add", "by": v}), v, f"h{v}", T0 + v)
            for v in range(1, n + 1)
        ]
        cur.executemany(log.db.insert_events, events)
        messages = [
            (rid, s, 1, "in", T0 + s, "counter/add", b'{"type":"counter/add"}', False, None, -1)
            for s in range(1, n + 1)
        ]
        cur.executemany(log.db.insert_messages, messages)
        cur.executemany(
            "INSERT INTO snapshots (recording_id, v, state, hash, t_ns) "
            "VALUES (%s, %s, %s, %s, %s)",
            [(rid, v, b"{}", None, T0 + v) for v in range(0, n + 1, 100)],
        )
        cur.executemany(
            "INSERT INTO checkpoints (recording_id, key, v, state, hash) "
            "VALUES (%s, %s, %s, %s, %s)",
            [(rid, KEY, v, b"{}", f"h{v}") for v in range(100, n + 1, 100)],
        )
        cur.executemany(  # two workers of a recording of several
            "INSERT INTO worker_hashes (recording_id, v, worker, hash, event) "
            "VALUES (%s, %s, %s, %s, %s)",
            [(rid, v, w, f"h{v}", None) for v in range(1, n + 1) for w in (1, 2)],
        )
        raw.commit()
    finally:
        raw.close()


def _plan(log: Log, sql: str, params: Any) -> list[str]:
    """The plan's node types, as rdt would run ``sql`` (inside ``LogDb.reading``)."""
    with log.db.reading() as conn:
        text = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + sql, params).scalar_one()
    doc = text if isinstance(text, list) else json.loads(text)
    nodes: list[str] = []

    def walk(node: dict) -> None:
        nodes.append(node["Node Type"])
        for child in node.get("Plans", ()):
            walk(child)

    walk(doc[0]["Plan"])
    return nodes


def _assert_index_plan(nodes: list[str], what: str) -> None:
    assert any(n in ("Index Scan", "Index Only Scan") for n in nodes), (what, nodes)
    bad = [n for n in nodes if n in ("Seq Scan", "Sort", "Incremental Sort") or "Bitmap" in n]
    assert not bad, (what, nodes)


def _captured(log: Log, run) -> list[tuple[str, Any]]:
    """The statements (and parameters) the engine runs during ``run()``."""
    seen: list[tuple[str, Any]] = []

    def hook(_conn, _cursor, statement, parameters, _context, _many):
        if statement.lstrip().upper().startswith("SELECT") and "set_config" not in statement:
            seen.append((statement, parameters))

    sa.event.listen(log.engine, "before_cursor_execute", hook)
    try:
        run()
    finally:
        sa.event.remove(log.engine, "before_cursor_execute", hook)
    return seen


@pytest.fixture(params=["never-analyzed", "stale"])
def loaded(request, postgres_log):
    """A log whose recording was bulk-loaded into never-analyzed tables, or loaded after the
    tables were analyzed with another recording only (statistics that do not know it)."""
    with Log.open(postgres_log, create=True) as log:
        if request.param == "stale":
            first = log.writer(name="first")
            _bulk_load(log, first.recording_id, 2_000)
            log.db.analyze()
        second = log.writer(name="second")
        _bulk_load(log, second.recording_id, N)
        yield log, second.recording_id


def test_every_hot_query_takes_the_index_right_after_a_bulk_load(loaded):
    log, rid = loaded
    reader = log.reader(rid)
    store = reader.checkpoint_store()
    # The driver-level pages (replay, verify): their SQL and parameters as the reader sends them.
    for lo in (1, N // 2, N - 10):
        _assert_index_plan(
            _plan(log, log.db.event_payloads, (rid, lo, 2**62, PAYLOAD_PAGE)), "event pages"
        )
        _assert_index_plan(_plan(log, log.db.event_hashes, (rid, lo, 2**62, 5000)), "hashes")

    def core_reads() -> None:
        list(reader.events(N - 7000))
        list(reader.events(100, 227))  # a TUI window
        list(reader.messages(N - 7000))
        list(reader.messages(N - 300, None, type_prefix="counter/"))
        reader.event(N // 2)
        reader.snapshot_at_or_before(N - 50)
        reader.first_v(), reader.last_v(), reader.last_seq()
        store.hashes(KEY)
        store.state(KEY, N // 2)
        reader.counts()
        list(reader.worker_hashes(N - 4000))  # keyset pages on (v, worker), one of them mid-v
        reader.workers(), reader.worker_snapshots()

    statements = _captured(log, core_reads)
    assert len(statements) >= 14
    for sql, params in statements:
        if "FROM rdt_meta" in sql or "FROM recordings" in sql:
            continue
        _assert_index_plan(_plan(log, sql, params), sql)


def test_a_page_touches_a_page_of_rows_at_the_start_and_at_the_end(loaded):
    """Per-page work is the page, wherever it is: no page scans what is left of the log."""
    log, rid = loaded

    def rows_scanned(lo: int) -> int:
        with log.db.reading() as conn:
            doc = conn.exec_driver_sql(
                "EXPLAIN (ANALYZE, FORMAT JSON) " + log.db.event_payloads,
                (rid, lo, 2**62, PAYLOAD_PAGE),
            ).scalar_one()
        plan = doc[0]["Plan"] if isinstance(doc, list) else json.loads(doc)[0]["Plan"]
        while plan["Node Type"] == "Limit":
            plan = plan["Plans"][0]
        assert plan["Node Type"] == "Index Scan", plan["Node Type"]
        return plan["Actual Rows"]

    assert rows_scanned(1) == rows_scanned(N - PAYLOAD_PAGE - 5) == PAYLOAD_PAGE


def test_replaying_a_freshly_loaded_log_is_no_slower_per_page_at_its_end(loaded):
    """The pages of a whole walk: the last tenth take under 3× the first tenth (generous)."""
    log, rid = loaded
    reader = log.reader(rid)
    times: list[float] = []
    count = 0
    started = time.perf_counter()
    for page in reader.event_payload_pages():
        now = time.perf_counter()
        times.append(now - started)
        count += len(page)
        started = time.perf_counter()
    assert count == N
    tenth = max(1, len(times) // 10)
    first, last = sum(times[1 : tenth + 1]), sum(times[-tenth:])
    assert last < 3 * first + 0.05, (first, last)


def test_writers_bring_statistics_up_to_date(postgres_log):
    """An import (a writer's close) and a long recording (every so many rows) run ANALYZE."""
    from devtools.log_db import ANALYZE_FIRST
    from tests import factories as f

    def reltuples(log: Log, table: str) -> float:
        with log.engine.connect() as conn:
            return conn.exec_driver_sql(
                "SELECT reltuples FROM pg_class WHERE oid = %s::regclass", (table,)
            ).scalar_one()

    with Log.open(postgres_log, create=True) as log:
        with log.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE events SET (autovacuum_enabled = false)")
            conn.exec_driver_sql("ALTER TABLE messages SET (autovacuum_enabled = false)")
        assert reltuples(log, "events") < 0  # never analyzed
        writer = log.writer(name="long")
        events = f.counter_events(ANALYZE_FIRST + 10)
        for i in range(0, len(events), 1000):
            writer.add_events(events[i : i + 1000])
            writer.flush()
        deadline = time.monotonic() + 30  # while still recording, on the writer's side thread
        while reltuples(log, "events") < ANALYZE_FIRST and time.monotonic() < deadline:
            time.sleep(0.05)
        assert reltuples(log, "events") >= ANALYZE_FIRST
        assert reltuples(log, "messages") < 0  # not written, not analyzed
        writer.add_messages([f.message(s) for s in range(1, 200)])
        writer.close()
        assert reltuples(log, "messages") >= 100  # at close


def test_the_forced_plans_end_with_the_read(loaded):
    """The planner settings are the read's own (``SET LOCAL``): other sessions keep theirs."""
    log, rid = loaded
    with log.db.reading() as conn:
        assert conn.exec_driver_sql("SHOW enable_sort").scalar_one() == "off"
    with log.engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW enable_sort").scalar_one() == "on"
    pages = log.reader(rid).event_payload_pages()
    next(pages)
    pages.close()  # a walk left part way: its connection goes back as it came
    assert sum(len(p) for p in log.reader(rid).event_payload_pages()) == N
    with log.engine.connect() as conn:
        assert conn.exec_driver_sql("SHOW enable_sort").scalar_one() == "on"
        assert conn.connection.dbapi_connection.autocommit is False
    assert schema.FORMAT_VERSION == 1  # no schema change was needed
