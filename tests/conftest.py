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
