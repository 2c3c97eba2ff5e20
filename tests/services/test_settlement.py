"""The money path end to end: POS invoice → customer pays → base and tips forwarded exactly once."""

import asyncio
from collections import Counter
from typing import Any

import pytest

from tests.services.conftest import World, eventually
from tipsplit.store.redis_client import connect_redis

TWO_WAY = [{"username": "alice", "share": 60}, {"username": "bob", "share": 40}]


def payments_into(ledger: dict[str, Any], wallet_id: str) -> list[dict[str, Any]]:
    return [p for p in ledger["payments"] if p["recipientWalletId"] == wallet_id and p["status"] == "SUCCESS"]


async def test_happy_path_moves_exact_amounts(world: World) -> None:
    async with world.http() as client:
        invoice = await world.create_invoice(client, baseAmount=1000, tipPercent=15, tipRecipients=TWO_WAY)
        assert invoice["satoshis"] == 1150
        assert invoice["split"]["tipAmount"] == 150
        assert [leg["amount"] for leg in invoice["split"]["legs"]] == [1000, 90, 60]
        assert "apiKey" not in str(invoice)

        assert (await world.pay(invoice["paymentRequest"])).status_code == 200
        status = await world.wait_for_status(client, invoice["paymentHash"], {"completed"})

    assert [leg["status"] for leg in status["legs"]] == ["succeeded"] * 3
    assert await world.balance(world.merchant) == 1000
    assert await world.balance(world.recipients["alice"]) == 90
    assert await world.balance(world.recipients["bob"]) == 60
    assert await world.balance(world.pos) == 0
    events = [e["type"] for e in status["events"]]
    for expected in ("created", "claimed", "paid", "base_forwarded", "tip_sent", "completed"):
        assert expected in events
    ledger = await world.ledger()
    assert ledger["violations"] == []
    merchant_tx = (await world.sim_http.get(f"/sim/wallets/{world.merchant.wallet_id}")).json()["transactions"]
    assert [t["memo"] for t in merchant_tx] == ["BlinkPOS: 1000 + 15% tip = 1150 | 150 sat tip split to alice, bob"]
    alice_tx = (await world.sim_http.get(f"/sim/wallets/{world.recipients['alice'].wallet_id}")).json()["transactions"]
    assert [t["memo"] for t in alice_tx] == ["BlinkPOS Tip (1/2): 90 sats"]


async def test_settlement_leaves_no_processing_lock_behind(world: World) -> None:
    """The lock is released with the archive (completed) and on its own when the payment is not archived (not paid)."""
    prefix = world.settings.redis_key_prefix
    async with world.http() as client:
        paid = await world.create_invoice(client, baseAmount=700, tipAmount=70, tipRecipients=TWO_WAY)
        unpaid = await world.create_invoice(client, baseAmount=300, tipAmount=30, tipRecipients=TWO_WAY)
        assert (await world.pay(paid["paymentRequest"])).status_code == 200
        await world.wait_for_status(client, paid["paymentHash"], {"completed"})
        forward = await client.post("/api/blink/forward-with-tips", json={"paymentHash": unpaid["paymentHash"]})
        assert forward.status_code == 409
    redis = connect_redis(world.settings.redis_url or "")
    try:
        for payment_hash in (paid["paymentHash"], unpaid["paymentHash"]):
            assert not await redis.exists(f"{prefix}lock:payment:{{{payment_hash}}}")
    finally:
        await redis.aclose()


async def test_forward_of_an_unpaid_invoice_moves_nothing(world: World) -> None:
    async with world.http() as client:
        invoice = await world.create_invoice(client, baseAmount=500, tipAmount=50, tipRecipients=TWO_WAY)
        response = await client.post(
            "/api/blink/forward-with-tips", json={"paymentHash": invoice["paymentHash"], "totalAmount": 999999}
        )
        assert response.status_code == 409
        assert response.json()["status"] == "pending"
        status = await world.status(client, invoice["paymentHash"])
    assert status["status"] == "pending"
    assert await world.balance(world.merchant) == 0
    assert (await world.ledger())["payments"] == []


async def test_forward_is_idempotent_and_reports_completion(world: World) -> None:
    async with world.http() as client:
        invoice = await world.create_invoice(client, baseAmount=700, tipAmount=0)
        await world.pay(invoice["paymentRequest"])
        first = await client.post("/api/blink/forward-with-tips", json={"paymentHash": invoice["paymentHash"]})
        assert first.status_code in (200, 202)
        await world.wait_for_status(client, invoice["paymentHash"], {"completed"})
        again = await client.post("/api/blink/forward-with-tips", json={"paymentHash": invoice["paymentHash"]})
        unknown = await client.post("/api/blink/forward-with-tips", json={"paymentHash": "ab" * 32})
    assert again.status_code == 200 and again.json()["alreadyProcessed"] is True
    assert unknown.status_code == 404
    assert await world.balance(world.merchant) == 700


