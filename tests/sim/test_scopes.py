"""READ, RECEIVE and WRITE as Blink's shield, walletId and scope middlewares apply them, field by field."""

from typing import Any

import pytest

from tests.sim import documents as doc
from tests.sim.conftest import Account, Sim
from tipsplit.sim import access
from tipsplit.sim.schema import sim_schema

READ_REFUSED = ("Unexpected error occurred, please try again or contact support if it persists "
                "(code: AuthorizationError: not authorized to read data)")
WRITE_REFUSED = ("Unexpected error occurred, please try again or contact support if it persists "
                 "(code: AuthorizationError: not authorized to execute mutations)")


def test_every_root_field_of_the_schema_has_blinks_access_level() -> None:
    schema = sim_schema()
    assert schema.query_type is not None and schema.mutation_type is not None
    assert set(schema.query_type.fields) == set(access.QUERIES)
    assert set(schema.mutation_type.fields) == set(access.MUTATIONS)


async def _key(sim: Sim, account: Account, scopes: list[str]) -> str:
    response = await sim.http.post(f"/sim/accounts/{account.account_id}/keys", json={"scopes": scopes})
    key: str = response.json()["apiKey"]
    return key


async def _call(sim: Sim, operation: str, account: Account, key: str | None, payee: Account) -> dict[str, Any]:
    """Run one operation as `key`; answer the top-level error's message, or 'ok'."""
    invoice = await sim.invoice(payee.btc_wallet_id, 5)
    documents: dict[str, tuple[str, dict[str, Any]]] = {
        "me": (doc.ME, {}),
        "lnInvoiceCreate": (doc.LN_INVOICE_CREATE, {"input": {"walletId": account.btc_wallet_id, "amount": 5}}),
        "lnUsdInvoiceCreate": (doc.LN_USD_INVOICE_CREATE, {"input": {"walletId": account.usd_wallet_id, "amount": 5}}),
        "lnInvoicePaymentSend": (doc.LN_INVOICE_PAYMENT_SEND, {"input": {
            "walletId": account.btc_wallet_id, "paymentRequest": invoice["paymentRequest"]}}),
        "intraLedgerPaymentSend": (doc.INTRALEDGER_PAYMENT_SEND, {"input": {
            "walletId": account.btc_wallet_id, "recipientWalletId": payee.btc_wallet_id, "amount": 5}}),
        "lnInvoiceCreateOnBehalfOfRecipient": (doc.LN_INVOICE_CREATE_ON_BEHALF, {"input": {
            "recipientWalletId": payee.btc_wallet_id, "amount": 5}}),
        "lnInvoicePaymentStatusByHash": (doc.STATUS_BY_HASH, {"input": {"paymentHash": invoice["paymentHash"]}}),
        "realtimePrice": (doc.REALTIME_PRICE, {"currency": "USD"}),
    }
    query, variables = documents[operation]
    body = (await sim.gql(query, variables, key)).json()
    if "errors" in body:
        return {"refused": body["errors"][0]["message"], "code": body["errors"][0]["extensions"]["code"]}
    payload = body["data"][operation]
    assert not (isinstance(payload, dict) and payload.get("errors")), payload
    return {"refused": None}


@pytest.mark.parametrize(("scopes", "operation", "refusal"), [
    (["READ"], "me", None),
    (["RECEIVE"], "me", READ_REFUSED),
    (["WRITE"], "me", READ_REFUSED),
    (["READ"], "lnInvoiceCreate", WRITE_REFUSED),
    (["RECEIVE"], "lnInvoiceCreate", None),
    (["WRITE"], "lnInvoiceCreate", None),
    (["RECEIVE"], "lnUsdInvoiceCreate", None),
    (["READ"], "lnUsdInvoiceCreate", WRITE_REFUSED),
    (["RECEIVE"], "lnInvoicePaymentSend", WRITE_REFUSED),
    (["READ", "RECEIVE"], "lnInvoicePaymentSend", WRITE_REFUSED),
    (["WRITE"], "lnInvoicePaymentSend", None),
    (["RECEIVE"], "intraLedgerPaymentSend", WRITE_REFUSED),
    (["WRITE"], "intraLedgerPaymentSend", None),
    (["READ"], "lnInvoiceCreateOnBehalfOfRecipient", None),
    (["RECEIVE"], "lnInvoicePaymentStatusByHash", None),
    (["WRITE"], "realtimePrice", None),
])
async def test_each_scope_opens_what_blink_opens(sim: Sim, scopes: list[str], operation: str, refusal: str | None) -> None:
    account, payee = await sim.account(balance=1_000), await sim.account()
    answer = await _call(sim, operation, account, await _key(sim, account, scopes), payee)
    assert answer["refused"] == refusal
    if refusal is not None:
        assert answer["code"] == "UNEXPECTED_CLIENT_ERROR"
    assert await sim.balance(payee.btc_wallet_id) == (5 if operation.endswith("PaymentSend") and not refusal else 0)


@pytest.mark.parametrize("operation", ["me", "lnInvoiceCreate", "lnInvoicePaymentSend", "intraLedgerPaymentSend"])
async def test_without_a_key_authed_fields_are_not_authorized(sim: Sim, operation: str) -> None:
    account, payee = await sim.account(balance=1_000), await sim.account()
    assert await _call(sim, operation, account, None, payee) == {"refused": "Not authorized", "code": "NOT_AUTHORIZED"}


@pytest.mark.parametrize("operation", ["lnInvoiceCreateOnBehalfOfRecipient", "lnInvoicePaymentStatusByHash",
                                       "realtimePrice"])
async def test_public_fields_need_no_key(sim: Sim, operation: str) -> None:
    account, payee = await sim.account(), await sim.account()
    assert await _call(sim, operation, account, None, payee) == {"refused": None}


async def test_the_wallet_check_comes_before_the_scope_check(sim: Sim) -> None:
    """Blink's walletId middleware wraps the scope middleware: a foreign wallet is refused in the payload first."""
    account, other = await sim.account(balance=100), await sim.account(balance=100)
    reader = await _key(sim, account, ["READ"])
    data = await sim.data(doc.LN_INVOICE_CREATE, {"input": {"walletId": other.btc_wallet_id, "amount": 5}}, reader)
    assert data["lnInvoiceCreate"]["invoice"] is None
    assert data["lnInvoiceCreate"]["errors"][0]["message"].endswith("(code: InvalidWalletForAccountError: Unknown error)")


async def test_an_unsupported_authed_mutation_still_asks_for_a_key_first(sim: Sim) -> None:
    body = (await sim.gql('mutation { userLogout(input: {deviceToken: "x"}) { success } }')).json()
    assert [(e["message"], e["extensions"]["code"]) for e in body["errors"]] == [("Not authorized", "NOT_AUTHORIZED")]
