"""What anyone may learn or spend with a payment hash or a wallet id: no wallet ids, balances or Blink errors,
and no way to use up a merchant's invoice limit."""

import json
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.services.conftest import World
from tipsplit.blink.client import BlinkClient


async def _drain_pos(world: World, keep: int) -> None:
    """Move all but `keep` sats out of the POS wallet (to alice), as other sales' forwarding would."""
    balance = await world.balance(world.pos)
    async with BlinkClient(world.sim.graphql_url, world.recipients["alice"].api_key) as alice:
        invoice = await alice.create_invoice(world.recipients["alice"].wallet_id, balance - keep, "drain")
    async with BlinkClient(world.sim.graphql_url, world.pos.api_key) as pos:
        paid = await pos.pay_invoice(world.pos.wallet_id, invoice.payment_request)
    assert paid.settled
    assert await world.balance(world.pos) == keep


@pytest.mark.settings(max_leg_attempts=1, poll_interval_seconds=3600)
async def test_payment_status_and_its_stream_reveal_no_wallet_or_balance(world: World) -> None:
    """Reproduction: a leg failing on the POS balance quoted it ("… exceeds balance '12'") in public."""
    await world.sim_http.delete("/sim/webhooks")
    await world.fault(operation="myUpdates", errorRate=1.0)
    await world.sim_http.post("/sim/subscriptions/drop")
    async with world.http() as client:
        sale = await world.create_invoice(client, baseAmount=700, tipAmount=0)
        await world.pay(sale["paymentRequest"])
        await _drain_pos(world, keep=12)
        forward = await client.post("/api/blink/forward-with-tips", json={"paymentHash": sale["paymentHash"]})
        assert forward.status_code == 409, forward.text
        status = await client.get(f"/api/payment-status/{sale['paymentHash']}")
        async with client.stream("GET", f"/api/payment-status/{sale['paymentHash']}/events") as stream:
            streamed = [line async for line in stream.aiter_lines() if line.startswith("data:")]
        dashboard = await client.get(f"/dashboard/payments/{sale['paymentHash']}", headers=world.operator)
    public = [status.text, *streamed]
    wallets = [world.merchant.wallet_id, world.pos.wallet_id, *(a.wallet_id for a in world.recipients.values())]
    for text in public:
        assert "balance" not in text.lower() and "'12'" not in text and "exceeds" not in text, text
        assert not [w for w in wallets if w in text], text
    view = status.json()
    assert "userWalletId" not in view and all("lastError" not in leg for leg in view["legs"])
    assert view["status"] == "failed"
    assert view["legs"][0]["reason"] == "the merchant's wallet could not be paid yet"
    assert view["error"] == "not forwarded: merchant (the merchant's wallet could not be paid yet)"
    assert json.loads(streamed[-1][5:])["legs"][0]["reason"] == view["legs"][0]["reason"]
    assert all(set(e["data"]) <= {"leg", "legs", "amount", "recipient", "attempts", "result", "status"}
               for e in view["events"])
    assert "exceeds balance &#39;12&#39;" in dashboard.text, "the operator still sees Blink's words"


def _as(ip: str) -> dict[str, str]:
    return {"x-forwarded-for": ip}


def _sale(world: World, api_key: str | None = None, wallet_id: str | None = None) -> dict[str, Any]:
    return {"userWalletId": wallet_id or world.merchant.wallet_id, "apiKey": api_key or world.merchant.api_key,
            "baseAmount": 10}


@pytest.mark.settings(rate_limit_per_wallet=3, rate_limit_per_ip=5, trusted_proxies="127.0.0.1")
async def test_nobody_but_the_owner_can_use_up_a_wallets_invoices(world: World) -> None:
    """Reproduction: requests naming the merchant's (public) wallet id with a wrong key locked the merchant out."""
    attacker, till = _as("203.0.113.9"), _as("198.51.100.7")
    async with world.http() as client:
        codes = []
        for api_key, wallet_id in [("blink_wrongkey0000", None)] * 4 + [(None, world.recipients["bob"].wallet_id)]:
            response = await client.post("/api/blink/create-invoice", json=_sale(world, api_key, wallet_id),
                                         headers=attacker)
            codes.append(response.status_code)
        assert codes == [401, 401, 401, 401, 403]
        refused = await client.post("/api/blink/create-invoice", json=_sale(world, "blink_wrongkey0000"),
                                    headers=attacker)
        assert refused.status_code == 429 and refused.json()["retryAfter"] > 0, "failures cost the caller's IP"
        merchant = [(await client.post("/api/blink/create-invoice", json=_sale(world), headers=till)).status_code
                    for _ in range(4)]
    assert merchant == [200, 200, 200, 429], "the wallet's own bucket counts only its owner's requests"


async def test_chunked_bodies_stop_at_the_limit_without_being_buffered(world: World) -> None:
    """Reproduction: a 300 MB chunked POST to the webhook was held whole in memory before the 413.

    The service runs in this process: the peak of memory allocated while 32 MiB stream in must stay far
    below the body's size, whatever the route does with its body.
    """
    total = 32 * 1024 * 1024

    async def body() -> AsyncIterator[bytes]:
        chunk = b"x" * 65536
        for _ in range(total // len(chunk)):
            yield chunk

    async with httpx.AsyncClient(base_url=world.service.url, timeout=60) as client:
        for path, content_type in (("/api/blink/webhook", "application/json"),
                                   ("/api/blink/create-invoice", "application/json"),
                                   ("/signin", "application/x-www-form-urlencoded")):
            tracemalloc.start()
            try:
                response = await client.post(path, content=body(), headers={"content-type": content_type})
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            assert response.status_code == 413, (path, response.status_code, response.text[:200])
            assert "too large" in response.json()["error"]
            assert peak < total // 4, f"{path}: {peak:,} bytes held while a {total:,}-byte body arrived"
        assert (await client.get("/api/health")).status_code == 200