@pytest.mark.instances(3)
async def test_a_storm_of_requests_pays_each_leg_once(world: World) -> None:
    clients = [world.http(i) for i in range(3)]
    try:
        invoice = await world.create_invoice(clients[0], baseAmount=2000, tipPercent=10, tipRecipients=TWO_WAY)
        await world.pay(invoice["paymentRequest"])
        body = {"paymentHash": invoice["paymentHash"]}
        responses = await asyncio.gather(
            *(clients[i % 3].post("/api/blink/forward-with-tips", json=body) for i in range(100))
        )
        assert all(r.status_code in (200, 202) for r in responses), Counter(r.status_code for r in responses)
        await world.wait_for_status(clients[1], invoice["paymentHash"], {"completed"})
    finally:
        for client in clients:
            await client.aclose()
    ledger = await world.ledger()
    assert len(payments_into(ledger, world.merchant.wallet_id)) == 1
    assert len(payments_into(ledger, world.recipients["alice"].wallet_id)) == 1
    assert len(payments_into(ledger, world.recipients["bob"].wallet_id)) == 1
    assert await world.balance(world.merchant) == 2000
    assert await world.balance(world.recipients["alice"]) + await world.balance(world.recipients["bob"]) == 200


async def test_a_lost_answer_is_resolved_without_a_second_payment(world: World) -> None:
    await world.fault(operation="lnInvoicePaymentSend", loseAnswer=True, count=1)
    async with world.http() as client:
        invoice = await world.create_invoice(client, baseAmount=1234, tipAmount=0)
        await world.pay(invoice["paymentRequest"])
        status = await world.wait_for_status(client, invoice["paymentHash"], {"completed"})
    assert "leg_outcome_unknown" in [e["type"] for e in status["events"]]
    ledger = await world.ledger()
    assert len(payments_into(ledger, world.merchant.wallet_id)) == 1
    assert await world.balance(world.merchant) == 1234


@pytest.mark.settings(max_leg_attempts=3)
async def test_unknown_outcomes_that_never_resolve_fail_the_leg(world: World) -> None:
    bob = world.recipients["bob"]
    await world.fault(operation="lnInvoicePaymentSend", errorRate=1.0, walletId=bob.wallet_id)
    async with world.http() as client:
        invoice = await world.create_invoice(client, baseAmount=1000, tipAmount=100, tipRecipients=TWO_WAY)
        await world.pay(invoice["paymentRequest"])
        status = await world.wait_for_status(client, invoice["paymentHash"], {"failed"}, timeout=60)
    bob_leg = next(leg for leg in status["legs"] if leg["recipient"] == "bob")
    assert bob_leg["status"] == "failed" and bob_leg["attempts"] == 3
    assert await world.balance(bob) == 0


async def test_a_failing_tip_leg_is_retried_to_success(world: World) -> None:
    alice = world.recipients["alice"]
    await world.fault(operation="lnInvoicePaymentSend", failure=True, walletId=alice.wallet_id, count=2)
    async with world.http() as client:
        invoice = await world.create_invoice(client, baseAmount=1000, tipAmount=100, tipRecipients=TWO_WAY)
        await world.pay(invoice["paymentRequest"])
        status = await world.wait_for_status(client, invoice["paymentHash"], {"completed"})
        metrics = await world.metrics(client)
    tip_leg = next(leg for leg in status["legs"] if leg["recipient"] == "alice")
    assert tip_leg["attempts"] >= 2
    retried = [line for line in metrics.splitlines() if line.startswith("tipsplit_legs_retried_total ")]
    assert retried and float(retried[0].split()[1]) >= 1
    assert await world.balance(alice) == 60
    assert len(payments_into(await world.ledger(), alice.wallet_id)) == 1


@pytest.mark.settings(max_leg_attempts=2)
async def test_an_exhausted_leg_fails_the_payment_visibly(world: World) -> None:
    bob = world.recipients["bob"]
    await world.fault(operation="lnInvoicePaymentSend", failure=True, walletId=bob.wallet_id)
    async with world.http() as client:
        invoice = await world.create_invoice(client, baseAmount=1000, tipAmount=100, tipRecipients=TWO_WAY)
        await world.pay(invoice["paymentRequest"])
        status = await world.wait_for_status(client, invoice["paymentHash"], {"failed"}, timeout=60)
        forward = await client.post("/api/blink/forward-with-tips", json={"paymentHash": invoice["paymentHash"]})
    assert forward.status_code == 409 and forward.json()["status"] == "failed"
    legs = {leg["leg"]: leg for leg in status["legs"]}
    assert legs["base"]["status"] == "succeeded"
    assert legs["tip:1"]["status"] == "succeeded"
    assert legs["tip:2"]["status"] == "failed"
    assert legs["tip:2"]["attempts"] == 2
    assert (legs["tip:2"]["reason"], legs["tip:2"]["retrying"]) == ("the recipient could not be paid yet", False)
    assert status["error"] == "not forwarded: @bob (the recipient could not be paid yet)"
    async with world.http() as client:
        page = await client.get(f"/dashboard/payments/{invoice['paymentHash']}", headers=world.operator)
    assert "Unable to find a route for payment" in page.text, "the operator still sees Blink's own words"
    assert await world.balance(bob) == 0
    assert await world.balance(world.merchant) == 1000


