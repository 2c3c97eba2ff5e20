"""Every branch of a leg's life, against the fake Blink: each ends with every invoice paid at most once."""

import asyncio
from datetime import UTC, datetime
from typing import Any

from tests.services.fake_blink import LOST_CREATION, Pay
from tests.services.settler.conftest import MERCHANT_WALLET, RETRY, USERS, Harness
from tipsplit.blink.errors import BlinkApiError, BlinkNotFound, BlinkRateLimited, BlinkUnavailable
from tipsplit.blink.types import ApiErrorItem, InvoiceStatus, PaymentResult, PaymentSendStatus, TxStatus
from tipsplit.domain.states import LegStatus, PaymentStatus
from tipsplit.services.operator_retry import retry_failed_payment
from tipsplit.services.settlement import WAITING_FOR_BUDGET, Outcome, SettleResult
from tipsplit.store.budget import invoices_for

ALICE = USERS["alice_tips"].id
BOB = USERS["bob_tips"].id
BASE_ONLY: dict[str, Any] = {"tipAmount": 0, "tipPercent": None, "tipRecipients": [], "tipAmountDisplay": 0}


async def again(harness: Harness, ph: str, *, after: float = 0.0) -> SettleResult:
    """The reconciler's next look: the lease runs out (after `after` seconds) and settle runs again."""
    await asyncio.sleep(after)
    await harness.lapse(ph)
    return await harness.settler.settle(ph)


async def until_final(harness: Harness, ph: str, rounds: int = 12) -> SettleResult:
    result = await harness.settler.settle(ph)
    for _ in range(rounds):
        if result.outcome is not Outcome.IN_PROGRESS:
            return result
        result = await again(harness, ph, after=RETRY.cap_seconds + 0.05)
    return result


async def leg_events(harness: Harness, ph: str, leg: str) -> list[str]:
    return [e.event_type for e in await harness.store.pg.events.of_payment(ph) if e.event_data.get("leg") == leg]


def assert_exactly_once(harness: Harness) -> None:
    """No invoice was paid by two sends, and no destination received two paid invoices."""
    assert all(count <= 1 for count in harness.blink.successful_sends().values())
    for wallet in {invoice.wallet_id for invoice in harness.blink.invoices.values()}:
        paid = [i for i in harness.blink.invoices_to(wallet) if i.status is InvoiceStatus.PAID]
        assert len(paid) <= 1, wallet


async def test_every_leg_is_invoiced_then_paid_once_and_the_payment_completed(harness: Harness) -> None:
    ph = await harness.sale()
    result = await harness.settler.settle(ph)
    assert result.outcome is Outcome.COMPLETED and result.lock_released
    assert harness.blink.paid_into(MERCHANT_WALLET) == 10_000
    assert (harness.blink.paid_into(ALICE), harness.blink.paid_into(BOB)) == (900, 600)
    payment = await harness.payment(ph)
    assert payment.status is PaymentStatus.COMPLETED
    assert payment.user_payment_hash == payment.leg("base").dest_payment_hash  # type: ignore[union-attr]
    for leg in payment.legs:
        assert leg.status is LegStatus.SUCCEEDED and leg.attempts == 1
    # Each leg's trail is in order, whatever the other legs did meanwhile.
    assert await leg_events(harness, ph, "base") == ["leg_invoiced", "leg_payment_sent", "base_forwarded"]
    assert await leg_events(harness, ph, "tip:2") == [
        "leg_wallet_resolved", "leg_invoiced", "leg_payment_sent", "tip_sent"
    ]
    events = await harness.events(ph)
    assert events[:3] == ["created", "claimed", "paid"] and events[-1] == "completed"
    # The Redis lock went with the archive.
    assert harness.store.hot is not None
    token = await harness.store.hot.acquire_lock(ph)
    assert token is not None
    await harness.store.hot.release_lock(ph, token)
    assert_exactly_once(harness)


