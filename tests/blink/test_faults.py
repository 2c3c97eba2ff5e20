"""Each simulator fault shows up as the client behaviour money needs: retry, fail fast, or 'outcome unknown'."""

import asyncio

import httpx
import pytest

from tests.blink.conftest import NewAccount, SimControl
from tipsplit.blink.client import BlinkClient, RetryPolicy
from tipsplit.blink.errors import BlinkOutcomeUnknown, BlinkUnavailable
from tipsplit.blink.types import InvoiceStatus, PaymentSendStatus

FAST_RETRY = RetryPolicy(attempts=3, first_delay=0.01, max_delay=0.05)


def _payments_for(ledger: dict, payment_hash: str) -> list[dict]:
    return [p for p in ledger["payments"] if p["paymentHash"] == payment_hash]


async def test_latency_within_timeout_still_answers(
    sim_url: str, new_account: NewAccount, faults: SimControl
) -> None:
    account = await new_account()
    await faults.add_fault(operation="me", latencyMs=300)
    async with BlinkClient(sim_url, account.api_key, timeout=5.0) as client:
        assert (await client.me()).username == account.username


async def test_latency_beyond_read_timeout_is_unavailable_after_bounded_retries(
    sim_url: str, new_account: NewAccount, faults: SimControl
) -> None:
    account = await new_account()
    await faults.add_fault(operation="me", latencyMs=1_000)
    timeout = httpx.Timeout(connect=1.0, read=0.2, write=1.0, pool=1.0)
    async with BlinkClient(sim_url, account.api_key, timeout=timeout, retry=FAST_RETRY) as client:
        with pytest.raises(BlinkUnavailable, match="me: no answer in time"):
            await client.me()
    (rule,) = await faults.faults()
    assert rule["fired"] == FAST_RETRY.attempts


async def test_server_errors_on_a_query_are_retried_to_success(
    sim_url: str, new_account: NewAccount, faults: SimControl
) -> None:
    account = await new_account()
    await faults.add_fault(operation="me", errorRate=1.0, errorStatus=503, count=2)
    async with BlinkClient(sim_url, account.api_key, retry=FAST_RETRY) as client:
        assert (await client.me()).username == account.username
    (rule,) = await faults.faults()
    assert rule["fired"] == 2


async def test_invoice_creation_is_tried_once_since_each_try_may_spend_budget(
    sim_url: str, new_account: NewAccount, faults: SimControl
) -> None:
    pos, merchant = await new_account(), await new_account()
    await faults.add_fault(operation="lnInvoiceCreateOnBehalfOfRecipient", errorRate=1.0, errorStatus=502, count=1)
    async with BlinkClient(sim_url, pos.api_key, retry=FAST_RETRY) as client:
        with pytest.raises(BlinkUnavailable):
            await client.create_invoice_on_behalf_of_recipient(merchant.btc_wallet_id, 42)
        (rule,) = await faults.faults()
        assert rule["fired"] == 1
        invoice = await client.create_invoice_on_behalf_of_recipient(merchant.btc_wallet_id, 42)
    assert invoice.satoshis == 42


async def test_persistent_server_errors_give_up_after_the_retry_budget(
    sim_url: str, new_account: NewAccount, faults: SimControl
) -> None:
    account = await new_account()
    await faults.add_fault(operation="accountDefaultWallet", errorRate=1.0)
    async with BlinkClient(sim_url, None, retry=FAST_RETRY) as client:
        with pytest.raises(BlinkUnavailable, match="HTTP 503"):
            await client.account_default_wallet(account.username)
    (rule,) = await faults.faults()
    assert rule["fired"] == FAST_RETRY.attempts


async def test_lost_payment_answer_is_outcome_unknown_and_resolved_by_status_query(
    sim_url: str, new_account: NewAccount, faults: SimControl
) -> None:
    pos, merchant = await new_account(balance=5_000), await new_account()
    await faults.add_fault(operation="lnInvoicePaymentSend", loseAnswer=True, count=1)
    async with BlinkClient(sim_url, pos.api_key, retry=FAST_RETRY) as client:
        leg = await client.create_invoice_on_behalf_of_recipient(merchant.btc_wallet_id, 1_200, "base", 60)

        with pytest.raises(BlinkOutcomeUnknown, match="lnInvoicePaymentSend"):
            await client.pay_invoice(pos.btc_wallet_id, leg.payment_request)

        assert await client.invoice_status_by_hash(leg.payment_hash) is InvoiceStatus.PAID
        # resending the same invoice is harmless: Blink answers ALREADY_PAID
        again = await client.pay_invoice(pos.btc_wallet_id, leg.payment_request)
        assert again.status is PaymentSendStatus.ALREADY_PAID

    ledger = await faults.ledger()
    assert len(_payments_for(ledger, leg.payment_hash)) == 1
    assert await faults.balance(merchant.btc_wallet_id) == 1_200
    assert await faults.balance(pos.btc_wallet_id) == 3_800


