"""Throughput of the reference reducer server vs a minimal websockets JSON echo server.

Both servers get the same load: CLIENTS connections, each pipelining MESSAGES valid
``order/add-line`` commands, waiting for one reply per command. The runtime additionally runs
the sales-order middleware and reducer, broadcasts each event to every client and streams it
(with a state hash every event) to one devtools subscriber. Prints msg/s of both and the ratio.

Run: .venv/bin/python bench/server.py [MESSAGES]
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

from devtools.tasks import spawn
from devtools.tokens import bearer_header
from samples import sales_order

CLIENTS = 4


async def _load(url: str, messages: int, replies_per_message: int, order: str | None) -> float:
    async def client(i: int) -> None:
        async with connect(url, proxy=None, max_size=None) as ws:
            target = order or f"o{i}"
            payload = json.dumps(
                {"type": "order/add-line", "order": target, "sku": "A", "qty": 1, "price": 1}
            )

            async def reader() -> None:
                for _ in range(messages * replies_per_message):
                    await ws.recv()

            task = spawn(reader(), "bench-reader")
            for _ in range(messages):
                await ws.send(payload)
            await task

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(CLIENTS)))
    return CLIENTS * messages / (time.perf_counter() - started)


async def baseline(messages: int) -> float:
    async def echo(ws) -> None:
        async for raw in ws:
            ws_message = json.loads(raw)
            await ws.send(json.dumps({"type": "ok", "echo": ws_message["type"]}))

    async with serve(echo, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        return await _load(f"ws://127.0.0.1:{port}/", messages, 1, None)


async def runtime(messages: int) -> float:
    app = sales_order.make_server(token="bench", hash_every=1, queue_size=10**6)
    async with await app.serve() as h:
        async with connect(h.url) as ws:
            await ws.send(json.dumps({"type": "order/create", "customer": "bench"}))
            order = json.loads(await ws.recv())["id"]
        dt = await connect(h.devtools_url, additional_headers=bearer_header("bench"))
        await dt.send(json.dumps({"type": "@@devtools/subscribe"}))

        async def drain() -> None:
            async for _ in dt:
                pass

        drainer = spawn(drain(), "bench-drain")
        rate = await _load(h.url, messages, CLIENTS, order)  # each event reaches every client
        await dt.close()
        await drainer
    return rate


def main() -> None:
    messages = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    base = asyncio.run(baseline(messages))
    ours = asyncio.run(runtime(messages))
    print(f"baseline echo server: {base:,.0f} msg/s")
    print(
        f"reducer runtime (sales-order, broadcast x{CLIENTS}, devtools stream, hash every event): "
        f"{ours:,.0f} msg/s"
    )
    print(f"ratio runtime/baseline: {ours / base:.2f}")


if __name__ == "__main__":
    main()