async def test_wallets_stored_at_creation_are_not_looked_up_and_usd_wallets_get_short_usd_invoices(
    harness: Harness,
) -> None:
    ph = await harness.sale(resolved=True, tipRecipients=[{"username": "carol_usd", "share": 100}])
    assert (await harness.settler.settle(ph)).outcome is Outcome.COMPLETED
    assert harness.blink.calls["account_default_wallet"] == 0
    (usd,) = harness.blink.invoices_to(USERS["carol_usd"].id)
    assert usd.usd and usd.expires_in_minutes == 5 and usd.amount == 1_500
    (base,) = harness.blink.invoices_to(MERCHANT_WALLET)
    assert not base.usd and base.expires_in_minutes == 24 * 60


async def test_a_zero_sat_leg_is_skipped_and_never_invoiced(harness: Harness) -> None:
    ph = await harness.sale(tipAmount=1, tipPercent=None, tipAmountDisplay=0.01)
    assert (await harness.settler.settle(ph)).outcome is Outcome.COMPLETED
    legs = await harness.legs(ph)
    assert legs["tip:2"].status is LegStatus.SKIPPED and legs["tip:2"].amount == 0
    assert harness.blink.invoices_to(BOB) == []
    assert harness.blink.paid_into(ALICE) == 1


async def test_already_paid_counts_as_paid(harness: Harness) -> None:
    ph = await harness.sale(**BASE_ONLY)
    harness.blink.script("pay_invoice", PaymentResult(PaymentSendStatus.ALREADY_PAID), to=MERCHANT_WALLET)
    assert (await harness.settler.settle(ph)).outcome is Outcome.COMPLETED
    sent = [e for e in await harness.store.pg.events.of_payment(ph) if e.event_type == "base_forwarded"]
    assert sent[0].event_data["result"] == "ALREADY_PAID"


async def test_a_failed_send_is_retried_on_the_same_invoice_with_backoff_until_the_payment_fails(
    harness: Harness,
) -> None:
    ph = await harness.sale()
    harness.blink.script("pay_invoice", Pay.FAIL, Pay.FAIL, Pay.FAIL, to=MERCHANT_WALLET)
    assert (await harness.settler.settle(ph)).outcome is Outcome.IN_PROGRESS
    base = (await harness.legs(ph))["base"]
    assert base.status is LegStatus.FAILED and base.attempts == 1 and "no route" in (base.last_error or "")
    assert base.next_attempt_at is not None
    assert abs((base.next_attempt_at - base.updated_at).total_seconds() - RETRY.delay(1)) < 0.1
    assert (await harness.legs(ph))["tip:1"].status is LegStatus.SUCCEEDED

    # Not due yet: the next look sends nothing.
    assert (await again(harness, ph)).outcome is Outcome.IN_PROGRESS
    assert harness.blink.calls[f"pay_invoice:{MERCHANT_WALLET}"] == 1

    assert (await again(harness, ph, after=RETRY.delay(1) + 0.05)).outcome is Outcome.IN_PROGRESS
    base = (await harness.legs(ph))["base"]
    assert base.attempts == 2 and base.next_attempt_at is not None
    assert abs((base.next_attempt_at - base.updated_at).total_seconds() - RETRY.delay(2)) < 0.1
    assert (await again(harness, ph, after=RETRY.delay(2) + 0.05)).outcome is Outcome.FAILED

    payment = await harness.payment(ph)
    assert payment.status is PaymentStatus.FAILED and "base: " in (payment.error_message or "")
    assert len(harness.blink.invoices_to(MERCHANT_WALLET)) == 1, "every retry paid the same invoice"
    assert harness.blink.calls[f"pay_invoice:{MERCHANT_WALLET}"] == RETRY.attempts
    # Failed is final: nothing takes it up again on its own.
    await asyncio.sleep(RETRY.cap_seconds)
    assert (await harness.settler.settle(ph)).outcome is Outcome.FAILED
    assert ph not in await harness.store.pg.claims.stale(10_000)
    assert harness.blink.calls[f"pay_invoice:{MERCHANT_WALLET}"] == RETRY.attempts

    # An operator's retry pays the same invoice, once.
    retried = await retry_failed_payment(harness.store.pg, harness.settler, ph, "test")
    assert retried.completed
    assert harness.blink.paid_into(MERCHANT_WALLET) == 10_000
    assert len(harness.blink.invoices_to(MERCHANT_WALLET)) == 1
    assert_exactly_once(harness)


