"""The /sim/ control API: accounts, outside payments, wallets, the ledger view, and its 4xx answers."""

from tests.sim import documents as doc
from tests.sim.conftest import Sim


async def test_create_account_returns_ids_and_a_key(sim: Sim) -> None:
    response = await sim.http.post("/sim/accounts", json={"username": "carol_ctl", "balance": 42})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"accountId", "username", "apiKey", "btcWalletId", "usdWalletId", "scopes"}
    assert body["apiKey"].startswith("blink_") and body["scopes"] == ["READ", "RECEIVE", "WRITE"]
    assert (await sim.http.get(f"/sim/wallets/{body['btcWalletId']}")).json()["balance"] == 42
    again = await sim.http.post("/sim/accounts", json={"username": "CAROL_ctl"})
    assert again.status_code == 409 and "taken" in again.json()["error"]


async def test_extra_keys_carry_their_own_scopes(sim: Sim) -> None:
    shop = await sim.account()
    response = await sim.http.post(f"/sim/accounts/{shop.account_id}/keys", json={"scopes": ["RECEIVE"]})
    assert response.status_code == 201
    receive_only = response.json()["apiKey"]
    body = (await sim.gql(doc.ME, key=receive_only)).json()
    assert body["errors"][0]["message"].endswith("(code: AuthorizationError: not authorized to read data)")
    data = await sim.data(doc.LN_INVOICE_CREATE, {"input": {"walletId": shop.btc_wallet_id, "amount": 5}}, receive_only)
    assert data["lnInvoiceCreate"]["errors"] == []


async def test_bad_input_is_a_4xx_with_a_message(sim: Sim) -> None:
    cases = [
        ("POST", "/sim/accounts", {"username": "x"}, 400),
        ("POST", "/sim/accounts", {"username": "neg_balance", "balance": -1}, 400),
        ("POST", "/sim/accounts", {"username": "typo_field", "balanse": 5}, 400),
        ("POST", "/sim/faults", {"operation": "lnInvoicePaymentSend", "errorRate": 2}, 400),
        ("POST", "/sim/faults", {"operation": "me", "lossAnswer": True}, 400),
        ("POST", "/sim/webhooks", {"url": "http://x", "secret": "not-a-secret"}, 400),
        ("POST", "/sim/pay", {"paymentRequest": "garbage"}, 400),
        ("GET", "/sim/wallets/no-such-wallet", None, 404),
        ("DELETE", "/sim/faults/fault-999999", None, 404),
        ("POST", "/sim/clock", {"advanceSeconds": -5}, 400),
    ]
    for method, path, body, status in cases:
        response = await sim.http.request(method, path, json=body)
        assert response.status_code == status, (path, body, response.text)
        assert response.json()["error"]
    assert (await sim.http.post("/sim/accounts", content=b"{nope")).status_code == 400


async def test_sim_pay_credits_the_wallet_once(sim: Sim) -> None:
    shop = await sim.account()
    invoice = await sim.invoice(shop.btc_wallet_id, 1_111, "outside customer")
    response = await sim.http.post("/sim/pay", json={"paymentRequest": invoice["paymentRequest"]})
    assert response.status_code == 200
    body = response.json()
    assert (body["paymentHash"], body["walletId"], body["amount"], body["status"]) == (
        invoice["paymentHash"], shop.btc_wallet_id, 1_111, "PAID")
    again = await sim.http.post("/sim/pay", json={"paymentRequest": invoice["paymentRequest"]})
    assert again.status_code == 409 and again.json()["code"] == "ALREADY_PAID"
    wallet = (await sim.http.get(f"/sim/wallets/{shop.btc_wallet_id}")).json()
    assert wallet["balance"] == 1_111
    assert [(t["direction"], t["amount"], t["settlement"]) for t in wallet["transactions"]] == [
        ("RECEIVE", 1_111, "lightning")]


async def test_sim_pay_refuses_an_expired_invoice(sim: Sim) -> None:
    shop = await sim.account()
    invoice = await sim.invoice(shop.btc_wallet_id, 10, expires_in=2)
    await sim.http.post("/sim/clock", json={"advanceSeconds": 121})
    response = await sim.http.post("/sim/pay", json={"paymentRequest": invoice["paymentRequest"]})
    assert response.status_code == 409 and response.json()["code"] == "INVOICE_EXPIRED"
    assert await sim.balance(shop.btc_wallet_id) == 0


async def test_ledger_view_shows_everything_needed_for_invariant_checks(sim: Sim) -> None:
    pos, staff = await sim.account(balance=500), await sim.account()
    invoice = await sim.invoice(staff.btc_wallet_id, 200)
    await sim.send(pos, invoice["paymentRequest"])
    await sim.send(pos, invoice["paymentRequest"])
    ledger = await sim.ledger()
    assert ledger["violations"] == []
    assert {"accounts", "wallets", "invoices", "payments", "sendAttempts", "totals"} <= set(ledger)
    assert [p for p in ledger["payments"] if p["paymentHash"] == invoice["paymentHash"]][0]["amount"] == 200
    attempts = [a["result"] for a in ledger["sendAttempts"] if a["paymentHash"] == invoice["paymentHash"]]
    assert attempts == ["SUCCESS", "ALREADY_PAID"]
    totals = ledger["totals"]
    assert totals["btcBalances"] + totals["inFlight"] == totals["minted"] + totals["externalIn"] - totals["externalOut"]
    assert "apiKey" not in str(ledger)


async def test_received_operations_are_counted_by_root_field(sim: Sim) -> None:
    shop = await sim.account()
    await sim.http.delete("/sim/operations")
    for _ in range(3):
        await sim.data(doc.ME, key=shop.api_key)
    await sim.data(doc.ACCOUNT_DEFAULT_WALLET, {"username": shop.username})
    refused = await sim.gql(doc.ME, key=None)
    assert refused.json()["errors"][0]["extensions"]["code"] == "NOT_AUTHORIZED"
    counted = (await sim.http.get("/sim/operations")).json()
    assert counted == {"operations": {"me": 4, "accountDefaultWallet": 1}, "total": 5}
    assert (await sim.http.delete("/sim/operations")).json() == {"cleared": 5}
    assert (await sim.http.get("/sim/operations")).json() == {"operations": {}, "total": 0}


async def test_an_account_can_default_to_its_usd_wallet(sim: Sim) -> None:
    name = "usd_default_ctl"
    response = await sim.http.post("/sim/accounts", json={"username": name, "defaultWalletCurrency": "USD"})
    assert response.status_code == 201, response.text
    body = response.json()
    me = (await sim.data(doc.ME, key=body["apiKey"]))["me"]["defaultAccount"]
    assert me["defaultWalletId"] == body["usdWalletId"]
    default = (await sim.data(doc.ACCOUNT_DEFAULT_WALLET, {"username": name}))["accountDefaultWallet"]
    assert (default["id"], default["walletCurrency"]) == (body["usdWalletId"], "USD")
    btc = (await sim.data(doc.ACCOUNT_DEFAULT_WALLET, {"username": name, "walletCurrency": "BTC"}))
    assert btc["accountDefaultWallet"]["id"] == body["btcWalletId"]
    plain = (await sim.http.post("/sim/accounts", json={"username": "btc_default_ctl"})).json()
    assert (await sim.data(doc.ME, key=plain["apiKey"]))["me"]["defaultAccount"]["defaultWalletId"] == plain["btcWalletId"]
