"""What recording several workers costs the recorder, per event, without sockets.

The same events, as a devtools link hands them over (parsed frames: event, cause, hash), go
into a recorder's session and queueing writer (a SQLite log, flushed at the end):

- baseline: one server's channel (``SessionReports``: the event and its hash);
- N workers: N reports of each event through ``WorkerMerge`` (one copy stored, every
  worker's hash a row, each report compared with the copy, the live rule decided).

Prints events/s of both and the ratio (what the recorder needs per event of a cluster of N
workers; the sockets, JSON parsing of N channels and the bus are on top of it).

    .venv/bin/python bench/workers.py [--events 50000] [--workers 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.canonical import state_hash  # noqa: E402
from recorder.devtools_link import SessionReports  # noqa: E402
from recorder.session import Session  # noqa: E402
from recorder.settings import RecorderSettings, Upstream  # noqa: E402
from recorder.workers import WorkerMerge  # noqa: E402
from recorder.writer import QueueingWriter  # noqa: E402

T0 = 1_795_420_800_000_000_000


def events(count: int) -> list[tuple[int, dict, dict, str]]:
    out = []
    for v in range(1, count + 1):
        event = {"type": "order/line-added", "order": f"o{v % 50}", "sku": "A", "qty": 1}
        event.update(price=500, v=v, ts=T0 + v, sender=f"c{v % 7}")
        out.append((v, event, {"connection": "r-1", "n": v}, state_hash({"v": v})))
    return out


async def record(path: str, feed: list, workers: int) -> float:
    from devtools.store import Log

    settings = RecorderSettings(Upstream("127.0.0.1", 1), path, "t", stderr=lambda _: None)
    opened: list = []

    def open_sink():
        log = Log.open(path, create=True)
        opened.append(log)
        return log.writer(name="bench")

    writer = QueueingWriter(open_sink)
    session = Session(replace(settings), writer.put, writer.put_message)
    await asyncio.to_thread(writer.start)
    if workers:
        merge = WorkerMerge(session)
        reports = [merge.add(f"ws://10.0.0.{i}:9000/devtools") for i in range(1, workers + 1)]
        for r in reports:
            r.snapshot(0, {}, state_hash({"v": 0}), join=True)
    else:
        reports = [SessionReports(session)]
    started = time.perf_counter()
    for v, event, cause, digest in feed:
        for r in reports:
            r.event(v, event, cause, digest)
        if v % 1000 == 0:
            await asyncio.sleep(0)  # the loop turns, as with sockets
    await asyncio.to_thread(writer.close)
    elapsed = time.perf_counter() - started
    for log in opened:
        log.close()
    return len(feed) / elapsed


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    feed = events(args.events)
    single, several = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            single.append(await record(f"{tmp}/one-{round_}.rdtlog", feed, 0))
            several.append(await record(f"{tmp}/many-{round_}.rdtlog", feed, args.workers))
    one, many = statistics.median(single), statistics.median(several)
    print(f"{args.events:,} events, median of {args.rounds} rounds")
    print(f"  one server's channel: {one:,.0f} events/s recorded")
    print(f"  {args.workers} workers merged:     {many:,.0f} events/s recorded")
    print(f"  ratio {many / one:.2f}x  ({args.workers} hash rows and comparisons per event)")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
