"""Before anything moves: the POS invoice must be PAID by Blink's word, and only the stored amounts are forwarded."""

from datetime import timedelta

from tests.services.fake_blink import Pay
from tests.services.settler.conftest import MERCHANT_WALLET, Harness
from tipsplit.blink.errors import BlinkUnavailable
from tipsplit.blink.types import InvoiceStatus
from tipsplit.domain.states import PaymentStatus
from tipsplit.services.settlement import Outcome

UNAVAILABLE = BlinkUnavailable("lnInvoicePaymentStatusByHash", "connection refused")


async def test_an_unknown_payment_is_not_found(harness: Harness) -> None:
    result = await harness.settler.settle("ab" * 32)
    assert result.outcome is Outcome.NOT_FOUND
    assert harness.blink.calls.total() == 0


async def test_an_unpaid_invoice_writes_nothing_and_moves_nothing(harness: Harness) -> None:
    ph = await harness.sale(paid=False)
    for _ in range(3):
        assert (await harness.settler.settle(ph)).outcome is Outcome.NOT_PAID
    assert await harness.events(ph) == ["created"]
    assert (await harness.payment(ph)).status is PaymentStatus.PENDING
    assert harness.blink.calls["pay_invoice"] == 0


async def test_blink_silent_about_the_pos_invoice_is_blink_unavailable(harness: Harness) -> None:
    ph = await harness.sale()
    harness.blink.script("invoice_status_by_hash", UNAVAILABLE)
    result = await harness.settler.settle(ph)
    assert result.outcome is Outcome.BLINK_UNAVAILABLE
    assert await harness.events(ph) == ["created"]
    assert (await harness.settler.settle(ph)).outcome is Outcome.COMPLETED


async def test_an_expired_invoice_expires_the_payment_and_a_late_paid_is_still_forwarded(harness: Harness) -> None:
    ph = await harness.sale(paid=False)
    harness.blink.pos_invoice(ph, InvoiceStatus.EXPIRED)
    assert (await harness.settler.settle(ph)).outcome is Outcome.EXPIRED
    assert (await harness.payment(ph)).status is PaymentStatus.EXPIRED
    # Asked again: Blink still says EXPIRED, so nothing is claimed or written.
    events = await harness.events(ph)
    assert (await harness.settler.settle(ph)).outcome is Outcome.EXPIRED
    assert await harness.events(ph) == events
    # Paid in the last second after all: the expired payment is claimable and forwarded.
    harness.blink.pos_invoice(ph, InvoiceStatus.PAID)
    assert (await harness.settler.settle(ph)).outcome is Outcome.COMPLETED
    assert harness.blink.paid_into(MERCHANT_WALLET) == 10_000


async def test_an_invoice_blink_forgot_counts_as_expired_only_once_its_time_is_up(harness: Harness) -> None:
    live = await harness.sale(paid=False)
    gone = await harness.sale(paid=False, expires_in=timedelta(seconds=-1))
    harness.blink.pos_invoices.pop(live)
    harness.blink.pos_invoices.pop(gone)
    assert (await harness.settler.settle(live)).outcome is Outcome.NOT_PAID
    assert (await harness.settler.settle(gone)).outcome is Outcome.EXPIRED


async def test_a_claim_left_before_paid_was_recorded_asks_blink_again(harness: Harness) -> None:
    """A settler died between its claim and `paid`: the next one confirms with Blink before forwarding."""
    ph = await harness.sale()
    assert await harness.store.pg.claims.claim(ph, "crashed-settler", 60) is not None
    await harness.lapse(ph)
    harness.blink.script("invoice_status_by_hash", UNAVAILABLE)
    assert (await harness.settler.settle(ph)).outcome is Outcome.BLINK_UNAVAILABLE
    assert (await harness.payment(ph)).status is PaymentStatus.PENDING
    assert "status_check_failed" in await harness.events(ph)

    assert await harness.store.pg.claims.claim(ph, "crashed-settler", 60) is not None
    await harness.lapse(ph)
    harness.blink.script("invoice_status_by_hash", InvoiceStatus.PENDING)
    assert (await harness.settler.settle(ph)).outcome is Outcome.NOT_PAID
    assert "not_paid_yet" in await harness.events(ph)

    assert await harness.store.pg.claims.claim(ph, "crashed-settler", 60) is not None
    await harness.lapse(ph)
    harness.blink.script("invoice_status_by_hash", InvoiceStatus.EXPIRED)
    assert (await harness.settler.settle(ph)).outcome is Outcome.EXPIRED
    assert harness.blink.calls["pay_invoice"] == 0


async def test_a_payment_of_another_pos_account_is_left_alone(harness: Harness) -> None:
    ph = await harness.sale()
    await harness.sql("UPDATE payment_splits SET pos_wallet_id = 'someone-elses-pos' WHERE payment_hash = $1", ph)
    result = await harness.settler.settle(ph)
    assert result.outcome is Outcome.IN_PROGRESS
    assert await harness.events(ph) == ["created"]
    assert harness.blink.calls.total() == 0


async def test_a_held_claim_is_in_progress_and_a_finished_payment_already_completed(harness: Harness) -> None:
    ph = await harness.sale()
    assert await harness.store.pg.claims.claim(ph, "other-settler", 60) is not None
    assert (await harness.settler.settle(ph)).outcome is Outcome.IN_PROGRESS
    await harness.lapse(ph)
    harness.blink.script("pay_invoice", Pay.SUCCEED)
    assert (await harness.settler.settle(ph)).outcome is Outcome.COMPLETED
    assert (await harness.settler.settle(ph)).outcome is Outcome.ALREADY_COMPLETED
