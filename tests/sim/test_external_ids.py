"""externalId as Blink keeps it: validated, defaulted to the payment hash, unique per account."""

import asyncio

from tests.sim import documents as doc
from tests.sim.conftest import Account, Sim

DUPLICATE = "External id for invoice or transaction already exists"


async def _create_own(sim: Sim, account: Account, external_id: str | None) -> dict[str, object]:
    fields: dict[str, object] = {"walletId": account.btc_wallet_id, "amount": 10}
    if external_id is not None:
        fields["externalId"] = external_id
    payload: dict[str, object] = (await sim.data(doc.LN_INVOICE_CREATE, {"input": fields}, account.api_key))["lnInvoiceCreate"]
    return payload


async def _create_for(sim: Sim, wallet_id: str, external_id: str) -> dict[str, object]:
    data = await sim.data(doc.LN_INVOICE_CREATE_ON_BEHALF,
                          {"input": {"recipientWalletId": wallet_id, "amount": 10, "externalId": external_id}})
    payload: dict[str, object] = data["lnInvoiceCreateOnBehalfOfRecipient"]
    return payload


async def test_an_external_id_is_unique_per_account_across_both_invoice_mutations(sim: Sim) -> None:
    shop, other = await sim.account(), await sim.account()
    first = await _create_own(sim, shop, "leg-abc-1")
    assert first["errors"] == [] and first["invoice"]["externalId"] == "leg-abc-1"  # type: ignore[index]
    for again in (await _create_own(sim, shop, "leg-abc-1"), await _create_for(sim, shop.btc_wallet_id, "leg-abc-1")):
        assert again["invoice"] is None
        assert [(e["message"], e["code"]) for e in again["errors"]] == [(DUPLICATE, "INVALID_INPUT")]  # type: ignore[attr-defined]
    elsewhere = await _create_for(sim, other.btc_wallet_id, "leg-abc-1")
    assert elsewhere["errors"] == [] and elsewhere["invoice"]["externalId"] == "leg-abc-1"  # type: ignore[index]


async def test_without_an_external_id_blink_uses_the_payment_hash(sim: Sim) -> None:
    shop = await sim.account()
    created = await _create_own(sim, shop, None)
    invoice = created["invoice"]
    assert invoice["externalId"] == invoice["paymentHash"]  # type: ignore[index]


async def test_an_external_id_outside_blinks_pattern_is_refused(sim: Sim) -> None:
    shop = await sim.account()
    for bad in ("Leg-1", "leg 1", "x" * 101, "leg.1"):
        refused = await _create_own(sim, shop, bad)
        assert refused["invoice"] is None
        message = refused["errors"][0]["message"]  # type: ignore[index]
        assert message.startswith("Invalid external id string passed."), bad
    assert (await _create_own(sim, shop, "x" * 100))["errors"] == []


async def test_the_payers_transactions_by_hash_show_pending_then_success(sim: Sim) -> None:
    pos, staff = await sim.account(balance=1_000), await sim.account()
    invoice = (await _create_for(sim, staff.btc_wallet_id, "tip-leg-7"))["invoice"]
    await sim.http.post("/sim/faults", json={
        "operation": "lnInvoicePaymentSend", "pending": True, "resolveAfterMs": 500, "count": 1})
    assert (await sim.send(pos, invoice["paymentRequest"]))["status"] == "PENDING"  # type: ignore[index]
    variables = {"walletId": pos.btc_wallet_id, "hash": invoice["paymentHash"]}  # type: ignore[index]

    async def sends() -> list[dict[str, object]]:
        data = await sim.data(doc.TRANSACTIONS_BY_HASH, variables, pos.api_key)
        found: list[dict[str, object]] = data["me"]["defaultAccount"]["walletById"]["transactionsByPaymentHash"]
        return found

    held = await sends()
    assert [(t["direction"], t["status"], t["settlementAmount"]) for t in held] == [("SEND", "PENDING", -10)]
    await asyncio.sleep(0.8)
    assert [(t["direction"], t["status"]) for t in await sends()] == [("SEND", "SUCCESS")]
    assert (await sends())[0]["id"] == held[0]["id"]


async def test_a_failed_lightning_send_is_listed_as_blink_lists_it(sim: Sim) -> None:
    """Blink records the debit, voids it when the network refuses, and marks both entries FAILURE."""
    pos, staff = await sim.account(balance=1_000), await sim.account()
    invoice = (await _create_for(sim, staff.btc_wallet_id, "tip-leg-8"))["invoice"]
    await sim.http.post("/sim/faults", json={"operation": "lnInvoicePaymentSend", "failure": True, "count": 1})
    failed = await sim.send(pos, invoice["paymentRequest"])  # type: ignore[index]
    assert failed["status"] == "FAILURE" and failed["errors"][0]["code"] == "ROUTE_FINDING_ERROR"
    data = await sim.data(doc.TRANSACTIONS_BY_HASH, {"walletId": pos.btc_wallet_id, "hash": invoice["paymentHash"]},  # type: ignore[index]
                          pos.api_key)
    listed = data["me"]["defaultAccount"]["walletById"]["transactionsByPaymentHash"]
    assert sorted((t["direction"], t["status"], t["settlementAmount"]) for t in listed) == [
        ("RECEIVE", "FAILURE", 10), ("SEND", "FAILURE", -10)]
    assert await sim.balance(pos.btc_wallet_id) == 1_000
    assert (await sim.send(pos, invoice["paymentRequest"]))["status"] == "SUCCESS"  # type: ignore[index]


async def test_a_send_refused_before_it_leaves_lists_nothing(sim: Sim) -> None:
    pos, staff = await sim.account(balance=5), await sim.account()
    invoice = (await _create_for(sim, staff.btc_wallet_id, "tip-leg-9"))["invoice"]
    refused = await sim.send(pos, invoice["paymentRequest"])  # type: ignore[index]
    assert refused["errors"][0]["code"] == "INSUFFICIENT_BALANCE"
    data = await sim.data(doc.TRANSACTIONS_BY_HASH, {"walletId": pos.btc_wallet_id, "hash": invoice["paymentHash"]},  # type: ignore[index]
                          pos.api_key)
    assert data["me"]["defaultAccount"]["walletById"]["transactionsByPaymentHash"] == []
