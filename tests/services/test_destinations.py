"""USD (Stablesats) wallets receive forwarded sats as cents at Blink's price: a merchant's USD wallet, a tip
recipient whose default wallet is USD; each exactly once, and every view says which currency it went to."""

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.services.conftest import World, eventually
from tipsplit.blink.client import BlinkClient
from tipsplit.domain.external_ids import leg_external_id
from tipsplit.keyring import KeyRing
from tipsplit.store.hybrid import HybridTipStore

# An odd price, so that the cents cannot come out right by accident.
USD_BTC_PRICE = 63_457


async def sim_account(world: World, username: str, **fields: Any) -> dict[str, Any]:
    response = await world.sim_http.post("/sim/accounts", json={"username": username, **fields})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def wallet_balance(world: World, wallet_id: str) -> int:
    response = await world.sim_http.get(f"/sim/wallets/{wallet_id}")
    response.raise_for_status()
    return int(response.json()["balance"])


async def cents_for(world: World, sats: int) -> int:
    """The cents `sats` buy at the USD price the simulator serves through `realtimePrice`, rounded down."""
    async with BlinkClient(world.sim.graphql_url, None) as blink:
        price = await blink.realtime_price("USD")
    return sats * price.sat_price_base // 10**price.sat_price_offset


@pytest.fixture(autouse=True)
async def odd_usd_price(world: World) -> None:
    response = await world.sim_http.post("/sim/prices", json={"currency": "USD", "btcPrice": USD_BTC_PRICE})
    assert response.status_code < 300, response.text


