"""Each configured fault shows up as configured, and only where it was aimed."""

import asyncio
import time

from tests.sim import documents as doc
from tests.sim.conftest import Sim


async def add_fault(sim: Sim, **rule: object) -> dict[str, object]:
    response = await sim.http.post("/sim/faults", json=rule)
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def test_latency_delays_the_answer(sim: Sim) -> None:
    await add_fault(sim, operation="realtimePrice", latencyMs=300)
    started = time.monotonic()
    await sim.data(doc.REALTIME_PRICE, {"currency": "USD"})
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    await sim.data(doc.ACCOUNT_DEFAULT_WALLET, {"username": (await sim.account()).username})
    assert time.monotonic() - started < 0.3


async def test_an_error_answers_5xx_before_anything_happens_for_count_calls(sim: Sim) -> None:
    pos, staff = await sim.account(balance=1_000), await sim.account()
    invoice = await sim.invoice(staff.btc_wallet_id, 100)
    await add_fault(sim, operation="lnInvoicePaymentSend", errorRate=1.0, errorStatus=503, count=2)
    variables = {"input": {"walletId": pos.btc_wallet_id, "paymentRequest": invoice["paymentRequest"]}}
    for _ in range(2):
        response = await sim.gql(doc.LN_INVOICE_PAYMENT_SEND, variables, pos.api_key)
        assert response.status_code == 503
        assert response.json()["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert await sim.balance(pos.btc_wallet_id) == 1_000
    assert (await sim.send(pos, invoice["paymentRequest"]))["status"] == "SUCCESS"
    faults = (await sim.http.get("/sim/faults")).json()["faults"]
    assert [(f["fired"], f["remaining"]) for f in faults] == [(2, 0)]


async def test_an_error_rate_fails_about_that_share_of_calls(sim: Sim) -> None:
    await add_fault(sim, operation="realtimePrice", errorRate=0.5)
    statuses = [(await sim.gql(doc.REALTIME_PRICE, {"currency": "EUR"})).status_code for _ in range(40)]
    assert set(statuses) == {200, 503}
    assert 8 <= statuses.count(503) <= 32


async def test_a_lost_answer_still_moves_the_money(sim: Sim) -> None:
    pos, staff = await sim.account(balance=1_000), await sim.account()
    invoice = await sim.invoice(staff.btc_wallet_id, 400)
    await add_fault(sim, operation="lnInvoicePaymentSend", loseAnswer=True, count=1)
    response = await sim.gql(
        doc.LN_INVOICE_PAYMENT_SEND,
        {"input": {"walletId": pos.btc_wallet_id, "paymentRequest": invoice["paymentRequest"]}}, pos.api_key,
    )
    assert response.status_code == 502
    assert (await sim.balance(pos.btc_wallet_id), await sim.balance(staff.btc_wallet_id)) == (600, 400)
    assert (await sim.send(pos, invoice["paymentRequest"]))["status"] == "ALREADY_PAID"


async def test_a_lost_answer_can_hang_past_a_client_timeout(sim: Sim) -> None:
    pos, staff = await sim.account(balance=1_000), await sim.account()
    invoice = await sim.invoice(staff.btc_wallet_id, 10)
    await add_fault(sim, operation="lnInvoicePaymentSend", loseAnswer=True, loseAnswerDelayMs=1_000, count=1)
    started = time.monotonic()
    response = await sim.gql(
        doc.LN_INVOICE_PAYMENT_SEND,
        {"input": {"walletId": pos.btc_wallet_id, "paymentRequest": invoice["paymentRequest"]}}, pos.api_key,
    )
    assert response.status_code == 502 and time.monotonic() - started >= 1.0
    assert await sim.balance(staff.btc_wallet_id) == 10


async def test_pending_answers_pending_until_the_payment_resolves(sim: Sim) -> None:
    pos, staff = await sim.account(balance=1_000), await sim.account()
    invoice = await sim.invoice(staff.btc_wallet_id, 300)
    await add_fault(sim, operation="lnInvoicePaymentSend", pending=True, resolveAfterMs=400, count=1)
    result = await sim.send(pos, invoice["paymentRequest"])
    assert result["status"] == "PENDING" and result["transaction"]["status"] == "PENDING"
    status = await sim.data(doc.STATUS_BY_HASH, {"input": {"paymentHash": invoice["paymentHash"]}})
    assert status["lnInvoicePaymentStatusByHash"]["status"] == "PENDING"
    assert (await sim.send(pos, invoice["paymentRequest"]))["status"] == "PENDING"
    assert (await sim.balance(pos.btc_wallet_id), await sim.balance(staff.btc_wallet_id)) == (700, 0)
    await asyncio.sleep(0.6)
    status = await sim.data(doc.STATUS_BY_HASH, {"input": {"paymentHash": invoice["paymentHash"]}})
    assert status["lnInvoicePaymentStatusByHash"]["status"] == "PAID"
    assert (await sim.balance(pos.btc_wallet_id), await sim.balance(staff.btc_wallet_id)) == (700, 300)
    assert (await sim.send(pos, invoice["paymentRequest"]))["status"] == "ALREADY_PAID"


async def test_a_payment_held_past_expiry_reads_expired_blocks_others_and_ends_paid(sim: Sim) -> None:
    pos, other, staff = await sim.account(balance=1_000), await sim.account(balance=1_000), await sim.account()
    invoice = await sim.invoice(staff.btc_wallet_id, 300, expires_in=1)
    await add_fault(sim, operation="lnInvoicePaymentSend", pending=True, resolveAfterMs=800, count=1)
    assert (await sim.send(pos, invoice["paymentRequest"]))["status"] == "PENDING"
    await sim.http.post("/sim/clock", json={"advanceSeconds": 61})
    status = (await sim.data(doc.STATUS_BY_HASH, {"input": {"paymentHash": invoice["paymentHash"]}}))
    assert status["lnInvoicePaymentStatusByHash"] == {
        "paymentHash": invoice["paymentHash"], "paymentRequest": invoice["paymentRequest"],
        "paymentPreimage": None, "status": "EXPIRED",
    }
    assert (await sim.send(other, invoice["paymentRequest"]))["status"] == "PENDING"
    refused = await sim.http.post("/sim/pay", json={"paymentRequest": invoice["paymentRequest"]})
    assert refused.status_code == 409 and refused.json()["code"] == "PAYMENT_IN_TRANSITION"
    await asyncio.sleep(1.0)
    status = (await sim.data(doc.STATUS_BY_HASH, {"input": {"paymentHash": invoice["paymentHash"]}}))
    assert status["lnInvoicePaymentStatusByHash"]["status"] == "PAID"
    assert status["lnInvoicePaymentStatusByHash"]["paymentPreimage"]
    balances = [await sim.balance(a.btc_wallet_id) for a in (pos, other, staff)]
    assert balances == [700, 1_000, 300]


async def test_one_recipient_fails_once_then_recovers(sim: Sim) -> None:
    pos = await sim.account(balance=10_000)
    alice, bob = await sim.account(prefix="alice"), await sim.account(prefix="bob")
    await add_fault(sim, operation="lnInvoicePaymentSend", username=bob.username, errorRate=1.0, count=1)
    to_alice = await sim.invoice(alice.btc_wallet_id, 100)
    to_bob = await sim.invoice(bob.btc_wallet_id, 200)
    assert (await sim.send(pos, to_alice["paymentRequest"]))["status"] == "SUCCESS"
    failed = await sim.gql(
        doc.LN_INVOICE_PAYMENT_SEND,
        {"input": {"walletId": pos.btc_wallet_id, "paymentRequest": to_bob["paymentRequest"]}}, pos.api_key,
    )
    assert failed.status_code == 503
    assert (await sim.send(pos, to_bob["paymentRequest"]))["status"] == "SUCCESS"
    assert (await sim.balance(alice.btc_wallet_id), await sim.balance(bob.btc_wallet_id)) == (100, 200)


async def test_faults_scoped_to_a_wallet_and_cleared(sim: Sim) -> None:
    staff = await sim.account()
    rule = await add_fault(sim, operation="lnInvoiceCreateOnBehalfOfRecipient", walletId=staff.btc_wallet_id, errorRate=1)
    other = await sim.account()
    assert (await sim.invoice(other.btc_wallet_id, 5))["satoshis"] == 5
    variables = {"input": {"recipientWalletId": staff.btc_wallet_id, "amount": 5}}
    assert (await sim.gql(doc.LN_INVOICE_CREATE_ON_BEHALF, variables)).status_code == 503
    assert (await sim.http.delete(f"/sim/faults/{rule['id']}")).status_code == 200
    assert (await sim.gql(doc.LN_INVOICE_CREATE_ON_BEHALF, variables)).status_code == 200
    await add_fault(sim, operation="*", errorRate=1)
    assert (await sim.gql(doc.REALTIME_PRICE, {"currency": "USD"})).status_code == 503
    assert (await sim.http.delete("/sim/faults")).json() == {"cleared": 1}
    assert (await sim.gql(doc.REALTIME_PRICE, {"currency": "USD"})).status_code == 200


async def test_a_failure_answers_failure_and_moves_nothing(sim: Sim) -> None:
    pos, staff = await sim.account(balance=1_000), await sim.account()
    invoice = await sim.invoice(staff.btc_wallet_id, 250)
    await add_fault(sim, operation="lnInvoicePaymentSend", failure=True, walletId=staff.btc_wallet_id, count=1)
    refused = await sim.send(pos, invoice["paymentRequest"])
    assert refused["status"] == "FAILURE"
    assert refused["errors"] and refused["errors"][0]["message"]
    assert (await sim.balance(pos.btc_wallet_id), await sim.balance(staff.btc_wallet_id)) == (1_000, 0)
    assert (await sim.send(pos, invoice["paymentRequest"]))["status"] == "SUCCESS"
    assert await sim.balance(staff.btc_wallet_id) == 250
