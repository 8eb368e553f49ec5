"""Several workers of one service in this process, as a recorder of several workers sees them.

Each worker is a :class:`devtools.server.ReducerServer` with its own reducer, version and worker
id (in its hello's ``server``) and the same deterministic clock; :meth:`Cluster.send` gives every
worker the same client message in the same order — through the recorder's proxy for worker 1
(the upstream), straight for the others — so they emit the same events with the same ``v``,
exactly what workers folding one bus look like to the recorder. A drifted worker (the buggy
sales-order reducer) then reports another state hash from the first event its bug touches.

Shared by the recorder, replayer and TUI suites (one place, as :mod:`tests.factories`).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import websockets

from devtools import jsonutil, protocol
from devtools.server import ReducerServer
from recorder.app import RecorderHandle, start_recorder
from samples import sales_order, sales_order_buggy
from tests.factories import T0

TOKEN = "test-token"

BUG_TRAFFIC: tuple[dict[str, Any], ...] = (
    {"type": "order/create", "customer": "ACME"},
    {"type": "order/create", "customer": "Globex"},
    {"type": "order/add-line", "order": "o2", "sku": "B", "qty": 2, "price": 250},
    {"type": "order/add-line", "order": "o1", "sku": "A", "qty": 1, "price": 500},
    {"type": "order/add-line", "order": "o1", "sku": "A", "qty": 1, "price": 500},
    {"type": "order/remove-line", "order": "o1", "sku": "A"},
    {"type": "order/add-line", "order": "o2", "sku": "C", "qty": 1, "price": 100},
)
"""Seven events; the buggy reducer first differs at the sixth (``order/line-removed``)."""
BUG_V = 6
"""Where the buggy worker's state first differs from the others'."""


def clock(start: int = T0) -> Callable[[], int]:
    """A deterministic clock: ``start``, then 1 µs later at each call."""
    ticks = itertools.count()
    return lambda: start + 1000 * next(ticks)


class Worker(ReducerServer):
    """A reference server whose hello names its worker id (``server.worker``)."""

    def __init__(self, *args: Any, worker: str, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.worker = worker

    def _enqueue(self, peer: Any, data: bytes) -> None:
        if data.startswith(b'{"type":"' + protocol.HELLO.encode() + b'"'):
            hello = jsonutil.loads(data)
            hello["server"]["worker"] = self.worker
            data = jsonutil.dumps(hello)
        super()._enqueue(peer, data)


@dataclass(frozen=True, slots=True)
class Spec:
    """One worker: its reducer module, version and id."""

    module: Any
    version: str
    worker: str
    skew: int = 0
    """Nanoseconds its clock is ahead: its events' ``ts`` (so the event objects) differ."""


GOOD_GOOD_BUGGY = (
    Spec(sales_order, "1.0", "w-a"),
    Spec(sales_order, "1.0.1", "w-b"),
    Spec(sales_order_buggy, "1.0-buggy", "w-c"),
)
ALL_GOOD = (
    Spec(sales_order, "1.0", "w-a"),
    Spec(sales_order, "1.0.1", "w-b"),
    Spec(sales_order, "1.0.2", "w-c"),
)


class Cluster:
    """Running workers, a recorder of all of them, and clients that talk to each."""

    def __init__(self, handles: list[Any], recorder: RecorderHandle) -> None:
        self.handles = handles
        self.recorder = recorder
        self._clients: list[Any] = []

    @property
    def servers(self) -> list[ReducerServer]:
        return [handle.app for handle in self.handles]

    async def connect(self) -> None:
        """One client per worker (worker 1's through the recorder's proxy)."""
        urls = [self.recorder.url] + [handle.url for handle in self.handles[1:]]
        for url in urls:
            self._clients.append(await websockets.connect(url, proxy=None))

    async def send(self, messages: Sequence[dict[str, Any]]) -> None:
        """Each message to every worker, waiting until every worker has taken it."""
        for message in messages:
            before = [server.v for server in self.servers]
            for client in self._clients:
                await client.send(jsonutil.dumps(message).decode())
            async with asyncio.timeout(10):
                while any(s.v == b for s, b in zip(self.servers, before, strict=True)):
                    await asyncio.sleep(0.005)

    async def settle(self, v: int) -> None:
        """Wait until the recorder has every worker's report of ``v`` (and its log has it)."""
        merge = self.recorder.merge
        assert merge is not None
        async with asyncio.timeout(10):
            while merge.reported_to(v) < len(self.handles):
                await asyncio.sleep(0.01)
        await self.recorder.flush()

    async def close(self) -> None:
        for client in self._clients:
            await client.close()
        await self.recorder.close()
        for handle in self.handles:
            await handle.close()


async def start_workers(specs: Sequence[Spec]) -> list[Any]:
    """The workers alone, serving on ephemeral ports (their handles, worker 1 first)."""
    handles = []
    for spec in specs:
        app = Worker(
            spec.module.reducer,
            spec.module.MIDDLEWARE,
            name="sales-order",
            version=spec.version,
            token=TOKEN,
            clock=clock(T0 + spec.skew),
            worker=spec.worker,
        )
        handles.append(await app.serve("127.0.0.1", 0))
    return handles


async def start_cluster(
    log: str, specs: Sequence[Spec] = GOOD_GOOD_BUGGY, **settings: Any
) -> Cluster:
    """Start the workers and a recorder of all of them (joined), clients connected."""
    from tests.recorder.conftest import settings_for

    handles = await start_workers(specs)
    base = settings_for(
        handles[0].port,
        log,
        devtools_path="/devtools",
        devtools_urls=tuple(handle.devtools_url for handle in handles[1:]),
    )
    recorder = await start_recorder(replace(base, **settings))
    await recorder.wait_joined()
    cluster = Cluster(handles, recorder)
    await cluster.connect()
    return cluster