async def test_a_refused_send_is_a_counted_failure_and_an_unsent_one_is_not(harness: Harness) -> None:
    ph = await harness.sale(**BASE_ONLY)
    refusal = BlinkApiError("lnInvoicePaymentSend", [ApiErrorItem("insufficient balance", "INSUFFICIENT_BALANCE")])
    harness.blink.script("pay_invoice", refusal, to=MERCHANT_WALLET)
    assert (await harness.settler.settle(ph)).outcome is Outcome.IN_PROGRESS
    base = (await harness.legs(ph))["base"]
    assert base.status is LegStatus.FAILED and base.attempts == 1 and "insufficient balance" in (base.last_error or "")

    other = await harness.sale(**BASE_ONLY)
    harness.blink.script("pay_invoice", BlinkUnavailable("lnInvoicePaymentSend", "connection refused"), to=MERCHANT_WALLET)
    assert (await harness.settler.settle(other)).outcome is Outcome.IN_PROGRESS
    leg = (await harness.legs(other))["base"]
    assert leg.status is LegStatus.INVOICED and "leg_failed" not in await harness.events(other)
    assert (await again(harness, other)).outcome is Outcome.COMPLETED


async def test_a_send_that_never_reached_blink_is_not_charged_as_an_attempt(harness: Harness) -> None:
    ph = await harness.sale(**BASE_ONLY)
    unreachable = BlinkUnavailable("lnInvoicePaymentSend", "connection refused")
    harness.blink.script("pay_invoice", unreachable, unreachable, to=MERCHANT_WALLET)
    assert (await harness.settler.settle(ph)).outcome is Outcome.IN_PROGRESS
    assert (await again(harness, ph)).outcome is Outcome.IN_PROGRESS
    base = (await harness.legs(ph))["base"]
    assert base.status is LegStatus.INVOICED and base.attempts == 0
    taken_back = [
        e for e in await harness.store.pg.events.of_payment(ph)
        if e.event_type == "leg_invoiced" and e.event_data.get("from") == LegStatus.PAYING.value
    ]
    assert len(taken_back) == 2 and all(e.event_data.get("attemptTakenBack") for e in taken_back)
    assert (await again(harness, ph)).outcome is Outcome.COMPLETED
    assert (await harness.legs(ph))["base"].attempts == 1
    assert_exactly_once(harness)


async def test_a_lost_answer_after_the_money_moved_is_learned_from_blink_not_paid_again(harness: Harness) -> None:
    ph = await harness.sale()
    harness.blink.script("pay_invoice", Pay.LOST_AFTER_PAYING, to=ALICE)
    assert (await harness.settler.settle(ph)).outcome is Outcome.COMPLETED
    assert harness.blink.calls[f"pay_invoice:{ALICE}"] == 1
    assert await leg_events(harness, ph, "tip:1") == [
        "leg_wallet_resolved", "leg_invoiced", "leg_payment_sent", "leg_outcome_unknown", "tip_sent"
    ]
    assert_exactly_once(harness)


async def test_a_lost_answer_before_the_money_moved_pays_the_same_invoice_again(harness: Harness) -> None:
    ph = await harness.sale(**BASE_ONLY)
    harness.blink.script("pay_invoice", Pay.LOST_BEFORE_PAYING, to=MERCHANT_WALLET)
    assert (await harness.settler.settle(ph)).outcome is Outcome.IN_PROGRESS
    assert (await harness.legs(ph))["base"].status is LegStatus.INVOICED
    assert (await again(harness, ph)).outcome is Outcome.COMPLETED
    assert len(harness.blink.invoices_to(MERCHANT_WALLET)) == 1
    assert harness.blink.calls[f"pay_invoice:{MERCHANT_WALLET}"] == 2
    assert_exactly_once(harness)


