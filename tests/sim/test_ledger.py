"""The ledger alone: payment rules, expiry on an injectable clock, determinism, and a property test of the books."""

import hashlib

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tipsplit.sim.clock import SimClock
from tipsplit.sim.ledger import (
    InvoiceAlreadyPaid,
    InvoiceExpired,
    InvoiceStatus,
    Ledger,
    LedgerError,
    LedgerEvent,
    PaymentInFlight,
    SendResult,
)


class FakeClock:
    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ledger(clock: FakeClock) -> Ledger:
    return Ledger(seed=3, clock=clock)


def test_invoices_have_real_preimages_and_bolt11_requests(ledger: Ledger) -> None:
    account, _ = ledger.create_account("shop")
    invoice = ledger.create_invoice(account.btc_wallet_id, 1234, "latte")
    assert hashlib.sha256(bytes.fromhex(invoice.preimage)).hexdigest() == invoice.payment_hash
    assert ledger.invoice_by_request(invoice.payment_request) is invoice
    assert ledger.invoice_status(invoice) is InvoiceStatus.PENDING


def test_a_payment_moves_money_once_and_then_answers_already_paid(ledger: Ledger) -> None:
    payer, _ = ledger.create_account("payer", balance=5_000)
    payee, _ = ledger.create_account("payee")
    invoice = ledger.create_invoice(payee.btc_wallet_id, 1_500)
    first = ledger.send_payment(payer.btc_wallet_id, invoice.payment_request)
    again = ledger.send_payment(payer.btc_wallet_id, invoice.payment_request)
    assert (first.result, again.result) == (SendResult.SUCCESS, SendResult.ALREADY_PAID)
    assert again.transaction is first.transaction and again.error is None
    assert ledger.wallet(payer.btc_wallet_id).balance == 3_500
    assert ledger.wallet(payee.btc_wallet_id).balance == 1_500
    assert ledger.invoice_status(invoice) is InvoiceStatus.PAID
    assert ledger.audit() == []


def test_refusals_move_nothing(ledger: Ledger, clock: FakeClock) -> None:
    payer, _ = ledger.create_account("payer", balance=100)
    payee, _ = ledger.create_account("payee")
    too_big = ledger.create_invoice(payee.btc_wallet_id, 101)
    own = ledger.create_invoice(payer.btc_wallet_id, 10)
    short = ledger.create_invoice(payee.btc_wallet_id, 10, expires_in_minutes=1)
    clock.t += 61
    cases = {
        too_big.payment_request: "INSUFFICIENT_BALANCE",
        own.payment_request: "CANT_PAY_SELF",
        short.payment_request: "LIGHTNING_PAYMENT_ERROR",
        "lnbc1notaninvoice": "INVOICE_DECODE_ERROR",
    }
    for request, code in cases.items():
        outcome = ledger.send_payment(payer.btc_wallet_id, request)
        assert outcome.result is SendResult.FAILURE and outcome.error is not None
        assert outcome.error.code == code
    assert ledger.invoice_status(short) is InvoiceStatus.EXPIRED
    assert ledger.wallet(payer.btc_wallet_id).balance == 100
    assert ledger.audit() == []


def test_an_invoice_from_outside_blink_cannot_be_paid(ledger: Ledger) -> None:
    payer, _ = ledger.create_account("payer", balance=100)
    elsewhere = Ledger(seed=99)
    stranger, _ = elsewhere.create_account("stranger")
    foreign = elsewhere.create_invoice(stranger.btc_wallet_id, 10)
    outcome = ledger.send_payment(payer.btc_wallet_id, foreign.payment_request)
    assert outcome.result is SendResult.FAILURE and outcome.error is not None
    assert outcome.error.code == "ROUTE_FINDING_ERROR"


