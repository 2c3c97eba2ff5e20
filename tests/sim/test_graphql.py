"""Every served operation over real HTTP with raw documents, including auth, scopes and Blink's error shapes."""

import hashlib

import pytest
from graphql import parse, validate

from tests.sim import documents as doc
from tests.sim.conftest import Sim
from tipsplit.blink.schema import blink_schema
from tipsplit.sim.bolt11 import decode_payment_request

NOT_YOURS = ("Unexpected error occurred, please try again or contact support if it persists "
             "(code: InvalidWalletForAccountError: Unknown error)")


def test_every_document_the_tests_send_validates_against_the_schema() -> None:
    for document in doc.ALL:
        assert validate(blink_schema(), parse(document)) == []


async def test_me_lists_the_callers_wallets(sim: Sim) -> None:
    alice = await sim.account(balance=1_000)
    me = (await sim.data(doc.ME, key=alice.api_key))["me"]
    assert me["username"] == alice.username
    account = me["defaultAccount"]
    assert account["id"] == alice.account_id and account["defaultWalletId"] == alice.btc_wallet_id
    assert {(w["id"], w["walletCurrency"], w["balance"]) for w in account["wallets"]} == {
        (alice.btc_wallet_id, "BTC", 1_000), (alice.usd_wallet_id, "USD", 0),
    }


async def test_an_unknown_api_key_is_a_401_with_a_graphql_error(sim: Sim) -> None:
    response = await sim.gql(doc.ME, key="blink_nope")
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_anonymous_me_is_not_authorized(sim: Sim) -> None:
    body = (await sim.gql(doc.ME)).json()
    assert body["data"] == {"me": None}
    assert [(e["message"], e["extensions"]["code"]) for e in body["errors"]] == [("Not authorized", "NOT_AUTHORIZED")]


async def test_a_key_without_the_scope_is_forbidden(sim: Sim) -> None:
    reader = await sim.account(balance=100, scopes=["READ"])
    payee = await sim.account()
    invoice = await sim.invoice(payee.btc_wallet_id, 10)
    response = await sim.gql(
        doc.LN_INVOICE_PAYMENT_SEND,
        {"input": {"walletId": reader.btc_wallet_id, "paymentRequest": invoice["paymentRequest"]}},
        reader.api_key,
    )
    assert response.json()["data"] is None
    assert [(e["message"], e["extensions"]["code"]) for e in response.json()["errors"]] == [(
        "Unexpected error occurred, please try again or contact support if it persists "
        "(code: AuthorizationError: not authorized to execute mutations)", "UNEXPECTED_CLIENT_ERROR")]
    created = await sim.gql(doc.LN_INVOICE_CREATE, {"input": {"walletId": reader.btc_wallet_id, "amount": 5}}, reader.api_key)
    assert created.json()["errors"][0]["message"].endswith("not authorized to execute mutations)")
    assert await sim.balance(reader.btc_wallet_id) == 100


