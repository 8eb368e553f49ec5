"""The log's tables: every SQLAlchemy Core ``Table`` on one ``MetaData``.

One schema serves SQLite (the embedded default) and PostgreSQL. Payloads (frames, event
objects, states) are bytes (``BLOB`` / ``bytea``): PostgreSQL ``text``/``jsonb`` refuse NUL
characters and would not keep a frame byte for byte. Per-recording numbers (``seq``, ``v``,
connection ids) form composite primary keys with ``recording_id``, so reading by ``seq``/``v``
is an index range scan. ``rdt_meta`` holds the app marker and the format version; a database
without it is not an rdt log. The schema is documented in ``docs/SCHEMA.md``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
)

FORMAT_VERSION = 1
"""The log format this rdt writes; logs with a higher number are refused (please update)."""

APP_MARKER = "rdt"
"""The value of ``rdt_meta.app``: tells an rdt log from any other database."""

EVENTS_FROM = "events_from"
"""The key of a recording's ``server`` JSON that says where its events came from when not from
a devtools channel: ``"inbound"`` (derived from client messages by ``rdt record --events-from
inbound``) or ``"table"`` (pulled from a database table by ``rdt import-events``). Absent: the
events are the server's own (devtools channel, or an interchange import)."""

metadata = MetaData()

meta = Table(
    "rdt_meta",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)
"""Key/value pairs: ``app`` (= ``rdt``) and ``format`` (the format version, as text)."""

recordings = Table(
    "recordings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False),
    Column("started_ns", BigInteger, nullable=False),
    Column("ended_ns", BigInteger),
    Column("upstream", Text),
    Column("server", LargeBinary),  # JSON bytes of {"name", "version", ...} or NULL
    Column("format", Integer, nullable=False, default=FORMAT_VERSION),
)

connections = Table(
    "connections",
    metadata,
    Column("recording_id", Integer, nullable=False),
    Column("id", BigInteger, nullable=False),
    Column("peer", Text, nullable=False),
    Column("path", Text, nullable=False),
    Column("origin", Text, nullable=False),  # client | injected | devtools
    Column("opened_ns", BigInteger, nullable=False),
    Column("closed_ns", BigInteger),
    Column("close_code", Integer),
    Column("close_reason", Text),
    Column("handshake", LargeBinary),  # JSON bytes of the upgrade's facts, or NULL
    PrimaryKeyConstraint("recording_id", "id"),
)

messages = Table(
    "messages",
    metadata,
    Column("recording_id", Integer, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("connection", BigInteger, nullable=False),
    Column("direction", Text, nullable=False),  # in | out
    Column("t_ns", BigInteger, nullable=False),
    Column("type", Text),
    Column("payload", LargeBinary, nullable=False),  # the frame's bytes, exactly as forwarded
    Column("is_binary", Boolean, nullable=False),
    Column("flag", Text),  # why the frame is not a valid message, NULL when it is
    Column("size", BigInteger, nullable=False),  # forwarded length; -1: len(payload)
    PrimaryKeyConstraint("recording_id", "seq"),
)
Index("ix_messages_type", messages.c.recording_id, messages.c.type)

events = Table(
    "events",
    metadata,
    Column("recording_id", Integer, nullable=False),
    Column("v", BigInteger, nullable=False),
    Column("type", Text, nullable=False),
    Column("event", LargeBinary, nullable=False),  # the event object's JSON bytes
    Column("cause_seq", BigInteger),
    Column("hash", Text),
    Column("t_ns", BigInteger, nullable=False),
    PrimaryKeyConstraint("recording_id", "v"),
)
Index("ix_events_type", events.c.recording_id, events.c.type)

snapshots = Table(
    "snapshots",
    metadata,
    Column("recording_id", Integer, nullable=False),
    Column("v", BigInteger, nullable=False),
    Column("state", LargeBinary, nullable=False),  # the state's JSON bytes
    Column("hash", Text),
    Column("t_ns", BigInteger, nullable=False),
    PrimaryKeyConstraint("recording_id", "v"),
)

marks = Table(
    "marks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("recording_id", Integer, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("label", Text, nullable=False),
    Column("t_ns", BigInteger, nullable=False),
)
Index("ix_marks_seq", marks.c.recording_id, marks.c.seq)

gaps = Table(
    "gaps",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("recording_id", Integer, nullable=False),
    Column("kind", Text, nullable=False),  # messages (a seq range) | events (a v range)
    Column("range_start", BigInteger, nullable=False),
    Column("range_end", BigInteger, nullable=False),
    Column("reason", Text, nullable=False),
    Column("t_ns", BigInteger, nullable=False),
)
Index("ix_gaps_recording", gaps.c.recording_id, gaps.c.range_start)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("recording_id", Integer, nullable=False),
    Column("key", Text, nullable=False),  # which reducer (and version) produced the states
    Column("v", BigInteger, nullable=False),
    Column("state", LargeBinary, nullable=False),  # the state's JSON bytes after event v
    Column("hash", Text, nullable=False),
    PrimaryKeyConstraint("recording_id", "key", "v"),
)
"""The replayer's cache of states; safe to delete, rebuilt on demand."""

workers = Table(
    "workers",
    metadata,
    Column("recording_id", Integer, nullable=False),
    Column("worker", Integer, nullable=False),  # 1, 2, 3 … in the order the channels were given
    Column("worker_id", Text),  # the hello's server.worker, when sent
    Column("url", Text),  # the devtools channel (a password in it masked)
    Column("name", Text),
    Column("version", Text),
    Column("server", LargeBinary),  # JSON bytes of the hello's whole server object, or NULL
    PrimaryKeyConstraint("recording_id", "worker"),
)
"""The workers of a recording of several (``rdt record --devtools URL …``); none otherwise."""

worker_hashes = Table(
    "worker_hashes",
    metadata,
    Column("recording_id", Integer, nullable=False),
    Column("v", BigInteger, nullable=False),
    Column("worker", Integer, nullable=False),
    Column("hash", Text),  # the worker's state hash after event v (NULL: sent without one)
    Column("event", LargeBinary),  # JSON bytes of its event object when it differed, else NULL
    PrimaryKeyConstraint("recording_id", "v", "worker"),
)
"""Each worker's state hash after each event: ``(v, worker)`` is the key's order, so the
workers' reports of one event are neighbours and a walk by ``v`` is a key range."""

worker_snapshots = Table(
    "worker_snapshots",
    metadata,
    Column("recording_id", Integer, nullable=False),
    Column("v", BigInteger, nullable=False),
    Column("worker", Integer, nullable=False),
    Column("state", LargeBinary, nullable=False),  # the worker's state's JSON bytes after v
    Column("hash", Text),
    Column("t_ns", BigInteger, nullable=False),
    PrimaryKeyConstraint("recording_id", "v", "worker"),
)
"""Workers' own states: join snapshots, and those asked for when a worker disagreed."""

OPTIONAL_TABLES = ("checkpoints", "workers", "worker_hashes", "worker_snapshots")
"""Tables an existing log may lack (the cache, and tables added later): created on open."""

WORKER_HASH_COLUMNS = ("recording_id", "v", "worker", "hash", "event")
"""Column order of the driver-level worker-hash insert."""

MESSAGE_COLUMNS = (
    "recording_id",
    "seq",
    "connection",
    "direction",
    "t_ns",
    "type",
    "payload",
    "is_binary",
    "flag",
    "size",
)
"""Column order of the driver-level message insert (and of the benchmark's raw baseline)."""

EVENT_COLUMNS = ("recording_id", "v", "type", "event", "cause_seq", "hash", "t_ns")
"""Column order of the driver-level event insert."""