def test_paying_from_outside_credits_once_and_refuses_expired(ledger: Ledger, clock: FakeClock) -> None:
    shop, _ = ledger.create_account("shop")
    invoice = ledger.create_invoice(shop.btc_wallet_id, 700)
    ledger.pay_from_outside(invoice.payment_request)
    with pytest.raises(InvoiceAlreadyPaid):
        ledger.pay_from_outside(invoice.payment_request)
    late = ledger.create_invoice(shop.btc_wallet_id, 5, expires_in_minutes=10)
    clock.t += 600
    with pytest.raises(InvoiceExpired):
        ledger.pay_from_outside(late.payment_request)
    assert ledger.wallet(shop.btc_wallet_id).balance == 700
    assert ledger.snapshot()["totals"]["externalIn"] == 700


def test_a_held_payment_debits_now_credits_on_settlement_and_cannot_be_doubled(ledger: Ledger) -> None:
    payer, _ = ledger.create_account("payer", balance=1_000)
    payee, _ = ledger.create_account("payee")
    invoice = ledger.create_invoice(payee.btc_wallet_id, 400)
    held = ledger.send_payment(payer.btc_wallet_id, invoice.payment_request, hold=True)
    assert held.result is SendResult.PENDING and held.payment is not None
    assert ledger.send_payment(payer.btc_wallet_id, invoice.payment_request).result is SendResult.PENDING
    assert ledger.invoice_status(invoice) is InvoiceStatus.PENDING
    assert (ledger.wallet(payer.btc_wallet_id).balance, ledger.wallet(payee.btc_wallet_id).balance) == (600, 0)
    assert ledger.audit() == []
    ledger.settle_payment(held.payment.id)
    assert ledger.invoice_status(invoice) is InvoiceStatus.PAID
    assert (ledger.wallet(payer.btc_wallet_id).balance, ledger.wallet(payee.btc_wallet_id).balance) == (600, 400)
    assert ledger.audit() == []


def test_a_payment_held_past_expiry_keeps_the_invoice_and_ends_paid(ledger: Ledger, clock: FakeClock) -> None:
    """Blink answers EXPIRED past expiry until a held payment is recorded, then PAID; no one else can pay it."""
    payer, _ = ledger.create_account("payer", balance=1_000)
    other, _ = ledger.create_account("other", balance=1_000)
    payee, _ = ledger.create_account("payee")
    invoice = ledger.create_invoice(payee.btc_wallet_id, 400, expires_in_minutes=1)
    held = ledger.send_payment(payer.btc_wallet_id, invoice.payment_request, hold=True)
    assert held.result is SendResult.PENDING and held.payment is not None
    clock.t += 120
    assert ledger.invoice_status(invoice) is InvoiceStatus.EXPIRED and ledger.in_flight(invoice)
    assert ledger.send_payment(other.btc_wallet_id, invoice.payment_request).result is SendResult.PENDING
    with pytest.raises(PaymentInFlight):
        ledger.pay_from_outside(invoice.payment_request)
    ledger.settle_payment(held.payment.id)
    assert ledger.invoice_status(invoice) is InvoiceStatus.PAID
    balances = [ledger.wallet(w).balance for w in (payer.btc_wallet_id, other.btc_wallet_id, payee.btc_wallet_id)]
    assert balances == [600, 1_000, 400]
    assert ledger.audit() == []


def test_listeners_hear_each_side_in_commit_order(ledger: Ledger) -> None:
    heard: list[LedgerEvent] = []
    ledger.add_listener(heard.append)
    payer, _ = ledger.create_account("payer", balance=1_000)
    payee, _ = ledger.create_account("payee")
    invoice = ledger.create_invoice(payee.btc_wallet_id, 10)
    ledger.send_payment(payer.btc_wallet_id, invoice.payment_request)
    assert [(e.wallet_id, e.transaction.direction.value) for e in heard] == [
        (payee.btc_wallet_id, "RECEIVE"), (payer.btc_wallet_id, "SEND"),
    ]


