"""The traffic generator against real sample servers, including the offline-first burst."""

from __future__ import annotations

import pytest

from devtools.errors import BadInput
from samples import sales_order, shopping_list
from samples.traffic import run_traffic

pytestmark = pytest.mark.timeout(60)


async def test_concurrent_clients_produce_events_and_some_errors():
    app = sales_order.make_server(token="t")
    async with await app.serve() as h:
        stats = await run_traffic(h.url, clients=3, messages=40, seed=7)
    assert stats.sent == 3 * 40 + 3  # plus each client's closing query
    assert 0 < stats.errors < stats.sent // 3
    assert app.v > 3 * 40 * 0.6
    assert stats.received >= app.v  # every event was broadcast to at least its sender


async def test_same_seed_same_traffic():
    finals = []
    for _ in range(2):
        app = shopping_list.make_server(token="t")
        async with await app.serve() as h:
            await run_traffic(h.url, sample="shopping-list", clients=1, messages=60, seed=3)
        finals.append(app.state)
    assert finals[0]["items"].keys() == finals[1]["items"].keys()


@pytest.mark.parametrize(
    "module,sample", [(sales_order, "sales-order"), (shopping_list, "shopping-list")]
)
async def test_offline_burst_of_2000_arrives_in_full(module, sample):
    app = module.make_server(token="t", hash_every=0)
    async with await app.serve() as h:
        stats = await run_traffic(h.url, sample=sample, clients=0, offline_burst=2000, seed=1)
    setup = 1 if sample == "sales-order" else 0
    assert app.v == 2000 + setup  # every queued action became an event, in one burst
    assert stats.errors == 0
    assert stats.received >= 2000 + setup + 2  # replies (broadcasts) plus the two closing queries


async def test_unknown_sample_is_bad_input():
    with pytest.raises(BadInput, match="unknown sample"):
        await run_traffic("ws://127.0.0.1:9/", sample="pizza")