@pytest.mark.settings(invoice_expiry_minutes=1)
async def test_an_unpaid_invoice_expires(world: World) -> None:
    async with world.http() as client:
        invoice = await world.create_invoice(client, baseAmount=300, tipAmount=0)
        response = await world.sim_http.post("/sim/clock", json={"advanceSeconds": 61})
        assert response.status_code == 200, response.text
        await world.wait_for_status(client, invoice["paymentHash"], {"expired"})
        refused = await world.pay(invoice["paymentRequest"])
        forward = await client.post("/api/blink/forward-with-tips", json={"paymentHash": invoice["paymentHash"]})
    assert refused.status_code == 409
    assert forward.status_code == 410 and forward.json()["status"] == "expired" and forward.json()["error"]
    assert await world.balance(world.merchant) == 0


@pytest.mark.settings(invoice_expiry_minutes=1)
async def test_a_payment_in_the_last_second_is_still_forwarded(world: World) -> None:
    async with world.http() as client:
        invoice = await world.create_invoice(client, baseAmount=800, tipAmount=80, tipRecipients=TWO_WAY)
        await world.sim_http.post("/sim/clock", json={"advanceSeconds": 59})
        keys = [k async for k in _redis_keys(world)]
        assert any(invoice["paymentHash"] in k for k in keys)
        await _flush_prefix(world)
        assert (await world.pay(invoice["paymentRequest"])).status_code == 200
        await world.sim_http.post("/sim/clock", json={"advanceSeconds": 5})
        await world.wait_for_status(client, invoice["paymentHash"], {"completed"})
    assert await world.balance(world.merchant) == 800
    assert await world.balance(world.recipients["alice"]) + await world.balance(world.recipients["bob"]) == 80


async def _redis_keys(world: World):  # type: ignore[no-untyped-def]
    client = connect_redis(world.settings.redis_url or "", decode_responses=True)
    try:
        async for key in client.scan_iter(match=f"{world.settings.redis_key_prefix}*"):
            yield key
    finally:
        await client.aclose()


async def _flush_prefix(world: World) -> None:
    client = connect_redis(world.settings.redis_url or "")
    try:
        keys = [k async for k in client.scan_iter(match=f"{world.settings.redis_key_prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def test_webhooks_alone_settle_a_payment(world: World) -> None:
    async with world.http() as client:
        invoice = await world.create_invoice(client, baseAmount=450, tipAmount=45, tipRecipients=TWO_WAY)
        await world.pay(invoice["paymentRequest"])
        await world.wait_for_status(client, invoice["paymentHash"], {"completed"}, timeout=15)
        metrics = await world.metrics(client)
    assert 'tipsplit_webhooks_total{result="settling"}' in metrics


@pytest.mark.settings(poll_interval_seconds=0.2)
async def test_polling_an_unpaid_invoice_writes_nothing(world: World) -> None:
    async with world.http() as client:
        invoice = await world.create_invoice(client, baseAmount=100, tipAmount=0)
        await asyncio.sleep(1.5)
        status = await world.status(client, invoice["paymentHash"])
    assert status["status"] == "pending"
    assert [e["type"] for e in status["events"]] == ["created"]


async def test_a_completed_settlement_records_its_processing_time(world: World) -> None:
    import asyncpg

    async with world.http() as client:
        invoice = await world.create_invoice(client, baseAmount=400, tipAmount=0)
        await world.pay(invoice["paymentRequest"])
        await world.wait_for_status(client, invoice["paymentHash"], {"completed"})

    async def samples() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(world.settings.database_url)
        try:
            return await conn.fetch(
                "SELECT metric_value, metadata FROM system_metrics WHERE metric_name = 'payment_processing_time'"
            )
        finally:
            await conn.close()

    rows = await eventually(samples, lambda found: len(found) > 0, timeout=15, every=0.5)
    assert rows[0]["metric_value"] > 0
    assert invoice["paymentHash"][:8] in rows[0]["metadata"]