def leg(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next(item for item in status["legs"] if item["leg"] == name)


def into(ledger: dict[str, Any], kind: str, wallet_id: str) -> list[dict[str, Any]]:
    field = "walletId" if kind == "invoices" else "recipientWalletId"
    return [item for item in ledger[kind] if item[field] == wallet_id]


async def test_a_merchant_usd_wallet_receives_the_base_in_cents(world: World) -> None:
    shop = await sim_account(world, "usd_shop", scopes=["READ"])
    cents = await cents_for(world, 700)
    assert cents > 0
    async with world.http() as client:
        response = await client.post("/api/blink/create-invoice", json={
            "userWalletId": shop["usdWalletId"], "apiKey": shop["apiKey"], "baseAmount": 700,
        })
        assert response.status_code == 200, response.text
        invoice = response.json()
        ph = invoice["paymentHash"]
        assert invoice["satoshis"] == 700
        await world.pay(invoice["paymentRequest"])
        status = await world.wait_for_status(client, ph, {"completed"})
        public = await client.get(f"/api/payment-status/{ph}")
        page = await client.get(f"/dashboard/payments/{ph}", headers=world.operator)
        export = await client.get("/dashboard/export.csv", headers=world.operator)
    assert leg(status, "base")["currency"] == "USD"
    assert shop["usdWalletId"] not in public.text and shop["btcWalletId"] not in public.text
    assert await wallet_balance(world, shop["usdWalletId"]) == cents
    assert await wallet_balance(world, shop["btcWalletId"]) == 0
    assert await world.balance(world.pos) == 0
    ledger = await world.ledger()
    assert ledger["violations"] == []
    (usd_invoice,) = into(ledger, "invoices", shop["usdWalletId"])
    assert (usd_invoice["amount"], usd_invoice["usdCents"]) == (700, cents)
    assert usd_invoice["externalId"] == leg_external_id(ph, "base", 0)
    assert usd_invoice["expiresAt"] - usd_invoice["createdAt"] <= 5 * 60
    assert len(into(ledger, "payments", shop["usdWalletId"])) == 1
    assert 'class="currency">USD<' in page.text
    (row,) = [r for r in csv.DictReader(io.StringIO(export.text)) if r["payment_hash"] == ph]
    assert (row["base_sats"], row["base_status"], row["base_currency"]) == ("700", "succeeded", "USD")
    async with world.http() as client:
        btc = await client.post("/api/blink/create-invoice", json={
            "userWalletId": shop["btcWalletId"], "apiKey": shop["apiKey"], "baseAmount": 700,
        })
    assert btc.status_code == 200, btc.text


async def test_a_recipient_whose_default_is_usd_is_tipped_in_their_usd_wallet(world: World) -> None:
    """accountDefaultWallet is asked for the default wallet, whatever its currency, as any Blink payer would."""
    dora = await sim_account(world, "dora_usd", scopes=["READ"], defaultWalletCurrency="USD")
    cents = await cents_for(world, 150)
    async with world.http() as client:
        invoice = await world.create_invoice(client, baseAmount=1000, tipAmount=150,
                                             tipRecipients=[{"username": "dora_usd", "share": 100}])
        await world.pay(invoice["paymentRequest"])
        status = await world.wait_for_status(client, invoice["paymentHash"], {"completed"})
    assert (leg(status, "base")["currency"], leg(status, "tip:1")["currency"]) == ("BTC", "USD")
    assert await wallet_balance(world, dora["usdWalletId"]) == cents
    assert await wallet_balance(world, dora["btcWalletId"]) == 0
    assert await world.balance(world.merchant) == 1000
    assert await world.balance(world.pos) == 0
    ledger = await world.ledger()
    assert ledger["violations"] == []
    assert len(into(ledger, "invoices", dora["usdWalletId"])) == 1
    assert len(into(ledger, "payments", dora["usdWalletId"])) == 1


@pytest.mark.settings(max_leg_attempts=20)
async def test_a_usd_leg_invoice_that_expired_unpaid_is_replaced_and_paid_once(world: World) -> None:
    """Blink keeps a USD invoice 5 minutes; one that expired after failed sends gets a fresh invoice."""
    dora = await sim_account(world, "dora_usd", scopes=["READ"], defaultWalletCurrency="USD")
    await world.fault(operation="lnInvoicePaymentSend", failure=True, walletId=dora["usdWalletId"])
    cents = await cents_for(world, 90)
    async with world.http() as client:
        invoice = await world.create_invoice(client, baseAmount=900, tipAmount=90,
                                             tipRecipients=[{"username": "dora_usd", "share": 100}])
        ph = invoice["paymentHash"]
        await world.pay(invoice["paymentRequest"])
        await eventually(lambda: world.status(client, ph), lambda s: leg(s, "tip:1")["attempts"] >= 2)
        assert (await world.sim_http.post("/sim/clock", json={"advanceSeconds": 6 * 60})).status_code == 200
        assert (await world.sim_http.delete("/sim/faults")).status_code < 300
        status = await world.wait_for_status(client, ph, {"completed"}, timeout=60)
    assert "leg_invoice_expired" in [event["type"] for event in status["events"]]
    ledger = await world.ledger()
    assert ledger["violations"] == []
    external_ids = sorted(i["externalId"] for i in into(ledger, "invoices", dora["usdWalletId"]))
    assert external_ids[0] == leg_external_id(ph, "tip:1", 0)
    assert leg_external_id(ph, "tip:1", 1) in external_ids
    assert len(into(ledger, "payments", dora["usdWalletId"])) == 1
    assert await wallet_balance(world, dora["usdWalletId"]) == cents
    assert await world.balance(world.merchant) == 900


async def test_a_recipient_known_only_by_username_gets_their_wallet_and_currency_at_settlement(world: World) -> None:
    """A sale stored without its recipients' wallets (the seed's API, an imported sale) looks them up when paying."""
    dora = await sim_account(world, "dora_usd", scopes=["READ"], defaultWalletCurrency="USD")
    cents = await cents_for(world, 120)
    async with BlinkClient(world.sim.graphql_url, world.pos.api_key) as pos:
        sale = await pos.create_invoice(world.pos.wallet_id, 1_320, "imported sale", expires_in_minutes=30)
    store = HybridTipStore(world.settings, KeyRing.from_settings(world.settings))
    await store.initialize(migrate=False)
    try:
        await store.store_tip_data(sale.payment_hash, {
            "baseAmount": 1_200, "tipAmount": 120, "tipRecipients": [{"username": "dora_usd", "share": 100}],
            "userApiKey": world.merchant.api_key, "userWalletId": world.merchant.wallet_id,
            "paymentRequest": sale.payment_request, "posWalletId": world.pos.wallet_id,
        }, expires_at=datetime.now(UTC) + timedelta(minutes=30))
    finally:
        await store.close()
    async with world.http() as client:
        await world.pay(sale.payment_request)
        status = await world.wait_for_status(client, sale.payment_hash, {"completed"})
    assert leg(status, "tip:1")["currency"] == "USD"
    assert "leg_wallet_resolved" in [event["type"] for event in status["events"]]
    assert await wallet_balance(world, dora["usdWalletId"]) == cents
    assert await wallet_balance(world, dora["btcWalletId"]) == 0
    assert await world.balance(world.merchant) == 1_200
    ledger = await world.ledger()
    assert ledger["violations"] == []
    assert len(into(ledger, "payments", dora["usdWalletId"])) == 1


async def test_a_leg_worth_less_than_a_cent_to_a_usd_wallet_is_refused_before_any_invoice(world: World) -> None:
    """Blink refuses to invoice a USD wallet for less than a cent; such a sale would leave its sats stuck."""
    shop = await sim_account(world, "usd_shop", scopes=["READ"])
    await sim_account(world, "dora_usd", scopes=["READ"], defaultWalletCurrency="USD")
    assert await cents_for(world, 10) == 0 < await cents_for(world, 100)
    await world.clear_operations()
    async with world.http() as client:
        base = await client.post("/api/blink/create-invoice", json={
            "userWalletId": shop["usdWalletId"], "apiKey": shop["apiKey"], "baseAmount": 10,
        })
        tip = await client.post("/api/blink/create-invoice", json={
            "userWalletId": world.merchant.wallet_id, "apiKey": world.merchant.api_key, "baseAmount": 1000,
            "tipAmount": 10, "tipRecipients": [{"username": "dora_usd", "share": 100}],
        })
    assert (base.status_code, base.json()["field"]) == (400, "baseAmount"), base.text
    assert "less than one US cent" in base.json()["error"]
    assert (tip.status_code, tip.json()["field"]) == (400, "tipRecipients"), tip.text
    assert "@dora_usd" in tip.json()["error"]
    assert "lnInvoiceCreate" not in await world.operations()