async def test_payment_answer_lost_to_a_read_timeout_is_outcome_unknown(
    sim_url: str, new_account: NewAccount, faults: SimControl
) -> None:
    pos, merchant = await new_account(balance=5_000), await new_account()
    await faults.add_fault(operation="lnInvoicePaymentSend", loseAnswer=True, loseAnswerDelayMs=1_000, count=1)
    timeout = httpx.Timeout(connect=1.0, read=0.3, write=1.0, pool=1.0)
    async with BlinkClient(sim_url, pos.api_key, timeout=timeout, retry=FAST_RETRY) as client:
        leg = await client.create_invoice_on_behalf_of_recipient(merchant.btc_wallet_id, 300)
        with pytest.raises(BlinkOutcomeUnknown, match="no answer in time"):
            await client.pay_invoice(pos.btc_wallet_id, leg.payment_request)
        assert await client.invoice_status_by_hash(leg.payment_hash) is InvoiceStatus.PAID
        assert (await client.wallet_sends(pos.btc_wallet_id, leg.payment_hash)).succeeded
    ledger = await faults.ledger()
    assert len(_payments_for(ledger, leg.payment_hash)) == 1


async def test_server_error_on_payment_is_never_retried(
    sim_url: str, new_account: NewAccount, faults: SimControl
) -> None:
    """A 5xx on a send may come after the money moved, so the client neither retries nor guesses."""
    pos, merchant = await new_account(balance=5_000), await new_account()
    await faults.add_fault(operation="lnInvoicePaymentSend", errorRate=1.0, errorStatus=500, count=1)
    async with BlinkClient(sim_url, pos.api_key, retry=FAST_RETRY) as client:
        leg = await client.create_invoice_on_behalf_of_recipient(merchant.btc_wallet_id, 700)
        with pytest.raises(BlinkOutcomeUnknown, match="HTTP 500"):
            await client.pay_invoice(pos.btc_wallet_id, leg.payment_request)
        (rule,) = await faults.faults()
        assert rule["fired"] == 1
        # this time Blink had not acted: the status query says so, and paying the same invoice settles it
        assert await client.invoice_status_by_hash(leg.payment_hash) is InvoiceStatus.PENDING
        result = await client.pay_invoice(pos.btc_wallet_id, leg.payment_request)
        assert result.status is PaymentSendStatus.SUCCESS
    assert len(_payments_for(await faults.ledger(), leg.payment_hash)) == 1


async def test_pending_payment_is_a_result_then_paid_on_status_query(
    sim_url: str, new_account: NewAccount, faults: SimControl
) -> None:
    pos, merchant = await new_account(balance=5_000), await new_account()
    await faults.add_fault(operation="lnInvoicePaymentSend", pending=True, resolveAfterMs=1_500, count=1)
    async with BlinkClient(sim_url, pos.api_key) as client:
        leg = await client.create_invoice_on_behalf_of_recipient(merchant.btc_wallet_id, 900)

        result = await client.pay_invoice(pos.btc_wallet_id, leg.payment_request)
        assert result.status is PaymentSendStatus.PENDING and not result.settled
        assert await client.invoice_status_by_hash(leg.payment_hash) is InvoiceStatus.PENDING
        # paying again while in flight does not pay twice
        assert (await client.pay_invoice(pos.btc_wallet_id, leg.payment_request)).status is PaymentSendStatus.PENDING

        status = InvoiceStatus.PENDING
        for _ in range(100):
            status = await client.invoice_status_by_hash(leg.payment_hash)
            if status is InvoiceStatus.PAID:
                break
            await asyncio.sleep(0.05)
        assert status is InvoiceStatus.PAID
    assert await faults.balance(merchant.btc_wallet_id) == 900
    assert len(_payments_for(await faults.ledger(), leg.payment_hash)) == 1


async def test_unreachable_blink_is_unavailable_even_for_a_payment() -> None:
    """No connection means the request was never sent, so even a payment is safely 'nothing happened'."""
    async with BlinkClient("http://127.0.0.1:9/graphql", "blink_x", timeout=1.0, retry=FAST_RETRY) as client:
        with pytest.raises(BlinkUnavailable, match="could not connect"):
            await client.pay_invoice("wallet", "lnbc1")
        with pytest.raises(BlinkUnavailable, match="could not connect"):
            await client.me()


async def test_injected_route_failure_is_a_failure_result_and_the_same_invoice_pays_later(
    sim_url: str, new_account: NewAccount, faults: SimControl
) -> None:
    pos, merchant = await new_account(balance=1_000), await new_account()
    await faults.add_fault(operation="lnInvoicePaymentSend", failure=True, count=1)
    async with BlinkClient(sim_url, pos.api_key) as client:
        leg = await client.create_invoice_on_behalf_of_recipient(merchant.btc_wallet_id, 250)

        failed = await client.pay_invoice(pos.btc_wallet_id, leg.payment_request)
        assert failed.status is PaymentSendStatus.FAILURE
        assert [e.code for e in failed.errors] == ["ROUTE_FINDING_ERROR"]
        assert await faults.balance(pos.btc_wallet_id) == 1_000

        retried = await client.pay_invoice(pos.btc_wallet_id, leg.payment_request)
        assert retried.status is PaymentSendStatus.SUCCESS
    assert await faults.balance(merchant.btc_wallet_id) == 250
