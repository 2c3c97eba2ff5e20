"""Random sequences of leg invoices and payments through the client: money is conserved, nothing is paid twice."""

from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.blink.conftest import SimControl
from tipsplit.blink.client import BlinkClient
from tipsplit.blink.types import PaymentSendStatus

START = 2_000

steps = st.lists(
    st.one_of(
        st.tuples(st.just("invoice"), st.integers(1, 900)),
        st.tuples(st.just("pay"), st.integers(0, 20)),
    ),
    min_size=1,
    max_size=15,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=steps)
async def test_payments_conserve_money_and_never_pay_an_invoice_twice(
    blink: BlinkClient, control: SimControl, script: list[tuple[str, int]]
) -> None:
    pos, merchant = await control.create_account(balance=START), await control.create_account()
    client = blink.with_api_key(pos.api_key)
    invoices: list[tuple[str, str, int]] = []  # (payment_request, payment_hash, sats)
    paid: set[str] = set()
    balance = START

    for action, value in script:
        if action == "invoice":
            invoice = await client.create_invoice_on_behalf_of_recipient(merchant.btc_wallet_id, value)
            invoices.append((invoice.payment_request, invoice.payment_hash, value))
            continue
        if not invoices:
            continue
        request, payment_hash, sats = invoices[value % len(invoices)]
        result = await client.pay_invoice(pos.btc_wallet_id, request)
        if payment_hash in paid:
            expected = PaymentSendStatus.ALREADY_PAID
        elif sats <= balance:
            expected = PaymentSendStatus.SUCCESS
            paid.add(payment_hash)
            balance -= sats
        else:
            expected = PaymentSendStatus.FAILURE
        assert result.status is expected

    assert await control.balance(pos.btc_wallet_id) == balance
    assert await control.balance(merchant.btc_wallet_id) == START - balance
    ledger = await control.ledger()
    ours = {h for _, h, _ in invoices}
    per_hash = Counter(p["paymentHash"] for p in ledger["payments"] if p["paymentHash"] in ours)
    assert set(per_hash) == paid
    assert all(count == 1 for count in per_hash.values())
