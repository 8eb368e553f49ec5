"""Traffic replay benchmark: `rdt replay-traffic --pace fast` vs a hand-written websockets client.

Usage:
    .venv/bin/python bench/traffic.py [--messages 10000] [--connections 10] [--rounds 7]

One echo server (websockets, permessage-deflate as it comes) runs in its own process. A
recording of ``--messages`` JSON client frames spread round robin over ``--connections``
connections (each answered by its echo, each connection's handshake facts as ``rdt record``
keeps a websockets client's) is written to a temporary log. Each round then sends the same
frames to the same server four times — hand, replay, replay, hand, so that a drift in the
machine's load hits both alike: the hand-written client opens one websockets connection per
recorded connection (websockets' defaults, as a user would write it), sends the frames in the
recorded order as fast as it can and is done when every echo is back and the connections are
closed; :class:`recorder.traffic_replay.TrafficReplay` in ``fast`` pace does the same and
records every frame both ways into a new SQLite log, opened, written, flushed and closed before
its clock stops. Each round prints both rates, the CPU seconds used by this process and by the
server, and the ratio of the rates; the bar (DESIGN.md §5, issue #15) is the median ratio
≥ 0.8. Exit 1 when it fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect
from websockets.http11 import USER_AGENT

from devtools.model import Connection, Message
from devtools.store import Log
from devtools.tasks import spawn
from recorder.replay_plan import build_plan
from recorder.traffic_replay import ReplaySettings, TrafficReplay, parse_target

PY = sys.executable
ROOT = Path(__file__).resolve().parent.parent

ECHO = """
import asyncio, sys
from websockets.asyncio.server import serve
async def echo(ws):
    async for m in ws:
        await ws.send(m)