async def test_an_outcome_blink_cannot_tell_yet_leaves_the_leg_paying(harness: Harness) -> None:
    ph = await harness.sale(**BASE_ONLY)
    silent = BlinkUnavailable("lnInvoicePaymentStatusByHash", "timeout")
    harness.blink.script("pay_invoice", Pay.LOST_AFTER_PAYING, to=MERCHANT_WALLET)
    harness.blink.script("invoice_status_by_hash", silent, silent, to=MERCHANT_WALLET)
    assert (await harness.settler.settle(ph)).outcome is Outcome.IN_PROGRESS
    assert (await harness.legs(ph))["base"].status is LegStatus.PAYING
    assert (await again(harness, ph)).outcome is Outcome.IN_PROGRESS
    assert (await again(harness, ph)).outcome is Outcome.COMPLETED
    assert harness.blink.calls[f"pay_invoice:{MERCHANT_WALLET}"] == 1


async def test_a_pending_send_is_waited_for_past_expiry_and_attempts_and_never_replaced(harness: Harness) -> None:
    ph = await harness.sale(**BASE_ONLY)
    harness.blink.script("pay_invoice", Pay.PEND, to=MERCHANT_WALLET)
    assert (await harness.settler.settle(ph)).outcome is Outcome.IN_PROGRESS
    base = (await harness.legs(ph))["base"]
    assert base.status is LegStatus.PAYING and "leg_payment_pending" in await harness.events(ph)
    (invoice,) = harness.blink.invoices_to(MERCHANT_WALLET)
    harness.blink.expire(invoice.payment_hash)
    # However often it is looked at, and though its attempts are used up, the payment cannot fail meanwhile.
    await harness.sql("UPDATE payment_legs SET attempts = $2 WHERE payment_hash = $1", ph, RETRY.attempts)
    events = await harness.events(ph)
    for _ in range(3):
        assert (await again(harness, ph)).outcome is Outcome.IN_PROGRESS
    leg = (await harness.legs(ph))["base"]
    assert leg.status is LegStatus.PAYING and leg.attempts == RETRY.attempts
    assert len(harness.blink.invoices_to(MERCHANT_WALLET)) == 1
    assert harness.blink.calls[f"pay_invoice:{MERCHANT_WALLET}"] == 1
    assert [e for e in await harness.events(ph) if e not in ("claimed",)] == [e for e in events if e != "claimed"]

    harness.blink.settle_send(invoice.payment_hash)
    assert (await again(harness, ph)).outcome is Outcome.COMPLETED
    assert harness.blink.paid_into(MERCHANT_WALLET) == 10_000
    assert_exactly_once(harness)


async def test_an_expired_invoice_with_no_send_on_its_way_is_replaced_by_the_next_generation(
    harness: Harness,
) -> None:
    ph = await harness.sale(**BASE_ONLY)
    harness.blink.script("pay_invoice", Pay.FAIL, to=MERCHANT_WALLET)
    assert (await harness.settler.settle(ph)).outcome is Outcome.IN_PROGRESS
    (first,) = harness.blink.invoices_to(MERCHANT_WALLET)
    harness.blink.expire(first.payment_hash)
    assert (await until_final(harness, ph)).outcome is Outcome.COMPLETED
    old, new = harness.blink.invoices_to(MERCHANT_WALLET)
    assert old.status is InvoiceStatus.EXPIRED and new.status is InvoiceStatus.PAID
    assert old.external_id and old.external_id.endswith("-base-0")
    assert new.external_id and new.external_id.endswith("-base-1")
    assert "leg_invoice_expired" in await harness.events(ph)
    assert (await harness.legs(ph))["base"].invoice_generation == 1
    assert_exactly_once(harness)


async def test_an_expired_invoice_whose_send_was_lost_unsent_is_replaced_too(harness: Harness) -> None:
    ph = await harness.sale(**BASE_ONLY)
    harness.blink.script("pay_invoice", Pay.LOST_BEFORE_PAYING, to=MERCHANT_WALLET)
    # Blink answers about the invoice only after it expired: nothing was sent, it cannot be paid, so it is replaced.
    harness.blink.script("invoice_status_by_hash", InvoiceStatus.EXPIRED, to=MERCHANT_WALLET)
    assert (await until_final(harness, ph)).outcome is Outcome.COMPLETED
    assert [i.status for i in harness.blink.invoices_to(MERCHANT_WALLET)] == [InvoiceStatus.PENDING, InvoiceStatus.PAID]
    assert_exactly_once(harness)


