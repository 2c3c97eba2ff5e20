"""Only BTC wallets receive forwarded sats: a merchant's USD wallet is refused before any invoice exists."""

from typing import Any

from tests.service.conftest import World


async def sim_account(world: World, username: str, **fields: Any) -> dict[str, Any]:
    response = await world.sim_http.post("/sim/accounts", json={"username": username, **fields})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def wallet_balance(world: World, wallet_id: str) -> int:
    response = await world.sim_http.get(f"/sim/wallets/{wallet_id}")
    response.raise_for_status()
    return int(response.json()["balance"])


async def test_a_merchant_usd_wallet_is_refused_naming_the_field(world: World) -> None:
    shop = await sim_account(world, "usd_shop", scopes=["READ"])
    await world.clear_operations()
    async with world.http() as client:
        response = await client.post("/api/blink/create-invoice", json={
            "userWalletId": shop["usdWalletId"], "apiKey": shop["apiKey"], "baseAmount": 700,
        })
        listed = await client.get("/api/stats", headers=world.operator)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["field"] == "userWalletId"
    assert "only BTC wallets are supported as destinations for now" in body["error"]
    assert "lnInvoiceCreate" not in await world.operations()
    assert listed.json()["last24Hours"]["pending_count"] == 0
    async with world.http() as client:
        btc = await client.post("/api/blink/create-invoice", json={
            "userWalletId": shop["btcWalletId"], "apiKey": shop["apiKey"], "baseAmount": 700,
        })
    assert btc.status_code == 200, btc.text


async def test_a_recipient_whose_default_is_usd_is_tipped_in_their_btc_wallet(world: World) -> None:
    """accountDefaultWallet is asked for the BTC wallet, so a USD default never receives sats it cannot hold."""
    dora = await sim_account(world, "dora_usd", scopes=["READ"], defaultWalletCurrency="USD")
    async with world.http() as client:
        invoice = await world.create_invoice(client, baseAmount=1000, tipAmount=150,
                                             tipRecipients=[{"username": "dora_usd", "share": 100}])
        await world.pay(invoice["paymentRequest"])
        await world.wait_for_status(client, invoice["paymentHash"], {"completed"})
    assert await wallet_balance(world, dora["btcWalletId"]) == 150
    assert await wallet_balance(world, dora["usdWalletId"]) == 0
    assert await world.balance(world.merchant) == 1000
    assert await world.balance(world.pos) == 0
