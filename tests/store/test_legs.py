"""Legs against a real PostgreSQL: the destination invoice is stored once, every move is conditional."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from tests.store.conftest import insert, new_hash, settle_all_legs
from tests.support.pg_queries import QueryCounter
from tipsplit.domain.states import LegStatus, WalletCurrency
from tipsplit.keyring import KeyRing
from tipsplit.store.postgres import PostgresStore


async def test_leg_invoice_is_set_once(pg: PostgresStore, keyring: KeyRing) -> None:
    payment_hash = await insert(pg, keyring)
    await pg.claims.claim(payment_hash, "me", 60)
    first, second = new_hash(), new_hash()
    leg = await pg.legs.set_invoice(payment_hash, "base", first, "lnbc-first")
    assert (leg.status, leg.dest_payment_hash) == (LegStatus.INVOICED, first)
    again = await pg.legs.set_invoice(payment_hash, "base", second, "lnbc-second")
    assert (again.dest_payment_hash, again.dest_payment_request) == (first, "lnbc-first")
    racing = await asyncio.gather(*(pg.legs.set_invoice(payment_hash, "tip:1", new_hash(), "r") for _ in range(10)))
    assert len({leg.dest_payment_hash for leg in racing}) == 1
    with pytest.raises(LookupError):
        await pg.legs.set_invoice(payment_hash, "tip:9", new_hash(), "r")
    assert [e.event_type for e in await pg.events.of_payment(payment_hash)].count("leg_invoiced") == 2


async def test_an_invoice_stored_for_a_send_counts_the_attempt_in_the_same_statement(
    pg: PostgresStore, keyring: KeyRing
) -> None:
    warm, payment_hash = await insert(pg, keyring), await insert(pg, keyring)
    await pg.legs.set_invoice(warm, "base", new_hash(), "lnbc1", sending={"amount": 1})
    mine, theirs = new_hash(), new_hash()
    with QueryCounter(pg) as queries:
        leg = await pg.legs.set_invoice(payment_hash, "base", mine, "lnbc-mine", sending={"amount": 10_000, "apiKey": "x"})
        assert await queries.count() == 1, queries.statements
    assert (leg.status, leg.dest_payment_hash, leg.attempts) == (LegStatus.PAYING, mine, 1)
    late = await pg.legs.set_invoice(payment_hash, "base", theirs, "lnbc-theirs", sending={"amount": 10_000})
    assert (late.dest_payment_hash, late.attempts) == (mine, 1), "the second caller is shown the first's invoice"
    trail = [(e.event_type, e.event_data) for e in await pg.events.of_payment(payment_hash)]
    assert trail[1:] == [
        ("leg_invoiced", {"leg": "base", "destPaymentHash": mine}),
        ("leg_payment_sent", {"leg": "base", "from": "invoiced", "to": "paying", "amount": 10_000}),
    ]


async def test_leg_transitions_are_conditional(pg: PostgresStore, keyring: KeyRing) -> None:
    payment_hash = await insert(pg, keyring)
    assert not await pg.legs.transition(payment_hash, "base", {LegStatus.INVOICED}, LegStatus.PAYING)
    await pg.legs.set_invoice(payment_hash, "base", new_hash(), "r")
    retry_at = datetime.now(UTC) + timedelta(seconds=30)
    assert await pg.legs.transition(
        payment_hash, "base", {LegStatus.INVOICED}, LegStatus.FAILED, error="route not found",
        count_attempt=True, next_attempt_at=retry_at, event_type="leg_failed",
    )
    leg = (await pg.legs.of_payment(payment_hash))[0]
    assert (leg.status, leg.attempts, leg.last_error) == (LegStatus.FAILED, 1, "route not found")
    assert abs((leg.next_attempt_at - retry_at).total_seconds()) < 0.01
    assert await pg.legs.reset_invoice(payment_hash, "base", {LegStatus.FAILED})
    leg = (await pg.legs.of_payment(payment_hash))[0]
    assert leg.dest_payment_hash is None and leg.status == LegStatus.FAILED
    assert await pg.legs.set_wallet(payment_hash, "tip:1", "alice-wallet", WalletCurrency.USD)
    tip = (await pg.legs.of_payment(payment_hash))[1]
    assert (tip.destination_wallet_id, tip.destination_currency) == ("alice-wallet", WalletCurrency.USD)


async def test_a_move_the_table_forbids_is_refused_whatever_the_caller_expects(pg: PostgresStore, keyring: KeyRing) -> None:
    payment_hash = await insert(pg, keyring)
    await settle_all_legs(pg, payment_hash)
    before = await pg.events.of_payment(payment_hash)
    assert not await pg.legs.transition(payment_hash, "base", {LegStatus.SUCCEEDED}, LegStatus.FAILED, error="late")
    assert not await pg.legs.transition(payment_hash, "base", {LegStatus.SUCCEEDED}, LegStatus.INVOICED)
    assert not await pg.legs.reset_invoice(payment_hash, "base", {LegStatus.SUCCEEDED})
    leg = (await pg.legs.of_payment(payment_hash))[0]
    assert (leg.status, leg.last_error) == (LegStatus.SUCCEEDED, None) and leg.completed_at is not None
    assert len(await pg.events.of_payment(payment_hash)) == len(before), "a refused move writes no event"


async def test_each_leg_change_is_one_statement_with_its_event(pg: PostgresStore, keyring: KeyRing) -> None:
    payment_hash = await insert(pg, keyring)
    with QueryCounter(pg) as queries:
        await pg.legs.set_invoice(payment_hash, "base", new_hash(), "lnbc1")
        assert await pg.legs.transition(
            payment_hash, "base", {LegStatus.INVOICED}, LegStatus.PAYING, count_attempt=True,
            event_type="leg_payment_sent", event_data={"amount": 10_000, "apiKey": "must not be kept"},
        )
        assert await pg.legs.set_wallet(payment_hash, "tip:1", "alice-wallet", WalletCurrency.BTC)
        assert await queries.count() == 3, queries.statements
    sent = [e for e in await pg.events.of_payment(payment_hash) if e.event_type == "leg_payment_sent"]
    assert sent[0].event_data == {"leg": "base", "from": "invoiced", "to": "paying", "amount": 10_000}
    types = [e.event_type for e in await pg.events.of_payment(payment_hash)]
    assert types == ["created", "leg_invoiced", "leg_payment_sent", "leg_wallet_resolved"]


async def test_a_send_taken_back_returns_its_attempt_in_the_same_statement(pg: PostgresStore, keyring: KeyRing) -> None:
    payment_hash = await insert(pg, keyring)
    await pg.legs.set_invoice(payment_hash, "base", new_hash(), "lnbc1")
    assert await pg.legs.transition(payment_hash, "base", {LegStatus.INVOICED}, LegStatus.PAYING, count_attempt=True)
    with QueryCounter(pg) as queries:
        assert await pg.legs.transition(
            payment_hash, "base", {LegStatus.PAYING}, LegStatus.INVOICED, take_back_attempt=True
        )
        assert await queries.count() == 1, queries.statements
    leg = (await pg.legs.of_payment(payment_hash))[0]
    assert (leg.status, leg.attempts) == (LegStatus.INVOICED, 0)
    back = (await pg.events.of_payment(payment_hash))[-1]
    assert back.event_data == {"leg": "base", "from": "paying", "to": "invoiced", "attemptTakenBack": True}
    with pytest.raises(ValueError):
        await pg.legs.transition(
            payment_hash, "base", {LegStatus.INVOICED}, LegStatus.PAYING, count_attempt=True, take_back_attempt=True
        )


async def test_a_wait_is_written_once_per_reason(pg: PostgresStore, keyring: KeyRing) -> None:
    payment_hash = await insert(pg, keyring)
    until = datetime.now(UTC) + timedelta(seconds=30)
    for _ in range(3):
        assert await pg.legs.wait(payment_hash, "tip:1", until, "destination invoice budget")
    assert await pg.legs.wait(payment_hash, "tip:1", until + timedelta(seconds=5), "another reason")
    leg = (await pg.legs.of_payment(payment_hash))[1]
    assert leg.waiting_for == "another reason"
    assert abs((leg.next_attempt_at - (until + timedelta(seconds=5))).total_seconds()) < 0.01
    waits = [e.event_data for e in await pg.events.of_payment(payment_hash) if e.event_type == "leg_waiting"]
    assert [w["for"] for w in waits] == ["destination invoice budget", "another reason"]
    await pg.legs.set_invoice(payment_hash, "tip:1", new_hash(), "lnbc1")
    assert not await pg.legs.wait(payment_hash, "tip:1", until, "budget"), "an invoiced leg does not wait"


async def test_an_unrecorded_generation_is_skipped_once(pg: PostgresStore, keyring: KeyRing) -> None:
    payment_hash = await insert(pg, keyring)
    assert await pg.legs.skip_invoice_generation(payment_hash, "base", 0, "ext-0")
    assert not await pg.legs.skip_invoice_generation(payment_hash, "base", 0, "ext-0"), "already past it"
    assert (await pg.legs.of_payment(payment_hash))[0].invoice_generation == 1
    unrecorded = [e.event_data for e in await pg.events.of_payment(payment_hash)
                  if e.event_type == "leg_invoice_unrecorded"]
    assert unrecorded == [{"leg": "base", "externalId": "ext-0"}]


async def test_failed_legs_are_reset_only_while_the_payment_is_failed(pg: PostgresStore, keyring: KeyRing) -> None:
    payment_hash = await insert(pg, keyring)
    await pg.legs.set_invoice(payment_hash, "base", new_hash(), "lnbc1")
    assert await pg.legs.transition(
        payment_hash, "base", {LegStatus.INVOICED}, LegStatus.FAILED, error="no route", count_attempt=True,
        next_attempt_at=datetime.now(UTC) + timedelta(hours=1),
    )
    assert await pg.legs.reset_failed(payment_hash, "operator") == [], "the payment is pending, not failed"
    await pg.claims.claim(payment_hash, "me", 60)
    assert await pg.outcomes.fail(payment_hash, "me", "gave up")
    assert await pg.legs.reset_failed(payment_hash, "operator") == ["base"]
    leg = (await pg.legs.of_payment(payment_hash))[0]
    assert (leg.status, leg.attempts, leg.next_attempt_at) == (LegStatus.FAILED, 0, None)
    assert leg.dest_payment_hash is not None, "the invoice is kept: a retry asks Blink about it"
    reset = [e.event_data for e in await pg.events.of_payment(payment_hash) if e.event_type == "legs_reset"]
    assert reset == [{"legs": ["base"], "reason": "operator"}]
