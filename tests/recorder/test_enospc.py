"""Disk full (ENOSPC injected into the SQLite writer): the recording survives, and every seq
that is not stored is covered by a gap record."""

from __future__ import annotations

import errno

import pytest
import websockets

from devtools.store import Log
from recorder.app import start_recorder
from tests.recorder.conftest import settings_for

pytestmark = pytest.mark.timeout(60)


async def test_enospc_leaves_the_recording_and_covers_every_lost_seq_with_a_gap(
    echo_server, sqlite_log
):
    async with await start_recorder(settings_for(echo_server.port, sqlite_log)) as handle:
        sink = handle.writer._sink  # the real LogWriter on the real SQLite file
        real_write = sink._write
        full = {"on": False}

        def write(cursor, batch):
            if full["on"]:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_write(cursor, batch)

        sink._write = write
        async with websockets.connect(handle.url, proxy=None) as ws:
            for phase in ("before", "full", "after"):
                full["on"] = phase == "full"
                for i in range(50):
                    await ws.send(f'{{"type":"{phase}","i":{i}}}')
                    await ws.recv()
                await handle.flush()
        assert handle.writer.lost > 0
    with Log.open(sqlite_log) as log:
        (recording,) = log.recordings()
        reader = log.reader()
        seqs = {m.seq for m in reader.messages()}
        gaps = [g for g in reader.gaps() if g.kind == "messages"]
    covered = set().union(*(range(g.start, g.end + 1) for g in gaps))
    assert gaps and all("ENOSPC" in g.reason or "store unavailable" in g.reason for g in gaps)
    assert seqs | covered == set(range(1, 301)) and not seqs & covered
    assert {m for m in range(1, 101)} <= seqs and set(range(201, 301)) <= seqs