def test_same_seed_same_ids_keys_and_preimages() -> None:
    def run(seed: int) -> tuple[str, str, str]:
        ledger = Ledger(seed=seed, clock=lambda: 1_700_000_000.0)
        account, key = ledger.create_account("shop")
        invoice = ledger.create_invoice(account.btc_wallet_id, 21)
        return account.btc_wallet_id, key.key, invoice.preimage

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_usernames_are_unique_without_regard_to_case(ledger: Ledger) -> None:
    ledger.create_account("Alice")
    with pytest.raises(LedgerError):
        ledger.create_account("alice")
    assert ledger.account_by_username("ALICE").username == "Alice"


def test_sim_clock_only_moves_forward() -> None:
    clock = SimClock()
    before = clock.now()
    assert clock.advance(3600) >= before + 3600
    with pytest.raises(ValueError):
        clock.advance(-1)


class Books(RuleBasedStateMachine):
    """Random invoices, internal and outside payments, held payments and clock jumps: the books always balance."""

    @initialize(balances=st.lists(st.integers(0, 5_000), min_size=2, max_size=4))
    def open_accounts(self, balances: list[int]) -> None:
        self.clock = FakeClock()
        self.ledger = Ledger(seed=1, clock=self.clock)
        self.wallets = [self.ledger.create_account(f"user{i}", b)[0].btc_wallet_id for i, b in enumerate(balances)]
        self.expected = dict(zip(self.wallets, balances, strict=True))
        self.invoices: list[str] = []
        self.held: list[str] = []
        self.paid: set[str] = set()

    @rule(wallet=st.integers(0, 3), amount=st.integers(1, 3_000), minutes=st.sampled_from([1, 10, 1440]))
    def create_invoice(self, wallet: int, amount: int, minutes: int) -> None:
        wallet_id = self.wallets[wallet % len(self.wallets)]
        self.invoices.append(self.ledger.create_invoice(wallet_id, amount, expires_in_minutes=minutes).payment_request)

    @precondition(lambda self: self.invoices)
    @rule(sender=st.integers(0, 3), pick=st.integers(0, 1_000), hold=st.booleans())
    def pay_internally(self, sender: int, pick: int, hold: bool) -> None:
        sender_id = self.wallets[sender % len(self.wallets)]
        request = self.invoices[pick % len(self.invoices)]
        invoice = self.ledger.invoice_by_request(request)
        was_paid = invoice.payment_hash in self.paid
        outcome = self.ledger.send_payment(sender_id, request, hold=hold)
        if was_paid:
            assert outcome.result is SendResult.ALREADY_PAID
        if outcome.result is SendResult.SUCCESS:
            self.expected[sender_id] -= invoice.amount
            self.expected[invoice.wallet_id] += invoice.amount
            self.paid.add(invoice.payment_hash)
        elif outcome.held:
            assert outcome.payment is not None
            self.expected[sender_id] -= invoice.amount
            self.held.append(outcome.payment.id)

    @precondition(lambda self: self.invoices)
    @rule(pick=st.integers(0, 1_000))
    def pay_from_outside(self, pick: int) -> None:
        request = self.invoices[pick % len(self.invoices)]
        invoice = self.ledger.invoice_by_request(request)
        try:
            self.ledger.pay_from_outside(request)
        except LedgerError:
            return
        assert invoice.payment_hash not in self.paid
        self.expected[invoice.wallet_id] += invoice.amount
        self.paid.add(invoice.payment_hash)

    @precondition(lambda self: self.held)
    @rule()
    def settle_oldest_held(self) -> None:
        payment = self.ledger.settle_payment(self.held.pop(0))
        self.expected[payment.recipient_wallet_id] += payment.amount
        self.paid.add(payment.payment_hash)

    @rule(seconds=st.sampled_from([30, 120, 900]))
    def time_passes(self, seconds: int) -> None:
        self.clock.t += seconds

    @invariant()
    def books_balance(self) -> None:
        assert self.ledger.audit() == []
        assert {w: self.ledger.wallet(w).balance for w in self.wallets} == self.expected
        paid = {i.payment_hash for i in self.ledger.invoices() if i.paid_at is not None}
        assert paid == self.paid


Books.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestBooks = Books.TestCase
