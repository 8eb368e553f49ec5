"""Realistic, seeded traffic for the sample servers, and an offline-first burst.

``run_traffic`` opens ``clients`` concurrent connections; each sends ``messages`` commands drawn
from a seeded random generator that keeps a model of what that client created, so nearly every
command is valid and a few (about 1 in 12) are deliberately invalid so error replies appear.
With ``offline_burst=N`` one more client creates what it needs online, disconnects, queues N
valid actions "offline", reconnects and sends them all at once, then reads the replies.

Every client ends with a query (``order/list`` / ``list/query``) and waits for its answer; since
a server answers one connection in order, by then every reply to that client has arrived.
The whole run is bounded by ``timeout`` seconds.
"""

from __future__ import annotations

import abc
import asyncio
import random
import time
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from devtools import jsonutil
from devtools.errors import BadInput
from devtools.tasks import spawn

SAMPLES = ("sales-order", "sales-order-buggy", "shopping-list")
SKUS = ("apple", "pear", "plum", "kiwi", "fig", "lime", "date")
ITEMS = ("milk", "bread", "eggs", "rice", "tea", "soap", "salt", "oats", "jam", "beans")


@dataclass(frozen=True, slots=True)
class TrafficStats:
    """What a traffic run did."""

    sent: int
    """Messages sent by all clients (queries and the burst included)."""
    received: int
    """Frames received by all clients (replies and broadcasts)."""
    errors: int
    """Error replies received."""
    elapsed: float
    """Wall time of the run in seconds."""