async def test_invalid_documents_are_refused_with_400(sim: Sim) -> None:
    response = await sim.http.post("/graphql", json={"query": "query { me { noSuchField } }"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert (await sim.http.post("/graphql", content=b"not json")).status_code == 400


async def test_account_default_wallet_by_username(sim: Sim) -> None:
    bob = await sim.account()
    btc = (await sim.data(doc.ACCOUNT_DEFAULT_WALLET, {"username": bob.username.upper()}))["accountDefaultWallet"]
    assert btc == {"id": bob.btc_wallet_id, "walletCurrency": "BTC", "currency": "BTC"}
    usd = await sim.data(doc.ACCOUNT_DEFAULT_WALLET, {"username": bob.username, "walletCurrency": "USD"})
    assert usd["accountDefaultWallet"]["id"] == bob.usd_wallet_id


async def test_account_default_wallet_for_an_unknown_username(sim: Sim) -> None:
    body = (await sim.gql(doc.ACCOUNT_DEFAULT_WALLET, {"username": "nobody_here"})).json()
    assert body["data"] is None
    error = body["errors"][0]
    assert error["message"] == "Account does not exist for username nobody_here"
    assert error["extensions"]["code"] == "NOT_FOUND"


async def test_ln_invoice_create_on_the_callers_btc_wallet(sim: Sim) -> None:
    shop = await sim.account()
    data = await sim.data(
        doc.LN_INVOICE_CREATE,
        {"input": {"walletId": shop.btc_wallet_id, "amount": 2_100, "memo": "order 7", "expiresIn": 15}},
        shop.api_key,
    )
    payload = data["lnInvoiceCreate"]
    assert payload["errors"] == []
    invoice = payload["invoice"]
    decoded = decode_payment_request(invoice["paymentRequest"])
    assert (decoded.amount_sats, decoded.payment_hash, decoded.description) == (2_100, invoice["paymentHash"], "order 7")
    assert decoded.expiry_seconds == 15 * 60
    assert (invoice["satoshis"], invoice["paymentStatus"]) == (2_100, "PENDING")


async def test_ln_invoice_create_refuses_other_accounts_and_usd_wallets(sim: Sim) -> None:
    shop, other = await sim.account(), await sim.account()
    cases = [
        (other.btc_wallet_id, NOT_YOURS, None),
        (shop.usd_wallet_id, "Unsupported operation for wallet's currency.", "INVALID_INPUT"),
    ]
    for wallet_id, message, code in cases:
        data = await sim.data(doc.LN_INVOICE_CREATE, {"input": {"walletId": wallet_id, "amount": 10}}, shop.api_key)
        payload = data["lnInvoiceCreate"]
        assert payload["invoice"] is None
        assert [(e["message"], e["code"]) for e in payload["errors"]] == [(message, code)]


async def test_on_behalf_of_recipient_needs_no_key_but_a_btc_wallet(sim: Sim) -> None:
    staff = await sim.account()
    assert (await sim.invoice(staff.btc_wallet_id, 50))["satoshis"] == 50
    data = await sim.data(doc.LN_INVOICE_CREATE_ON_BEHALF, {"input": {"recipientWalletId": staff.usd_wallet_id, "amount": 5}})
    assert data["lnInvoiceCreateOnBehalfOfRecipient"]["errors"][0]["code"] == "INVALID_INPUT"
    data = await sim.data(doc.LN_INVOICE_CREATE_ON_BEHALF, {"input": {"recipientWalletId": "no-such-wallet", "amount": 5}})
    assert data["lnInvoiceCreateOnBehalfOfRecipient"]["errors"] == [{"message": "Invalid value for WalletId", "code": None}]


async def test_payment_send_success_then_already_paid(sim: Sim) -> None:
    pos, staff = await sim.account(balance=10_000), await sim.account()
    invoice = await sim.invoice(staff.btc_wallet_id, 3_000, "tip")
    first = await sim.send(pos, invoice["paymentRequest"])
    assert (first["status"], first["errors"]) == ("SUCCESS", [])
    tx = first["transaction"]
    assert (tx["direction"], tx["settlementAmount"], tx["status"]) == ("SEND", -3_000, "SUCCESS")
    assert tx["initiationVia"]["paymentHash"] == invoice["paymentHash"]
    assert tx["settlementVia"]["counterPartyUsername"] == staff.username
    second = await sim.send(pos, invoice["paymentRequest"])
    assert (second["status"], second["errors"]) == ("ALREADY_PAID", [])
    assert second["transaction"]["id"] == tx["id"], "Blink answers ALREADY_PAID with the wallet's earlier send"
    outsider = await sim.account(balance=5_000)
    third = await sim.send(outsider, invoice["paymentRequest"])
    assert (third["status"], third["transaction"]) == ("ALREADY_PAID", None)
    assert (await sim.balance(pos.btc_wallet_id), await sim.balance(staff.btc_wallet_id)) == (7_000, 3_000)


async def test_payment_send_failures_carry_errors_and_move_nothing(sim: Sim) -> None:
    pos, staff = await sim.account(balance=100), await sim.account()
    big = await sim.invoice(staff.btc_wallet_id, 500)
    result = await sim.send(pos, big["paymentRequest"])
    assert result["status"] == "FAILURE" and result["errors"][0]["code"] == "INSUFFICIENT_BALANCE"
    result = await sim.send(pos, "lnbc1invalid")
    assert result["status"] == "FAILURE"
    assert (result["errors"][0]["code"], result["errors"][0]["message"]) == (
        "INVOICE_DECODE_ERROR", "Invoice has an unknown character, couldn't decode.")
    data = await sim.data(
        doc.LN_INVOICE_PAYMENT_SEND,
        {"input": {"walletId": staff.btc_wallet_id, "paymentRequest": big["paymentRequest"]}}, pos.api_key,
    )
    assert data["lnInvoicePaymentSend"]["errors"] == [{"message": NOT_YOURS, "code": None, "path": None}]
    assert data["lnInvoicePaymentSend"]["status"] is None
    assert await sim.balance(pos.btc_wallet_id) == 100


async def test_an_expired_invoice_refuses_payment(sim: Sim) -> None:
    pos, staff = await sim.account(balance=1_000), await sim.account()
    invoice = await sim.invoice(staff.btc_wallet_id, 10, expires_in=1)
    await sim.http.post("/sim/clock", json={"advanceSeconds": 61})
    result = await sim.send(pos, invoice["paymentRequest"])
    assert result["status"] == "FAILURE"
    assert (result["errors"][0]["code"], result["errors"][0]["message"]) == (
        "LIGHTNING_PAYMENT_ERROR", "Invoice already expired, or has bad payment hash")
    status = await sim.data(doc.STATUS_BY_HASH, {"input": {"paymentHash": invoice["paymentHash"]}})
    assert status["lnInvoicePaymentStatusByHash"]["status"] == "EXPIRED"
    assert await sim.balance(pos.btc_wallet_id) == 1_000


async def test_status_queries_show_the_preimage_once_paid(sim: Sim) -> None:
    pos, staff = await sim.account(balance=1_000), await sim.account()
    invoice = await sim.invoice(staff.btc_wallet_id, 10)
    before = await sim.data(doc.STATUS_BY_REQUEST, {"input": {"paymentRequest": invoice["paymentRequest"]}})
    assert before["lnInvoicePaymentStatusByPaymentRequest"] == {
        "paymentHash": invoice["paymentHash"], "paymentPreimage": None, "status": "PENDING",
    }
    await sim.send(pos, invoice["paymentRequest"])
    after = (await sim.data(doc.STATUS_BY_HASH, {"input": {"paymentHash": invoice["paymentHash"]}}))["lnInvoicePaymentStatusByHash"]
    assert after["status"] == "PAID" and after["paymentRequest"] == invoice["paymentRequest"]
    assert hashlib.sha256(bytes.fromhex(after["paymentPreimage"])).hexdigest() == invoice["paymentHash"]


async def test_status_of_an_unknown_hash_is_not_found(sim: Sim) -> None:
    body = (await sim.gql(doc.STATUS_BY_HASH, {"input": {"paymentHash": "00" * 32}})).json()
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_wallet_transactions_and_lookups_through_me(sim: Sim) -> None:
    pos, staff = await sim.account(balance=1_000), await sim.account()
    invoice = await sim.invoice(staff.btc_wallet_id, 250)
    await sim.send(pos, invoice["paymentRequest"])
    data = await sim.data(doc.WALLET_TRANSACTIONS, {"walletId": staff.btc_wallet_id, "hash": invoice["paymentHash"]}, staff.api_key)
    wallet = data["me"]["defaultAccount"]["walletById"]
    assert wallet["balance"] == 250
    assert [e["node"]["settlementAmount"] for e in wallet["transactions"]["edges"]] == [250]
    assert wallet["transactionsByPaymentHash"][0]["direction"] == "RECEIVE"
    assert wallet["invoiceByPaymentHash"]["paymentStatus"] == "PAID"


@pytest.mark.parametrize(("currency", "digits", "sat_base"), [
    ("USD", 2, 100_000_000_000),       # 100,000 USD/BTC: one sat is 0.1 cent
    ("EUR", 2, 92_000_000_000),
    ("JPY", 0, 150_000_000_000),       # 15,000,000 JPY/BTC: one sat is 0.15 yen
    ("KRW", 0, 1_350_000_000_000),
])
async def test_realtime_price_in_minor_units(sim: Sim, currency: str, digits: int, sat_base: int) -> None:
    price = (await sim.data(doc.REALTIME_PRICE, {"currency": currency}))["realtimePrice"]
    assert price["denominatorCurrencyDetails"]["fractionDigits"] == digits
    assert price["btcSatPrice"] == {"base": sat_base, "offset": 12}
    assert price["denominatorCurrency"] == currency


async def test_prices_can_be_set(sim: Sim) -> None:
    response = await sim.http.post("/sim/prices", json={"currency": "CHF", "btcPrice": "50000"})
    assert response.status_code == 200
    price = (await sim.data(doc.REALTIME_PRICE, {"currency": "CHF"}))["realtimePrice"]
    assert price["btcSatPrice"] == {"base": 50_000_000_000, "offset": 12}
    assert price["usdCentPrice"] == {"base": 500_000_000_000, "offset": 12}
    await sim.http.post("/sim/prices", json={"currency": "CHF", "btcPrice": "88000"})
    created = await sim.http.post("/sim/prices", json={"currency": "ISK", "btcPrice": 14_000_000, "fractionDigits": 0})
    assert created.json()["btcSatPrice"] == {"base": 140_000_000_000, "offset": 12}
    assert (await sim.http.post("/sim/prices", json={"currency": "XYZ", "btcPrice": 1})).status_code == 400
    body = (await sim.gql(doc.REALTIME_PRICE, {"currency": "XYZ"})).json()
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
