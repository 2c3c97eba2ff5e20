"""A payment's legs run together, and exactly-once still holds when they do."""

import asyncio
import time

from tests.services.fake_blink import Pay
from tests.services.settler.conftest import MERCHANT_WALLET, USERS, Harness
from tipsplit.blink.errors import BlinkUnavailable
from tipsplit.blink.types import InvoiceStatus
from tipsplit.domain.states import LegStatus, PaymentStatus
from tipsplit.services.settlement import Outcome

FOUR_WAY = [{"username": name, "share": 25} for name in ("alice_tips", "bob_tips", "dave_tips", "erin_tips")]
CALL_SECONDS = 0.25


def assert_each_destination_paid_once(harness: Harness, amounts: dict[str, int]) -> None:
    assert all(count <= 1 for count in harness.blink.successful_sends().values())
    for wallet, amount in amounts.items():
        paid = [i for i in harness.blink.invoices_to(wallet) if i.status is InvoiceStatus.PAID]
        assert [i.amount for i in paid] == [amount], wallet


AMOUNTS = {MERCHANT_WALLET: 10_000, **{USERS[str(r["username"])].id: 375 for r in FOUR_WAY}}


async def test_legs_proceed_concurrently(harness: Harness) -> None:
    """Five legs, each two Blink calls of 0.25 s: together they take about one leg's time, not five."""
    ph = await harness.sale(resolved=True, tipRecipients=FOUR_WAY)
    harness.blink.delay = CALL_SECONDS
    started = time.perf_counter()
    assert (await harness.settler.settle(ph)).outcome is Outcome.COMPLETED
    elapsed = time.perf_counter() - started
    one_leg = 3 * CALL_SECONDS  # the POS invoice's status, then the leg's invoice and its send
    five_legs_in_turn = CALL_SECONDS + 5 * 2 * CALL_SECONDS
    assert elapsed < (one_leg + five_legs_in_turn) / 2, elapsed
    assert harness.blink.most_in_flight == 5
    assert_each_destination_paid_once(harness, AMOUNTS)


async def test_one_leg_waiting_on_blink_does_not_hold_the_others(harness: Harness) -> None:
    ph = await harness.sale(resolved=True, tipRecipients=FOUR_WAY)
    harness.blink.script("pay_invoice", Pay.PEND, to=MERCHANT_WALLET)
    assert (await harness.settler.settle(ph)).outcome is Outcome.IN_PROGRESS
    legs = await harness.legs(ph)
    assert legs["base"].status is LegStatus.PAYING
    assert {legs[f"tip:{n}"].status for n in range(1, 5)} == {LegStatus.SUCCEEDED}
    (invoice,) = harness.blink.invoices_to(MERCHANT_WALLET)
    harness.blink.settle_send(invoice.payment_hash)
    await harness.lapse(ph)
    assert (await harness.settler.settle(ph)).outcome is Outcome.COMPLETED
    assert_each_destination_paid_once(harness, AMOUNTS)


async def test_a_storm_of_settlers_with_lost_answers_pays_every_leg_once(harness: Harness) -> None:
    """Three instances, ten calls each, at once; answers lost after the money moved on two legs."""
    ph = await harness.sale(tipRecipients=FOUR_WAY)
    harness.blink.delay = 0.01
    harness.blink.script("pay_invoice", Pay.LOST_AFTER_PAYING, to=MERCHANT_WALLET)
    harness.blink.script("pay_invoice", Pay.LOST_BEFORE_PAYING, to=USERS["bob_tips"].id)
    harness.blink.script("pay_invoice", Pay.LOST_AFTER_PAYING, to=USERS["dave_tips"].id)
    settlers = [harness.another_settler() for _ in range(3)]
    results = await asyncio.gather(*(s.settle(ph) for s in settlers for _ in range(10)))
    assert {r.outcome for r in results} <= {Outcome.COMPLETED, Outcome.IN_PROGRESS, Outcome.ALREADY_COMPLETED}
    for _ in range(10):
        if (await harness.payment(ph)).status is PaymentStatus.COMPLETED:
            break
        await harness.lapse(ph)
        await asyncio.gather(*(s.settle(ph) for s in settlers))
    assert (await harness.payment(ph)).status is PaymentStatus.COMPLETED
    assert_each_destination_paid_once(harness, AMOUNTS)
    assert all(len(harness.blink.invoices_to(wallet)) == 1 for wallet in AMOUNTS)
    assert (await harness.events(ph)).count("completed") == 1


async def test_a_settler_killed_while_its_legs_are_in_flight_is_finished_by_another_once(harness: Harness) -> None:
    ph = await harness.sale(resolved=True, tipRecipients=FOUR_WAY)
    harness.blink.delay = 0.2
    first = asyncio.ensure_future(harness.settler.settle(ph))
    # Killed mid-round: some legs have invoices, some are being paid, none has heard back.
    await asyncio.sleep(0.5)
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    harness.blink.delay = 0.0
    statuses = {leg.status for leg in (await harness.legs(ph)).values()}
    assert statuses & {LegStatus.INVOICED, LegStatus.PAYING, LegStatus.PENDING}, statuses
    await harness.lapse(ph)
    assert (await harness.another_settler().settle(ph)).outcome is Outcome.COMPLETED
    # A kill between an invoice's creation and its recording leaves that invoice unpaid forever (the leg
    # moved to its next generation); whatever the kill hit, each destination was paid exactly once.
    assert_each_destination_paid_once(harness, AMOUNTS)


async def test_a_crash_in_one_leg_lets_the_others_finish_their_step_then_surfaces(harness: Harness) -> None:
    """A leg whose step raises (here: a bug's stand-in) does not abandon its siblings' sends half way."""
    ph = await harness.sale(resolved=True, tipRecipients=FOUR_WAY)
    harness.blink.script("wallet_sends", RuntimeError("boom"), to=MERCHANT_WALLET)
    harness.blink.script("pay_invoice", Pay.LOST_AFTER_PAYING, to=MERCHANT_WALLET)
    try:
        await harness.settler.settle(ph)
    except RuntimeError as exc:
        assert str(exc) == "boom"
    else:
        raise AssertionError("the leg's error was swallowed")
    legs = await harness.legs(ph)
    assert legs["base"].status is LegStatus.PAYING
    assert {legs[f"tip:{n}"].status for n in range(1, 5)} == {LegStatus.SUCCEEDED}
    await harness.lapse(ph)
    assert (await harness.settler.settle(ph)).outcome is Outcome.COMPLETED
    assert harness.blink.calls[f"pay_invoice:{MERCHANT_WALLET}"] == 1
    assert_each_destination_paid_once(harness, AMOUNTS)


async def test_blink_unavailable_for_one_leg_defers_only_that_leg(harness: Harness) -> None:
    ph = await harness.sale(resolved=True, tipRecipients=FOUR_WAY)
    harness.blink.script(
        "create_invoice_on_behalf_of_recipient", BlinkUnavailable("lnInvoiceCreateOnBehalfOfRecipient", "503"),
        to=USERS["erin_tips"].id,
    )
    assert (await harness.settler.settle(ph)).outcome is Outcome.IN_PROGRESS
    legs = await harness.legs(ph)
    assert legs["tip:4"].status is LegStatus.PENDING and legs["tip:4"].attempts == 0
    await harness.lapse(ph)
    assert (await harness.settler.settle(ph)).outcome is Outcome.COMPLETED
    assert_each_destination_paid_once(harness, AMOUNTS)
