"""USD wallet invoices, intraLedgerPaymentSend, csvTransactions and Blink's payload errors for sends."""

import base64
import csv
import io

from tests.sim import documents as doc
from tests.sim.conftest import Account, Sim
from tipsplit.sim.bolt11 import decode_payment_request

UNKNOWN_WALLET = ("Unexpected error occurred, please try again or contact support if it persists "
                  "(code: CouldNotFindWalletFromIdError: Unknown error)")
NOBODY = "0f0e0d0c-0b0a-4908-8706-050403020100"


async def _usd_price(sim: Sim, dollars_per_btc: int) -> None:
    response = await sim.http.post("/sim/prices", json={"currency": "USD", "btcPrice": dollars_per_btc})
    assert response.status_code == 200


async def test_usd_invoices_are_priced_in_sats_at_the_served_price_and_credit_cents(sim: Sim) -> None:
    await _usd_price(sim, 100_000)  # 1 sat = 0.1 cent
    try:
        shop, payer = await sim.account(), await sim.account(balance=100_000)
        own = (await sim.data(doc.LN_USD_INVOICE_CREATE, {"input": {"walletId": shop.usd_wallet_id, "amount": 125}},
                              shop.api_key))["lnUsdInvoiceCreate"]
        assert own["errors"] == [] and own["invoice"]["satoshis"] == 1_250
        assert decode_payment_request(own["invoice"]["paymentRequest"]).expiry_seconds == 5 * 60
        for_them = (await sim.data(doc.LN_USD_INVOICE_CREATE_ON_BEHALF, {"input": {
            "recipientWalletId": shop.usd_wallet_id, "amount": "7", "expiresIn": 60}}))
        invoice = for_them["lnUsdInvoiceCreateOnBehalfOfRecipient"]["invoice"]
        assert invoice["satoshis"] == 70
        assert decode_payment_request(invoice["paymentRequest"]).expiry_seconds == 5 * 60, "USD invoices: 5 min at most"
        in_sats = (await sim.data(doc.LN_USD_INVOICE_BTC_DENOMINATED_ON_BEHALF, {"input": {
            "recipientWalletId": shop.usd_wallet_id, "amount": 1_009}}))
        btc_denominated = in_sats["lnUsdInvoiceBtcDenominatedCreateOnBehalfOfRecipient"]["invoice"]
        assert btc_denominated["satoshis"] == 1_009
        for request in (own["invoice"]["paymentRequest"], invoice["paymentRequest"], btc_denominated["paymentRequest"]):
            assert (await sim.send(payer, request))["status"] == "SUCCESS"
        assert await sim.balance(shop.usd_wallet_id) == 125 + 7 + 100  # 1,009 sats buy 100 cents, rounded down
        assert await sim.balance(payer.btc_wallet_id) == 100_000 - 1_250 - 70 - 1_009
        ledger = await sim.ledger()
        assert ledger["violations"] == [] and ledger["totals"]["usdIssued"] >= 232
    finally:
        await _usd_price(sim, 100_000)


async def test_usd_invoice_refusals_carry_blinks_texts(sim: Sim) -> None:
    shop = await sim.account()
    cases = [
        (doc.LN_USD_INVOICE_CREATE_ON_BEHALF, "lnUsdInvoiceCreateOnBehalfOfRecipient",
         {"recipientWalletId": shop.btc_wallet_id, "amount": 5}, ("Unsupported operation for wallet's currency.", "INVALID_INPUT")),
        (doc.LN_USD_INVOICE_CREATE_ON_BEHALF, "lnUsdInvoiceCreateOnBehalfOfRecipient",
         {"recipientWalletId": shop.usd_wallet_id, "amount": 0}, ("A valid usd amount is required", "INVALID_INPUT")),
        (doc.LN_USD_INVOICE_BTC_DENOMINATED_ON_BEHALF, "lnUsdInvoiceBtcDenominatedCreateOnBehalfOfRecipient",
         {"recipientWalletId": shop.usd_wallet_id, "amount": 5},
         ("Amount sent was too low for recipient's usd wallet.", "INVALID_INPUT")),
        (doc.LN_INVOICE_CREATE_ON_BEHALF, "lnInvoiceCreateOnBehalfOfRecipient",
         {"recipientWalletId": shop.usd_wallet_id, "amount": 5}, ("Unsupported operation for wallet's currency.", "INVALID_INPUT")),
        (doc.LN_INVOICE_CREATE_ON_BEHALF, "lnInvoiceCreateOnBehalfOfRecipient",
         {"recipientWalletId": shop.btc_wallet_id, "amount": 0}, ("A valid satoshi amount is required", "INVALID_INPUT")),
        (doc.LN_INVOICE_CREATE_ON_BEHALF, "lnInvoiceCreateOnBehalfOfRecipient",
         {"recipientWalletId": NOBODY, "amount": 5}, (UNKNOWN_WALLET, "UNEXPECTED_CLIENT_ERROR")),
    ]
    for document, field, fields, expected in cases:
        payload = (await sim.data(document, {"input": fields}))[field]
        assert payload["invoice"] is None
        assert [(e["message"], e["code"]) for e in payload["errors"]] == [expected], fields


