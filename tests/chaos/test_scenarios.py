"""Issue 6's seven chaos scenarios: three service processes, one simulator, N payments, one ledger invariant.

Each scenario prints one `[chaos] ...` line (run with `-s` to see it) with the
numbers that tests/chaos/README.md reports.
"""

import asyncio
import time

import httpx
import pytest

from tests.chaos.cluster import Cluster, Sale
from tests.chaos.conftest import ClusterFactory, scale
from tests.chaos.invariants import Report, check_ledger, drain

pytestmark = pytest.mark.chaos


async def _healthy(cluster: Cluster) -> None:
    for inst in cluster.instances:
        response = await cluster.client.get(f"{inst.url}/api/health")
        assert response.status_code == 200, (inst.index, response.text)


# 1 -----------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n", scale(30, 1000))
async def test_duplicated_webhooks_and_many_tabs(make_cluster: ClusterFactory, n: int) -> None:
    """Every payment: the simulator's webhook to all three instances, 3 more signed copies to random
    instances (one of them a replay of the same svix-id), and 4 concurrent forward-with-tips "tabs"."""
    cluster = await make_cluster()
    sales = await cluster.sell(n, pay=False)
    codes: list[int] = []

    async def storm(sale: Sale) -> None:
        await cluster.pay(sale)
        msg_id = f"msg_dup_{sale.payment_hash[:16]}"
        calls = [cluster.webhook(cluster.pick(), sale.payment_hash, msg_id) for _ in range(3)]
        calls += [cluster.forward(cluster.pick(), sale.payment_hash) for _ in range(4)]
        for response in await asyncio.gather(*calls):
            assert response is not None
            codes.append(response.status_code)

    gate = asyncio.Semaphore(8)

    async def gated(sale: Sale) -> None:
        async with gate:
            await storm(sale)

    started = time.monotonic()
    await asyncio.gather(*(gated(s) for s in sales))
    report = Report("1 duplicated webhooks + tabs", faults="3 extra webhooks + 4 forward calls per payment")
    report.drain_seconds = await drain(cluster, timeout=60 + n * 0.5)
    report.extra = {"requests": len(codes), "load_s": round(time.monotonic() - started, 1),
                    "codes": dict(sorted((c, codes.count(c)) for c in set(codes)))}
    assert set(codes) <= {200, 202}, report.extra
    await check_ledger(cluster, report)
    assert report.paid == len(sales) == report.completed
