"""Proxy benchmark: direct vs a minimal websockets relay vs `rdt record`, one run, one echo server.

Usage:
    .venv/bin/python bench/proxy.py [--messages 20000] [--size 200] [--rounds 3]

The echo server, the relay and the recorder each run in their own process; this process is the
client. For each path it measures sequential round trips (p50/p99) and pipelined throughput
(msg/s), then prints the medians, each round's throughput ratio, and the ratios. Bars
(DESIGN.md §5): the recorder's added p50 is at most the relay's, its pipelined throughput at least
the relay's, and every message is in its log (counted after a clean stop). Exit 1 when a bar
fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import websockets

from devtools.tasks import spawn

PY = sys.executable
ROOT = Path(__file__).resolve().parent.parent

ECHO = """
import asyncio, sys
from websockets.asyncio.server import serve
async def echo(ws):
    async for m in ws:
        await ws.send(m)
async def main():
    async with serve(echo, "127.0.0.1", 0, compression=None, max_size=None) as s:
        print(s.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()
asyncio.run(main())
"""

RELAY = """
import asyncio, sys
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
UP = sys.argv[1]
async def pump(a, b):
    async for m in a:
        await b.send(m)
async def handler(client):
    async with connect(UP, compression=None, proxy=None, max_size=None) as up:
        t1 = asyncio.create_task(pump(client, up))
        t2 = asyncio.create_task(pump(up, client))
        done, pending = await asyncio.wait({t1, t2}, return_when=asyncio.FIRST_COMPLETED)
        for t in pending:
            t.cancel()
async def main():
    async with serve(handler, "127.0.0.1", 0, compression=None, max_size=None) as s:
        print(s.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()
asyncio.run(main())
"""


def start(args: list[str]) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def start_recorder(upstream: str, log: str) -> tuple[subprocess.Popen, int]:
    env = dict(os.environ, RDT_TOKEN="bench")
    proc = subprocess.Popen(
        [
            PY,
            "-c",
            "from devtools.cli import main; main()",
            "record",
            "--upstream",
            upstream,
            "--listen",
            "127.0.0.1:0",
            "--control",
            "127.0.0.1:0",
            "--log",
            log,
            "--name",
            "bench",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("listening on "):
            return proc, int(line.strip().rsplit(":", 1)[1].rstrip("/"))
    raise SystemExit("recorder did not start")


async def measure(url: str, messages: int, size: int) -> tuple[float, float, float]:
    """(p50 µs, p99 µs, pipelined msg/s) over one connection."""
    body = '{"type":"bench","pad":"' + "x" * max(0, size - 28) + '","i":%d}'
    async with websockets.connect(url, compression=None, proxy=None, max_size=None) as ws:
        for i in range(300):  # warm-up
            await ws.send(body % i)
            await ws.recv()
        times = []
        clock = time.perf_counter_ns
        for i in range(messages):
            data = body % i
            start = clock()
            await ws.send(data)
            await ws.recv()
            times.append(clock() - start)
        times.sort()
        p50 = times[len(times) // 2] / 1000
        p99 = times[int(len(times) * 0.99)] / 1000

        async def sender() -> None:
            for i in range(messages):
                await ws.send(body % i)

        start = time.perf_counter()
        task = spawn(sender(), "bench-sender")
        for _ in range(messages):
            await ws.recv()
        await task
        rate = messages / (time.perf_counter() - start)
    return p50, p99, rate


def count_messages(log: str) -> int:
    sys.path.insert(0, str(ROOT))
    from devtools.store import Log

    with Log.open(log) as opened:
        return opened.reader().counts().messages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="repeat and keep the median")
    args = parser.parse_args()
    n = args.messages

    echo, echo_port = start([PY, "-c", ECHO])
    upstream = f"ws://127.0.0.1:{echo_port}"
    relay, relay_port = start([PY, "-c", RELAY, upstream])
    tmp = tempfile.mkdtemp(prefix="rdt-bench-")
    log = os.path.join(tmp, "bench.rdtlog")
    recorder, rec_port = start_recorder(upstream, log)
    paths = {
        "direct": f"ws://127.0.0.1:{echo_port}/",
        "relay": f"ws://127.0.0.1:{relay_port}/",
        "recorder": f"ws://127.0.0.1:{rec_port}/",
    }
    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in paths}
    try:
        for _ in range(args.rounds):
            for name, url in paths.items():
                results[name].append(asyncio.run(measure(url, n, args.size)))
    finally:
        recorder.send_signal(signal.SIGTERM)
        recorder.wait(60)
        relay.terminate()
        echo.terminate()
    recorded = count_messages(log)
    expected = args.rounds * 2 * (300 + 2 * n)

    med = {
        name: tuple(statistics.median(r[i] for r in rows) for i in range(3))
        for name, rows in results.items()
    }
    d50, d99, drate = med["direct"]
    print(f"proxy benchmark: {n} messages of ~{args.size} bytes, median of {args.rounds} rounds")
    print(f"{'path':<10}{'p50 µs':>10}{'p99 µs':>10}{'added p50':>11}{'msg/s':>10}")
    for name, (p50, p99, rate) in med.items():
        print(f"{name:<10}{p50:>10.1f}{p99:>10.1f}{p50 - d50:>+11.1f}{rate:>10.0f}")
    # Per round (same load for the two paths, measured back to back): the spread of the ratio.
    ratios = [
        rec[2] / rel[2] for rel, rec in zip(results["relay"], results["recorder"], strict=True)
    ]
    for i, (rel, rec) in enumerate(zip(results["relay"], results["recorder"], strict=True), 1):
        print(
            f"round {i}: direct {results['direct'][i - 1][2]:.0f}  relay {rel[2]:.0f}  "
            f"recorder {rec[2]:.0f} msg/s  recorder/relay {rec[2] / rel[2]:.2f}"
        )
    print(f"recorder/relay msg/s per round: min {min(ratios):.2f}, max {max(ratios):.2f}")
    relay_added = med["relay"][0] - d50
    rec_added = med["recorder"][0] - d50
    lat_ratio = rec_added / relay_added if relay_added > 0 else float("inf")
    thr_ratio = med["recorder"][2] / med["relay"][2]
    print(f"recorder added p50 / relay added p50: {lat_ratio:.2f} (bar <= 1.00)")
    print(f"recorder msg/s / relay msg/s: {thr_ratio:.2f} (bar >= 1.00)")
    print(f"recorded messages: {recorded} of {expected} forwarded")
    ok = rec_added <= relay_added and thr_ratio >= 1.0 and recorded == expected
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
