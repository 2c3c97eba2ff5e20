"""Legs against a real PostgreSQL: the destination invoice is stored once, every move is conditional."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from tests.store.conftest import insert, new_hash
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
