"""A payment hash Blink hands out again must never turn a new sale into an old one.

A simulator restarted from the same seed repeats its hashes (the sandbox did
this on every restart). Here a twin simulator, started with the world's seed
and the same accounts made in the same order, repeats the world's first POS
invoice hash, and a second service instance asks it for invoices while
sharing the world's PostgreSQL and Redis.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from tests.services.conftest import MERCHANT_SCOPES, World, _account
from tipsplit.http.app import create_app
from tipsplit.serving import BackgroundServer
from tipsplit.sim.server import SimServer

ALICE = [{"username": "alice", "share": 100}]


@asynccontextmanager
async def twin_service(world: World) -> AsyncIterator[httpx.AsyncClient]:
    """A service on the shared stores whose Blink is a simulator that repeats the world's hashes."""
    async with SimServer(seed=world.sim.seed) as twin, httpx.AsyncClient(base_url=twin.url) as twin_http:
        pos = await _account(twin_http, "blinkpos")
        merchant = await _account(twin_http, "merchant", MERCHANT_SCOPES)
        for name in ("alice", "bob", "carol"):
            await _account(twin_http, name)
        assert (pos, merchant) == (world.pos, world.merchant)
        service = BackgroundServer(create_app(world.settings.model_copy(update={"blink_api_url": twin.graphql_url})))
        await service.start()
        try:
            async with httpx.AsyncClient(base_url=service.url, timeout=30) as client:
                yield client
        finally:
            await service.stop()


async def test_a_repeated_payment_hash_is_a_json_409_and_the_old_sale_is_untouched(world: World) -> None:
    async with world.http() as client:
        first = await world.create_invoice(client, baseAmount=1000, tipAmount=100, tipRecipients=ALICE)
        await world.pay(first["paymentRequest"])
        before = await world.wait_for_status(client, first["paymentHash"], {"completed"})
    sale = {"userWalletId": world.merchant.wallet_id, "apiKey": world.merchant.api_key}
    for amounts in ({"baseAmount": 1000, "tipAmount": 100, "tipRecipients": ALICE}, {"baseAmount": 5, "tipAmount": 0}):
        async with twin_service(world) as twin_client:
            response = await twin_client.post("/api/blink/create-invoice", json={**sale, **amounts})
        assert response.status_code == 409, (amounts, response.status_code, response.text)
        assert response.headers["content-type"].startswith("application/json")
        assert response.json()["field"] == "paymentHash" and "earlier sale" in response.json()["error"]
        assert first["paymentHash"] not in response.text
    async with world.http() as client:
        after = await world.status(client, first["paymentHash"])
        stats = (await client.get("/api/stats", headers=world.operator)).json()["last24Hours"]
    assert (after["status"], after["legs"], after["totalAmount"]) == (before["status"], before["legs"], 1100)
    assert stats["completed_count"] == 1 and stats["pending_count"] == 0
    assert await world.balance(world.merchant) == 1000