async def test_btc_invoice_expiry_follows_blinks_bounds(sim: Sim) -> None:
    staff = await sim.account()
    for minutes, seconds in ((None, 4 * 3600), (0, 4 * 3600), (1, 60), (1440, 86400), (1441, 4 * 3600)):
        fields = {"recipientWalletId": staff.btc_wallet_id, "amount": 5}
        if minutes is not None:
            fields["expiresIn"] = minutes
        invoice = (await sim.data(doc.LN_INVOICE_CREATE_ON_BEHALF, {"input": fields}))[
            "lnInvoiceCreateOnBehalfOfRecipient"]["invoice"]
        assert decode_payment_request(invoice["paymentRequest"]).expiry_seconds == seconds, minutes


async def _intraledger(sim: Sim, sender: Account, recipient_wallet_id: str, amount: int) -> dict[str, object]:
    data = await sim.data(doc.INTRALEDGER_PAYMENT_SEND, {"input": {
        "walletId": sender.btc_wallet_id, "recipientWalletId": recipient_wallet_id, "amount": amount,
        "memo": "rent"}}, sender.api_key)
    payload: dict[str, object] = data["intraLedgerPaymentSend"]
    return payload


async def test_intraledger_payment_send_moves_sats_and_converts_for_usd_wallets(sim: Sim) -> None:
    alice, bob = await sim.account(balance=10_000), await sim.account()
    sent = await _intraledger(sim, alice, bob.btc_wallet_id, 2_500)
    assert (sent["status"], sent["errors"]) == ("SUCCESS", [])
    tx = sent["transaction"]
    assert tx["direction"] == "SEND" and tx["settlementAmount"] == -2_500 and tx["memo"] == "rent"  # type: ignore[index]
    assert tx["initiationVia"] == {"__typename": "InitiationViaIntraLedger",  # type: ignore[index]
                                   "counterPartyWalletId": bob.btc_wallet_id, "counterPartyUsername": bob.username}
    converted = await _intraledger(sim, alice, bob.usd_wallet_id, 1_000)
    assert converted["status"] == "SUCCESS"
    assert (await sim.balance(bob.btc_wallet_id), await sim.balance(bob.usd_wallet_id)) == (2_500, 100)
    assert await sim.balance(alice.btc_wallet_id) == 6_500


async def test_intraledger_payment_send_refusals(sim: Sim) -> None:
    alice, bob = await sim.account(balance=100), await sim.account()
    cases = [
        (bob.btc_wallet_id, 101, ("Payment amount '101' sats exceeds balance '100'", "INSUFFICIENT_BALANCE")),
        (alice.btc_wallet_id, 5, ("User tried to pay themselves", "CANT_PAY_SELF")),
        (NOBODY, 5, (UNKNOWN_WALLET, "UNEXPECTED_CLIENT_ERROR")),
        (bob.btc_wallet_id, 0, ("A valid satoshi amount is required", "INVALID_INPUT")),
    ]
    for wallet_id, amount, expected in cases:
        refused = await _intraledger(sim, alice, wallet_id, amount)
        assert refused["status"] == "FAILURE"
        assert [(e["message"], e["code"]) for e in refused["errors"]] == [expected]  # type: ignore[attr-defined]
    assert await sim.balance(alice.btc_wallet_id) == 100


async def test_sends_answer_blinks_codes(sim: Sim) -> None:
    pos, staff = await sim.account(balance=1_000), await sim.account()
    own = await sim.invoice(pos.btc_wallet_id, 10)
    refused = await sim.send(pos, own["paymentRequest"])
    assert [(e["code"], e["message"]) for e in refused["errors"]] == [("CANT_PAY_SELF", "User tried to pay themselves")]
    paid = await sim.invoice(staff.btc_wallet_id, 10)
    await sim.http.post("/sim/pay", json={"paymentRequest": paid["paymentRequest"]})
    again = await sim.send(pos, paid["paymentRequest"])
    assert (again["status"], again["errors"], again["transaction"]) == ("ALREADY_PAID", [], None)


async def test_paying_from_a_usd_wallet_says_it_is_not_supported(sim: Sim) -> None:
    pos, staff = await sim.account(balance=1_000), await sim.account()
    invoice = await sim.invoice(staff.btc_wallet_id, 10)
    body = (await sim.gql(doc.LN_INVOICE_PAYMENT_SEND, {"input": {
        "walletId": pos.usd_wallet_id, "paymentRequest": invoice["paymentRequest"]}}, pos.api_key)).json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "NOT_IMPLEMENTED"


async def test_csv_transactions_lists_every_wallet_of_the_account_in_blinks_columns(sim: Sim) -> None:
    shop = await sim.account(balance=5_000)
    invoice = await sim.invoice(shop.btc_wallet_id, 700, "latte")
    await sim.http.post("/sim/pay", json={"paymentRequest": invoice["paymentRequest"]})
    await _intraledger(sim, shop, shop.usd_wallet_id, 1_000)
    data = await sim.data(doc.CSV_TRANSACTIONS, {"walletIds": [shop.btc_wallet_id]}, shop.api_key)
    text = base64.b64decode(data["me"]["defaultAccount"]["csvTransactions"]).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0])[:8] == ["id", "walletId", "type", "credit", "debit", "fee", "currency", "timestamp"]
    assert sorted((r["walletId"] == shop.usd_wallet_id, r["type"], r["credit"], r["debit"], r["currency"])
                  for r in rows) == [
        (False, "invoice", "700", "0", "BTC"), (False, "on_us", "0", "1000", "BTC"), (True, "on_us", "100", "0", "USD")]
    assert next(r for r in rows if r["type"] == "invoice")["paymentHash"] == invoice["paymentHash"]
