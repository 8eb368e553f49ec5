"""Fixtures shared by every suite: log targets on SQLite and, when configured, PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

POSTGRES_URL = os.environ.get("RDT_TEST_POSTGRES")
POSTGRES_SKIP_REASON = "RDT_TEST_POSTGRES is not set (CI sets it; see .ci/run)"


@pytest.fixture
def sqlite_log(tmp_path) -> str:
    """A path for a fresh SQLite log in the test's temporary folder."""
    return str(tmp_path / "test.rdtlog")


@pytest.fixture
def postgres_log() -> Iterator[str]:
    """A SQLAlchemy URL for a fresh, private PostgreSQL schema, dropped afterwards.

    Each test gets its own schema (through ``search_path``) so suites can run side by side.
    """
    if not POSTGRES_URL:
        pytest.skip(POSTGRES_SKIP_REASON)
    import sqlalchemy as sa

    schema = f"rdt_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def log_target(request) -> str:
    """Every store test runs on SQLite and, when ``RDT_TEST_POSTGRES`` is set, on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_log")
    return request.getfixturevalue("postgres_log")


NATS_URL = os.environ.get("RDT_TEST_NATS")
NATS_SKIP_REASON = "RDT_TEST_NATS is not set (CI sets it to the local NATS JetStream; see .ci/run)"


@pytest.fixture
def nats_stream() -> Iterator[tuple[str, str]]:
    """``(url, stream)``: the NATS server of ``RDT_TEST_NATS`` and a fresh JetStream stream name.

    The stream itself is created by whoever uses it first (a bus worker or the recorder) and
    deleted afterwards, so tests running side by side never share one.
    """
    if not NATS_URL:
        pytest.skip(NATS_SKIP_REASON)
    pytest.importorskip("nats", reason="nats-py is not installed (pip install -e '.[bus]')")
    stream = f"rdt_{uuid.uuid4().hex[:12]}"
    try:
        yield NATS_URL, stream
    finally:
        import asyncio

        import nats

        async def delete() -> None:
            client = await nats.connect(NATS_URL)
            try:
                await client.jetstream().delete_stream(stream)
            except Exception:  # never created, or already gone: nothing to clean up
                pass
            finally:
                await client.close()

        asyncio.run(delete())
