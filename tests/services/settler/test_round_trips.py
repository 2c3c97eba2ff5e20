"""How many PostgreSQL statements settlement sends: one per state change with its event, nothing re-read."""

from collections import Counter

from tests.services.fake_blink import Pay
from tests.services.settler.conftest import MERCHANT_WALLET, RETRY, Harness
from tests.support.pg_queries import QueryCounter
from tipsplit.domain.states import LegStatus, PaymentStatus
from tipsplit.services.settlement import Outcome, SettlePolicy, Settler

SETTLED_TRAIL = Counter({
    "created": 1, "claimed": 1, "paid": 1, "leg_invoiced": 3, "leg_payment_sent": 3,
    "base_forwarded": 1, "tip_sent": 2, "completed": 1,
})


def shown(statements: list[str]) -> str:
    return "\n".join(" ".join(statement.split())[:90] for statement in statements)


async def test_a_paid_three_leg_sale_is_settled_in_nine_statements(harness: Harness) -> None:
    """The look before claiming, the claim (which records the sale paid and reads the legs), per leg its invoice
    with its send and then its success, and the completion: no BEGIN/COMMIT, no lease renewed a moment after
    the claim, nothing read back."""
    warm, ph = await harness.sale(resolved=True), await harness.sale(resolved=True)
    assert (await harness.settler.settle(warm)).outcome is Outcome.COMPLETED, "asyncpg learns the statements' types"
    with QueryCounter(harness.store.pg, about=ph) as queries:
        result = await harness.settler.settle(ph)
        count = await queries.count()
    assert result.outcome is Outcome.COMPLETED
    assert count == 9, shown(queries.statements)
    payment = await harness.payment(ph)
    assert payment.status is PaymentStatus.COMPLETED and payment.paid_at is not None
    assert all(leg.status is LegStatus.SUCCEEDED and leg.attempts == 1 for leg in payment.legs)
    trail = await harness.events(ph)
    assert Counter(trail) == SETTLED_TRAIL and trail[:3] == ["created", "claimed", "paid"]


async def test_a_round_that_leaves_a_leg_open_reads_the_legs_once_to_decide(harness: Harness) -> None:
    warm, ph = await harness.sale(resolved=True), await harness.sale(resolved=True)
    assert (await harness.settler.settle(warm)).outcome is Outcome.COMPLETED
    harness.blink.script("pay_invoice", Pay.FAIL, to=MERCHANT_WALLET)
    with QueryCounter(harness.store.pg, about=ph) as queries:
        result = await harness.settler.settle(ph)
        await queries.count()
    assert result.outcome is Outcome.IN_PROGRESS
    reads = [q for q in queries.statements if q.lstrip().startswith("SELECT")]
    assert len(reads) == 2, "the look before claiming and one read of the legs after the round: " + shown(reads)
    renewals = [q for q in queries.statements if q.split()[:4] == ["UPDATE", "payment_splits", "SET", "claim_expires_at"]]
    assert len(renewals) == 1, "only the lease that schedules the next look, none before the round"
    legs = await harness.legs(ph)
    assert legs["base"].status is LegStatus.FAILED and legs["tip:1"].status is LegStatus.SUCCEEDED


async def test_blinks_own_paid_push_is_not_asked_again_before_the_claim(harness: Harness) -> None:
    pushed, polled = await harness.sale(resolved=True), await harness.sale(resolved=True)
    asked = harness.blink.calls["invoice_status_by_hash"]
    assert (await harness.settler.settle(pushed, blink_said_paid=True)).outcome is Outcome.COMPLETED
    assert harness.blink.calls["invoice_status_by_hash"] == asked, "myUpdates said PAID: no status query"
    assert (await harness.payment(pushed)).paid_at is not None
    assert (await harness.settler.settle(polled)).outcome is Outcome.COMPLETED
    assert harness.blink.calls["invoice_status_by_hash"] == asked + 1, "a poller's or webhook's look asks Blink"


async def test_a_claim_no_longer_fresh_is_renewed_before_the_legs_round(harness: Harness) -> None:
    """Once confirming the sale took more than a tenth of the lease, the round starts by renewing the claim."""
    ph = await harness.sale(resolved=True)
    await harness.store.pg.claims.claim(ph, "crashed-settler", 60)
    await harness.lapse(ph)
    harness.blink.delay = 0.15
    settler = Settler(harness.store.pg, harness.store.hot, harness.accounts, SettlePolicy(1, RETRY))
    with QueryCounter(harness.store.pg, about=ph) as queries:
        result = await settler.settle(ph)
        await queries.count()
    assert result.outcome is Outcome.COMPLETED
    renewals = [q for q in queries.statements if q.split()[:4] == ["UPDATE", "payment_splits", "SET", "claim_expires_at"]]
    assert len(renewals) == 1, "the claim was 0.15 s old against a 1 s lease: renewed once, before the round"