async def test_an_invoice_made_but_never_recorded_is_skipped_by_its_external_id(harness: Harness) -> None:
    ph = await harness.sale(**BASE_ONLY)
    harness.blink.script("create_invoice_on_behalf_of_recipient", LOST_CREATION, to=MERCHANT_WALLET)
    assert (await harness.settler.settle(ph)).outcome is Outcome.IN_PROGRESS
    base = (await harness.legs(ph))["base"]
    assert base.status is LegStatus.PENDING and base.attempts == 0 and base.dest_payment_hash is None
    assert (await again(harness, ph)).outcome is Outcome.COMPLETED
    unrecorded, paid = harness.blink.invoices_to(MERCHANT_WALLET)
    assert unrecorded.status is InvoiceStatus.PENDING and unrecorded.external_id.endswith("-base-0")  # type: ignore[union-attr]
    assert paid.status is InvoiceStatus.PAID and paid.external_id.endswith("-base-1")  # type: ignore[union-attr]
    assert "leg_invoice_unrecorded" in await harness.events(ph)
    assert_exactly_once(harness)


async def test_a_destination_blocked_by_blink_waits_without_failing(harness: Harness) -> None:
    ph = await harness.sale()
    harness.blink.script(
        "create_invoice_on_behalf_of_recipient", BlinkRateLimited("lnInvoiceCreateOnBehalfOfRecipient", "TOO_MANY"),
        to=ALICE,
    )
    assert (await harness.settler.settle(ph)).outcome is Outcome.IN_PROGRESS
    tip = (await harness.legs(ph))["tip:1"]
    assert tip.status is LegStatus.PENDING and tip.attempts == 0 and tip.waiting_for == WAITING_FOR_BUDGET
    assert tip.next_attempt_at is not None and (tip.next_attempt_at - datetime.now(UTC)).total_seconds() > 200
    assert "leg_failed" not in await harness.events(ph)
    # The block is remembered: the next look asks Blink nothing for that destination.
    assert (await again(harness, ph)).outcome is Outcome.IN_PROGRESS
    assert harness.blink.calls[f"create_invoice_on_behalf_of_recipient:{ALICE}"] == 1
    assert (await harness.legs(ph))["base"].status is LegStatus.SUCCEEDED


async def test_a_destination_whose_budget_is_spent_waits_and_asks_blink_nothing(harness: Harness) -> None:
    for _ in range(harness.budget.policy.budget):
        assert (await harness.budget.take(invoices_for(BOB))).allowed
    ph = await harness.sale()
    assert (await harness.settler.settle(ph)).outcome is Outcome.IN_PROGRESS
    tip = (await harness.legs(ph))["tip:2"]
    assert tip.status is LegStatus.PENDING and tip.waiting_for == WAITING_FOR_BUDGET and tip.attempts == 0
    assert harness.blink.calls[f"create_invoice_on_behalf_of_recipient:{BOB}"] == 0
    assert {leg.status for name, leg in (await harness.legs(ph)).items() if name != "tip:2"} == {LegStatus.SUCCEEDED}


async def test_a_blink_lookup_error_before_any_send_defers_the_leg(harness: Harness) -> None:
    """Blink unreachable while invoicing moves nothing: the leg is neither attempted nor failed."""
    ph = await harness.sale(**BASE_ONLY)
    harness.blink.script(
        "create_invoice_on_behalf_of_recipient", BlinkUnavailable("lnInvoiceCreateOnBehalfOfRecipient", "503"),
        to=MERCHANT_WALLET,
    )
    assert (await harness.settler.settle(ph)).outcome is Outcome.IN_PROGRESS
    base = (await harness.legs(ph))["base"]
    assert base.status is LegStatus.PENDING and base.attempts == 0
    assert (await again(harness, ph)).outcome is Outcome.COMPLETED


