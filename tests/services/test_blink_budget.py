"""Callers without credentials cannot spend the POS key's Blink calls: counted at the simulator."""

import asyncio
import time
from typing import Any

import httpx
import pytest

from tests.services.conftest import World

STATUS = "lnInvoicePaymentStatusByHash"
# The poller would ask Blink about pending invoices on its own; these tests count only what callers cause.
QUIET = {"poll_interval_seconds": 3600, "reconcile_interval_seconds": 3600}


async def pending_sale(world: World, client: httpx.AsyncClient) -> dict[str, Any]:
    return await world.create_invoice(client, baseAmount=900, tipAmount=0)


@pytest.mark.settings(**QUIET)
async def test_a_storm_of_forwards_on_an_unpaid_invoice_asks_blink_once(world: World) -> None:
    async with world.http() as client:
        payment_hash = (await pending_sale(world, client))["paymentHash"]
        await world.clear_operations()
        body = {"paymentHash": payment_hash}
        burst = await asyncio.gather(*(client.post("/api/blink/forward-with-tips", json=body) for _ in range(100)))
        assert {r.status_code for r in burst} == {409}
        assert (await world.operations()).get(STATUS) == 1
        started = time.monotonic()
        for _ in range(20):
            response = await client.post("/api/blink/forward-with-tips", json=body)
            assert response.status_code == 409 and response.json()["status"] == "pending"
        elapsed = time.monotonic() - started
    asked = (await world.operations()).get(STATUS, 0)
    assert asked <= 1 + int(elapsed / world.settings.forward_answer_reuse_seconds) + 1, (asked, elapsed)


@pytest.mark.instances(2)
@pytest.mark.settings(forward_answer_reuse_seconds=30, **QUIET)
async def test_instances_share_a_recent_not_paid_answer_through_redis(world: World) -> None:
    async with world.http(0) as first, world.http(1) as second:
        invoice = await pending_sale(world, first)
        payment_hash = invoice["paymentHash"]
        await world.clear_operations()
        body = {"paymentHash": payment_hash}
        assert (await first.post("/api/blink/forward-with-tips", json=body)).status_code == 409
        others = await asyncio.gather(*(second.post("/api/blink/forward-with-tips", json=body) for _ in range(30)))
        assert {r.status_code for r in others} == {409}
        assert (await world.operations()).get(STATUS) == 1
        # Paid now: the server's own detection (webhook, subscription) settles it; a reused answer withholds nothing.
        await world.pay(invoice["paymentRequest"])
        await world.wait_for_status(first, payment_hash, {"completed"})
    assert await world.balance(world.merchant) == 900


@pytest.mark.settings(forward_rate_limit_per_ip=5, forward_rate_limit_window_seconds=60, **QUIET)
async def test_forward_with_tips_is_rate_limited_per_ip(world: World) -> None:
    async with world.http() as client:
        payment_hash = (await pending_sale(world, client))["paymentHash"]
        answers = [await client.post("/api/blink/forward-with-tips", json={"paymentHash": payment_hash})
                   for _ in range(7)]
    assert [r.status_code for r in answers] == [409] * 5 + [429] * 2
    refused = answers[-1]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.json()["error"] and refused.json()["retryAfter"] == int(refused.headers["Retry-After"])


async def test_health_asks_blink_at_most_every_few_seconds(world: World) -> None:
    async with world.http() as client:
        await world.clear_operations()
        started = time.monotonic()
        burst = await asyncio.gather(*(client.get("/api/health") for _ in range(50)))
        for _ in range(20):
            burst.append(await client.get("/api/health"))
        elapsed = time.monotonic() - started
    assert {r.status_code for r in burst} == {200}
    assert all(r.json()["checks"]["blink"]["status"] == "up" for r in burst)
    asked = (await world.operations()).get("realtimePrice", 0)
    assert 1 <= asked <= 1 + int(elapsed / 5) + 1, (asked, elapsed)