async def main():
    async with serve(echo, "127.0.0.1", 0, max_size=None) as server:
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()
asyncio.run(main())
"""


def write_recording(path: str, messages: int, connections: int) -> None:
    """A recording of ``messages`` JSON frames round robin over ``connections``, each echoed."""
    with Log.open(path, create=True) as log:
        writer = log.writer(name="bench", started_ns=1)
        for c in range(1, connections + 1):
            facts = {  # as `rdt record` keeps a websockets client's upgrade
                "target": f"/c{c}",
                "origin": None,
                "user_agent": USER_AGENT,
                "subprotocols": [],
                "extensions": "permessage-deflate; client_max_window_bits",
                "headers": [
                    ["Host", "127.0.0.1:8765"],
                    ["Upgrade", "websocket"],
                    ["Connection", "Upgrade"],
                    ["Sec-WebSocket-Version", "13"],
                    ["Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"],
                    ["User-Agent", USER_AGENT],
                ],
            }
            writer.add_connection(
                Connection(c, "127.0.0.1:1", f"/c{c}", opened_ns=c, handshake=facts)
            )
        rows = []
        seq = 0
        for i in range(messages):
            c = i % connections + 1
            payload = (
                b'{"type":"order/add-line","order":"o%d","sku":"apple","qty":%d,"price":150}'
                % (
                    c,
                    i,
                )
            )
            seq += 1
            rows.append(Message(seq, c, "in", 100 + seq, "order/add-line", payload))
            seq += 1
            rows.append(Message(seq, c, "out", 100 + seq, "order/add-line", payload))
        writer.add_messages(rows)
        for c in range(1, connections + 1):
            writer.close_connection(c, closed_ns=10**9 + seq, code=1000, reason=None)
        writer.close(ended_ns=10**9 + seq + 1)


async def hand_client(
    port: int, frames: list[tuple[int, str, bytes]], paths: dict[int, str]
) -> float:
    """Send ``frames`` (connection, path, payload) in order; seconds until all echoes are back."""
    started = time.perf_counter()
    conns = {c: await connect(f"ws://127.0.0.1:{port}{p}", proxy=None) for c, p in paths.items()}
    expected = {c: 0 for c in conns}
    for c, _, _ in frames:
        expected[c] += 1

    async def read(c: int) -> None:
        ws = conns[c]
        for _ in range(expected[c]):
            await ws.recv()

    readers = [spawn(read(c), f"bench-read-{c}") for c in conns]
    for c, _, payload in frames:
        await conns[c].send(payload, text=True)
    await asyncio.gather(*readers)
    for ws in conns.values():
        await ws.close()
    return time.perf_counter() - started


async def replay(port: int, plan, log: str) -> tuple[float, int]:
    settings = ReplaySettings(
        target=parse_target(f"ws://127.0.0.1:{port}"), log=log, pace="fast", stderr=lambda _: None
    )
    started = time.perf_counter()
    result = await TrafficReplay(plan, settings).run()
    elapsed = time.perf_counter() - started
    if result.problems or result.sent != plan.frames:
        raise SystemExit(f"replay went wrong: {result.problems[:3]}, sent {result.sent}")
    return elapsed, result.received


def _server_cpu(pid: int) -> float | None:
    """CPU seconds the server process has used (Linux; ``None`` elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _timed(work: Any, pid: int) -> tuple[Any, float, float]:
    """Run ``work``; its result and the CPU seconds used here and by the server meanwhile
    (``nan`` where the server's cannot be read)."""
    server_before, before = _server_cpu(pid), time.process_time()
    result = asyncio.run(work)
    here = time.process_time() - before
    server_after = _server_cpu(pid)
    if server_before is None or server_after is None:
        return result, here, float("nan")
    return result, here, server_after - server_before


def _mean(values: list[float]) -> str:
    return f"{sum(values) / len(values):.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    server = subprocess.Popen([PY, "-c", ECHO], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        port = int(server.stdout.readline())
        with tempfile.TemporaryDirectory() as tmp:
            source = os.path.join(tmp, "source.rdtlog")
            write_recording(source, args.messages, args.connections)
            with Log.open(source) as log:
                reader = log.reader()
                conns = reader.connections()
                plan = build_plan(conns, reader.messages())
            paths = {c.id: c.path for c in conns}
            frames = [
                (s.connection, paths[s.connection], s.payload)
                for s in plan.steps
                if s.kind == "send"
            ]
            hand_rates, replay_rates, ratios = [], [], []
            for r in range(args.rounds):
                # hand, replay, replay, hand: a drift in the machine's load hits both alike
                hand = replay_took = 0.0
                here_cpu: dict[str, list[float]] = {"hand": [], "replay": []}
                server_cpu: dict[str, list[float]] = {"hand": [], "replay": []}
                for n, who in enumerate(("hand", "replay", "replay", "hand")):
                    log = os.path.join(tmp, f"run{r}-{n}.rdtlog")
                    work = (
                        hand_client(port, frames, paths)
                        if who == "hand"
                        else replay(port, plan, log)
                    )
                    result, here, there = _timed(work, server.pid)
                    here_cpu[who].append(here)
                    server_cpu[who].append(there)
                    if who == "hand":
                        hand += result
                        continue
                    replay_took += result[0]
                    with Log.open(log) as opened:
                        recorded = opened.reader().counts().messages
                    assert recorded == 2 * args.messages, recorded
                hand_rate, replay_rate = 2 * len(frames) / hand, 2 * len(frames) / replay_took
                hand_rates.append(hand_rate)
                replay_rates.append(replay_rate)
                ratios.append(replay_rate / hand_rate)
                print(
                    f"round {r + 1}: hand client {hand_rate:,.0f} msg/s (cpu "
                    f"{_mean(here_cpu['hand'])} s, server {_mean(server_cpu['hand'])} s), "
                    f"replay-traffic fast {replay_rate:,.0f} msg/s (cpu "
                    f"{_mean(here_cpu['replay'])} s, server {_mean(server_cpu['replay'])} s, "
                    f"{recorded} frames recorded), ratio {ratios[-1]:.2f}"
                )
    finally:
        server.terminate()
        server.wait()
    ratio = statistics.median(ratios)
    print(
        f"median: hand {statistics.median(hand_rates):,.0f} msg/s, replay "
        f"{statistics.median(replay_rates):,.0f} msg/s, ratio {ratio:.2f} (bar ≥ 0.80)"
    )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0 if ratio >= 0.8 else 1


if __name__ == "__main__":
    sys.exit(main())