async def test_a_username_blink_does_not_know_fails_the_leg_not_the_others(harness: Harness) -> None:
    """A counted failure (nothing was sent), retried with backoff like any other."""
    ph = await harness.sale()
    harness.blink.script("account_default_wallet", BlinkNotFound("accountDefaultWallet", "gone"), to="bob_tips")
    assert (await harness.settler.settle(ph)).outcome is Outcome.IN_PROGRESS
    legs = await harness.legs(ph)
    assert legs["tip:2"].status is LegStatus.FAILED and legs["tip:1"].status is LegStatus.SUCCEEDED
    assert (await until_final(harness, ph)).outcome is Outcome.COMPLETED
    assert harness.blink.paid_into(BOB) == 600


async def test_an_invoice_blink_no_longer_knows_is_judged_by_the_pos_wallets_sends(harness: Harness) -> None:
    ph = await harness.sale(**BASE_ONLY)
    harness.blink.script("pay_invoice", Pay.LOST_AFTER_PAYING, to=MERCHANT_WALLET)
    harness.blink.script(
        "invoice_status_by_hash", BlinkNotFound("lnInvoicePaymentStatusByHash", "gone"), to=MERCHANT_WALLET
    )
    assert (await harness.settler.settle(ph)).outcome is Outcome.COMPLETED
    assert harness.blink.calls[f"pay_invoice:{MERCHANT_WALLET}"] == 1
    assert_exactly_once(harness)


async def test_a_failed_leg_found_with_a_send_in_flight_goes_back_to_waiting_for_it(harness: Harness) -> None:
    ph = await harness.sale(**BASE_ONLY)
    harness.blink.script("pay_invoice", Pay.FAIL, to=MERCHANT_WALLET)
    assert (await harness.settler.settle(ph)).outcome is Outcome.IN_PROGRESS
    assert (await harness.legs(ph))["base"].status is LegStatus.FAILED
    # Blink now lists a send of ours to that invoice as pending (one the failed answer did not tell about).
    harness.blink.script("wallet_sends", [TxStatus.FAILURE, TxStatus.PENDING], to=MERCHANT_WALLET)
    assert (await again(harness, ph, after=RETRY.delay(1) + 0.05)).outcome is Outcome.IN_PROGRESS
    base = (await harness.legs(ph))["base"]
    assert base.status is LegStatus.PAYING and base.attempts == 1
    assert "leg_send_in_flight" in await harness.events(ph)
    assert harness.blink.calls[f"pay_invoice:{MERCHANT_WALLET}"] == 1
    assert (await again(harness, ph)).outcome is Outcome.COMPLETED


async def test_a_last_attempt_lost_unsent_fails_the_leg_and_the_payment(harness: Harness) -> None:
    ph = await harness.sale(**BASE_ONLY)
    harness.blink.script("pay_invoice", Pay.FAIL, Pay.FAIL, Pay.LOST_BEFORE_PAYING, to=MERCHANT_WALLET)
    assert (await until_final(harness, ph)).outcome is Outcome.FAILED
    base = (await harness.legs(ph))["base"]
    assert base.status is LegStatus.FAILED and base.attempts == RETRY.attempts
    assert harness.blink.paid_into(MERCHANT_WALLET) == 0


async def test_an_exhausted_leg_fails_the_payment_only_once_no_sibling_send_is_in_flight(harness: Harness) -> None:
    ph = await harness.sale()
    harness.blink.script("pay_invoice", Pay.FAIL, Pay.FAIL, Pay.FAIL, to=MERCHANT_WALLET)
    harness.blink.script("pay_invoice", Pay.PEND, to=ALICE)
    for _ in range(RETRY.attempts + 2):
        assert (await again(harness, ph, after=RETRY.cap_seconds + 0.05)).outcome is Outcome.IN_PROGRESS
    legs = await harness.legs(ph)
    assert legs["base"].status is LegStatus.FAILED and legs["base"].attempts == RETRY.attempts
    assert legs["tip:1"].status is LegStatus.PAYING
    (invoice,) = harness.blink.invoices_to(ALICE)
    harness.blink.settle_send(invoice.payment_hash)
    assert (await again(harness, ph)).outcome is Outcome.FAILED
    assert harness.blink.paid_into(ALICE) == 900
    assert harness.blink.calls[f"pay_invoice:{MERCHANT_WALLET}"] == RETRY.attempts
