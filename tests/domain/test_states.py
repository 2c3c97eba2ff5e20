"""The transition tables: every guard the store applies is a row of them, and what is final stays final."""

import pytest

from tipsplit.domain.states import (
    CLAIMABLE,
    CLAIMED,
    EXPIRABLE,
    FINAL_LEG_STATUSES,
    LEG_MOVES,
    LEG_WAITABLE,
    LEG_WALLET_SETTABLE,
    LEGS_RESET,
    PAYMENT_MOVES,
    RECLAIMABLE,
    RELEASE_TARGETS,
    LegStatus,
    PaymentStatus,
    leg_moves_from,
    payment_moves_from,
    values,
)


def test_every_status_has_a_row() -> None:
    assert set(PAYMENT_MOVES) == set(PaymentStatus)
    assert set(LEG_MOVES) == set(LegStatus)


def test_a_completed_payment_never_moves_again() -> None:
    assert all(PaymentStatus.COMPLETED not in sources for sources in PAYMENT_MOVES.values())


def test_a_settled_or_skipped_leg_never_moves_and_nothing_becomes_skipped() -> None:
    for final in FINAL_LEG_STATUSES:
        assert all(final not in sources for sources in LEG_MOVES.values()), final
    assert LEG_MOVES[LegStatus.SKIPPED] == frozenset()


def test_the_payment_guards_are_moves_of_the_table() -> None:
    assert CLAIMABLE < RECLAIMABLE <= PAYMENT_MOVES[PaymentStatus.PROCESSING]
    assert PaymentStatus.FAILED not in CLAIMABLE, "a failed payment is only taken up when asked"
    assert CLAIMED <= PAYMENT_MOVES[PaymentStatus.COMPLETED] and CLAIMED <= PAYMENT_MOVES[PaymentStatus.FAILED]
    assert RECLAIMABLE <= PAYMENT_MOVES[PaymentStatus.FAILED], "what a claim takes, an unclaimed failure takes"
    assert all(CLAIMED <= PAYMENT_MOVES[target] for target in RELEASE_TARGETS)
    assert EXPIRABLE <= PAYMENT_MOVES[PaymentStatus.EXPIRED]
    assert PaymentStatus.PROCESSING in PAYMENT_MOVES[PaymentStatus.PROCESSING], "a lapsed lease is taken over"
    assert PAYMENT_MOVES[PaymentStatus.COMPLETED] == CLAIMED, "only the claim's owner completes a payment"


def test_the_leg_guards_hold_no_final_status() -> None:
    for guard in (LEG_WALLET_SETTABLE, LEG_WAITABLE, LEGS_RESET):
        assert not guard & FINAL_LEG_STATUSES
    assert LEG_MOVES[LegStatus.INVOICED] >= {LegStatus.PENDING}, "a pending leg gets its invoice"


@pytest.mark.parametrize(
    ("target", "asked", "allowed"),
    [
        (PaymentStatus.COMPLETED, {PaymentStatus.PENDING, PaymentStatus.PROCESSING}, ["processing"]),
        (PaymentStatus.PROCESSING, RECLAIMABLE, ["expired", "failed", "pending"]),
        (PaymentStatus.EXPIRED, {PaymentStatus.COMPLETED}, []),
    ],
)
def test_payment_moves_from_keeps_only_legal_sources(
    target: PaymentStatus, asked: set[PaymentStatus], allowed: list[str]
) -> None:
    assert payment_moves_from(target, asked) == allowed


def test_leg_moves_from_keeps_only_legal_sources() -> None:
    assert leg_moves_from(LegStatus.FAILED, {LegStatus.SUCCEEDED, LegStatus.PAYING}) == ["paying"]
    assert leg_moves_from(LegStatus.PENDING, {LegStatus.INVOICED}) == []
    assert leg_moves_from(LegStatus.SUCCEEDED, {LegStatus.PAYING, LegStatus.INVOICED}) == ["invoiced", "paying"]
    assert values({LegStatus.PENDING, LegStatus.FAILED}) == ["failed", "pending"]
