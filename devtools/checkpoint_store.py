"""The replayer's checkpoint cache: a table of the log, one recording's rows at a time.

A checkpoint is the state after event ``v`` for one reducer ``key`` (JSON bytes and its
hash). :meth:`devtools.log_reader.LogReader.checkpoint_store` hands one out; the replayer reads
the hashes and states through it and writes new ones from its checkpoint-writer thread (each
call takes a connection of its own, so it is safe from any thread).
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from devtools import schema
from devtools.log_db import LogDb

__all__ = ["CheckpointStore"]

_COLUMNS = ("recording_id", "key", "v", "state", "hash")


class CheckpointStore:
    """Reads and writes the checkpoints of one recording."""

    def __init__(self, db: LogDb, recording_id: int) -> None:
        self.db = db
        self.recording_id = recording_id
        self._insert = db.insert(schema.checkpoints, _COLUMNS, ignore=True)

    def hashes(self, key: str) -> list[tuple[int, str]]:
        """The cached checkpoints ``(v, hash)`` for reducer ``key``, by ``v``."""
        t = schema.checkpoints
        query = (
            sa.select(t.c.v, t.c.hash)
            .where(t.c.recording_id == self.recording_id, t.c.key == key)
            .order_by(t.c.recording_id, t.c.key, t.c.v)
        )
        with self.db.reading() as conn:
            return [(row.v, row.hash) for row in conn.execute(query)]

    def state(self, key: str, v: int) -> bytes | None:
        """The cached state (JSON bytes) after event ``v`` for reducer ``key``."""
        t = schema.checkpoints
        query = sa.select(t.c.state).where(
            t.c.recording_id == self.recording_id, t.c.key == key, t.c.v == v
        )
        with self.db.reading() as conn:
            row = conn.execute(query).first()
        return None if row is None else bytes(row[0])

    def save(self, key: str, rows: Iterable[tuple[int, bytes, str]]) -> None:
        """Cache ``(v, state JSON bytes, hash)`` rows for ``key``; existing ``v`` are kept."""
        batch = [(self.recording_id, key, v, bytes(state), h) for v, state, h in rows]
        if not batch:
            return
        with self.db.connect(write=True) as conn:
            conn.exec_driver_sql(self._insert, batch)
            conn.commit()