class _Scenario(abc.ABC):
    """One client's model of the sample and its next command (one subclass per sample)."""

    query: dict[str, Any]
    answer: str

    def __init__(self, rng: random.Random, tag: str) -> None:
        self.rng = rng
        self.tag = tag
        self.waiting: str | None = None
        """A name whose creation the client waits for before sending more."""

    @abc.abstractmethod
    def next(self) -> dict[str, Any]:
        """The next command this client sends online."""

    @abc.abstractmethod
    def burst(self, n: int) -> list[dict[str, Any]]:
        """``n`` commands queued while offline, sent at once on reconnecting."""

    def setup(self) -> dict[str, Any] | None:
        """A command to send (and wait for) online before going offline."""
        return None

    def seen(self, message: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Learn from a frame the server sent (by default: nothing to learn)."""


class _SalesOrder(_Scenario):
    query = {"type": "order/list"}
    answer = "order/list"

    def __init__(self, rng: random.Random, tag: str) -> None:
        super().__init__(rng, tag)
        self.orders: dict[str, set[str]] = {}
        self.count = 0

    def _create(self) -> dict[str, Any]:
        self.count += 1
        self.waiting = f"{self.tag}-{self.count}"
        return {"type": "order/create", "customer": self.waiting}

    def seen(self, message: dict[str, Any]) -> None:
        if message.get("type") == "order/created" and message.get("customer") == self.waiting:
            self.orders[message["id"]] = set()
            self.waiting = None

    def _add(self, order: str) -> dict[str, Any]:
        sku = self.rng.choice(SKUS)
        self.orders[order].add(sku)
        qty, price = self.rng.randint(1, 5), self.rng.randint(50, 2000)
        return {"type": "order/add-line", "order": order, "sku": sku, "qty": qty, "price": price}

    def next(self) -> dict[str, Any]:
        rng = self.rng
        if rng.random() < 1 / 12:
            return rng.choice(
                [
                    {"type": "order/submit", "order": "no-such-order"},
                    {
                        "type": "order/add-line",
                        "order": "no-such-order",
                        "sku": "x",
                        "qty": 1,
                        "price": 1,
                    },
                    {"type": "order/teleport"},
                    {"type": "order/create", "customer": ""},
                ]
            )
        if not self.orders:
            return self._create()
        order = rng.choice(sorted(self.orders))
        lines = self.orders[order]
        roll = rng.random()
        if roll < 0.6 or not lines:
            return self._add(order)
        if roll < 0.78:
            sku = rng.choice(sorted(lines))
            lines.discard(sku)
            return {"type": "order/remove-line", "order": order, "sku": sku}
        if roll < 0.9:
            del self.orders[order]
            return {"type": "order/submit", "order": order}
        if roll < 0.94:
            del self.orders[order]
            return {"type": "order/cancel", "order": order}
        return self._create()

    def setup(self) -> dict[str, Any] | None:
        return self._create()

    def burst(self, n: int) -> list[dict[str, Any]]:
        order = next(iter(self.orders))
        out = []
        for k in range(n):
            lines = self.orders[order]
            if k % 10 == 9 and lines:
                sku = sorted(lines)[0]
                lines.discard(sku)
                out.append({"type": "order/remove-line", "order": order, "sku": sku})
            else:
                out.append(self._add(order))
        return out


class _ShoppingList(_Scenario):
    query = {"type": "list/query"}
    answer = "list/items"

    def __init__(self, rng: random.Random, tag: str) -> None:
        super().__init__(rng, tag)
        self.items: dict[str, bool] = {}
        self.count = 0

    def _new_item(self) -> dict[str, Any]:
        self.count += 1
        name = f"{self.rng.choice(ITEMS)} {self.tag}-{self.count}"
        self.items[name] = False
        return {"type": "list/add-item", "item": name, "qty": self.rng.randint(1, 4)}

    def next(self) -> dict[str, Any]:
        rng = self.rng
        if rng.random() < 1 / 12:
            invalid = [
                {"type": "list/add-item", "item": "  "},
                {"type": "list/check-item", "item": "unobtainium"},
            ]
            if self.items:
                invalid.append(
                    {"type": "list/add-item", "item": rng.choice(sorted(self.items)).upper()}
                )
            return rng.choice(invalid)
        roll = rng.random()
        if roll < 0.5 or not self.items:
            return self._new_item()
        item = rng.choice(sorted(self.items))
        if roll < 0.75:
            self.items[item] = not self.items[item]
            return {"type": "list/check-item", "item": item, "checked": self.items[item]}
        if roll < 0.95:
            del self.items[item]
            return {"type": "list/remove-item", "item": item}
        return {"type": "list/rename", "name": f"List of {self.tag}"}

    def burst(self, n: int) -> list[dict[str, Any]]:
        out = []
        for k in range(n):
            if k % 4 == 3:
                item = sorted(self.items)[0]
                self.items[item] = not self.items[item]
                out.append({"type": "list/check-item", "item": item, "checked": self.items[item]})
            else:
                out.append(self._new_item())
        return out


def _scenario(sample: str, rng: random.Random, tag: str) -> _Scenario:
    if sample in ("sales-order", "sales-order-buggy"):
        return _SalesOrder(rng, tag)
    if sample == "shopping-list":
        return _ShoppingList(rng, tag)
    raise BadInput(f"unknown sample {sample!r} (known: {', '.join(SAMPLES)})")


class _Client:
    """One connection: a reader task counts frames and feeds the scenario."""

    def __init__(self, ws: ClientConnection, scenario: _Scenario) -> None:
        self.ws = ws
        self.scenario = scenario
        self.sent = 0
        self.received = 0
        self.errors = 0
        self.changed = asyncio.Event()
        self.answers = 0

    async def read(self) -> None:
        try:
            async for raw in self.ws:
                self.received += 1
                try:
                    message = jsonutil.loads(raw)
                except ValueError:
                    continue
                if not isinstance(message, dict):
                    continue
                if message.get("type") == "error":
                    self.errors += 1
                    if (
                        self.scenario.waiting is not None
                        and message.get("request") == "order/create"
                    ):
                        self.scenario.waiting = None  # our create was refused: stop waiting
                elif message.get("type") == self.scenario.answer:
                    self.answers += 1
                self.scenario.seen(message)
                self.changed.set()
        except ConnectionClosed:
            pass
        finally:
            self.changed.set()

    async def wait(self, condition: Any) -> None:
        while not condition():
            self.changed.clear()
            if self.ws.state.name in ("CLOSING", "CLOSED") and not condition():
                raise ConnectionError("the server closed the connection")
            await self.changed.wait()

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(jsonutil.dumps(message), text=True)
        self.sent += 1

    async def finish(self) -> None:
        """Query and wait for the answer: every earlier reply has then arrived."""
        target = self.answers + 1
        await self.send(self.scenario.query)
        await self.wait(lambda: self.answers >= target)


async def _session(url: str, scenario: _Scenario, headers: dict | None, body: Any) -> _Client:
    async with connect(url, additional_headers=headers, proxy=None, max_size=None) as ws:
        client = _Client(ws, scenario)
        reader = spawn(client.read(), f"traffic reader {scenario.tag}")
        try:
            await body(client)
            await client.finish()
        finally:
            await ws.close()
            await reader
    return client


async def _chatty(client: _Client, messages: int) -> None:
    for _ in range(messages):
        await client.send(client.scenario.next())
        await client.wait(lambda: client.scenario.waiting is None)


async def run_traffic(
    url: str,
    *,
    sample: str = "sales-order",
    clients: int = 4,
    messages: int = 50,
    seed: int = 0,
    offline_burst: int = 0,
    headers: dict | None = None,
    timeout: float = 60.0,
) -> TrafficStats:
    """Send seeded traffic to a sample server at ``url`` (see the module doc).

    Raises:
        BadInput: an unknown ``sample``.
        TimeoutError: the run took longer than ``timeout`` seconds.
        OSError, websockets.exceptions.WebSocketException: the server cannot be reached.
    """
    _scenario(sample, random.Random(seed), "check")  # refuse an unknown sample up front
    started = time.perf_counter()
    async with asyncio.timeout(timeout):
        runs = [
            spawn(
                _session(
                    url,
                    _scenario(sample, random.Random(f"{seed}/{i}"), f"s{seed}c{i}"),
                    headers,
                    lambda client: _chatty(client, messages),
                ),
                f"traffic client {i}",
            )
            for i in range(clients)
        ]
        if offline_burst:
            runs.append(
                spawn(
                    _offline(url, sample, seed, offline_burst, headers),
                    "traffic offline burst",
                )
            )
        done = await asyncio.gather(*runs)
    return TrafficStats(
        sent=sum(c.sent for c in done),
        received=sum(c.received for c in done),
        errors=sum(c.errors for c in done),
        elapsed=time.perf_counter() - started,
    )


async def _offline(url: str, sample: str, seed: int, n: int, headers: dict | None) -> _Client:
    scenario = _scenario(sample, random.Random(f"{seed}/offline"), f"s{seed}off")

    async def online(client: _Client) -> None:
        setup = scenario.setup()
        if setup is not None:
            await client.send(setup)
            await client.wait(lambda: scenario.waiting is None)

    first = await _session(url, scenario, headers, online)
    queued = scenario.burst(n)  # made while "offline"

    async def reconnect(client: _Client) -> None:
        for message in queued:  # all at once: no waiting for replies in between
            await client.send(message)

    second = await _session(url, scenario, headers, reconnect)
    second.sent += first.sent
    second.received += first.received
    second.errors += first.errors
    return second


def traffic(url: str, **kwargs: Any) -> TrafficStats:
    """:func:`run_traffic` for scripts: runs it to completion in a new event loop."""
    return asyncio.run(run_traffic(url, **kwargs))
