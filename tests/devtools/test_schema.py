"""The log schema: one MetaData, composite keys, payloads as bytes, a format marker."""

from __future__ import annotations

import sqlalchemy as sa

from devtools import schema


def test_every_table_is_on_one_metadata():
    names = set(schema.metadata.tables)
    assert names == {
        "rdt_meta",
        "recordings",
        "connections",
        "messages",
        "events",
        "snapshots",
        "marks",
        "gaps",
        "checkpoints",
        "workers",
        "worker_hashes",
        "worker_snapshots",
    }


def test_per_recording_numbers_are_composite_primary_keys():
    def pk(table: sa.Table) -> list[str]:
        return [c.name for c in table.primary_key.columns]

    assert pk(schema.messages) == ["recording_id", "seq"]
    assert pk(schema.events) == ["recording_id", "v"]
    assert pk(schema.snapshots) == ["recording_id", "v"]
    assert pk(schema.connections) == ["recording_id", "id"]
    assert pk(schema.checkpoints) == ["recording_id", "key", "v"]
    assert pk(schema.workers) == ["recording_id", "worker"]
    assert pk(schema.worker_hashes) == ["recording_id", "v", "worker"]
    assert pk(schema.worker_snapshots) == ["recording_id", "v", "worker"]


def test_payloads_are_bytes_columns():
    for column in (
        schema.messages.c.payload,
        schema.events.c.event,
        schema.snapshots.c.state,
        schema.checkpoints.c.state,
    ):
        assert isinstance(column.type, sa.LargeBinary)


def test_driver_level_column_lists_match_the_tables():
    assert set(schema.MESSAGE_COLUMNS) == set(schema.messages.c.keys())
    assert set(schema.EVENT_COLUMNS) == set(schema.events.c.keys())
    assert set(schema.WORKER_HASH_COLUMNS) == set(schema.worker_hashes.c.keys())


def test_schema_creates_on_sqlite_and_reads_by_type_index(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    schema.metadata.create_all(engine)
    indexes = {ix["name"] for ix in sa.inspect(engine).get_indexes("messages")}
    assert "ix_messages_type" in indexes
    assert schema.FORMAT_VERSION == 1
    engine.dispose()
