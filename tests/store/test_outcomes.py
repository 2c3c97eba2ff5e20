"""Outcomes against a real PostgreSQL: completion only with every leg settled, failure with backoff."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from tests.store.conftest import TEST_API_KEY, insert, new_hash, settle_all_legs
from tests.support.pg_queries import QueryCounter
from tipsplit.domain.states import PaymentStatus
from tipsplit.keyring import KeyRing
from tipsplit.store.postgres import PostgresStore
from tipsplit.store.errors import PaymentStateError


async def test_complete_requires_settled_legs_and_keeps_stats(pg: PostgresStore, keyring: KeyRing) -> None:
    username = f"stat_{new_hash()[:10]}"
    amounts = []
    for tip in (100, 301):
        payment_hash = await insert(
            pg, keyring, tipAmount=tip, tipRecipients=[{"username": username, "share": 100}]
        )
        await pg.claims.claim(payment_hash, "me", 60)
        with pytest.raises(PaymentStateError, match="not settled"):
            await pg.outcomes.complete(payment_hash, "me", {"success": True})
        await settle_all_legs(pg, payment_hash)
        assert not await pg.outcomes.complete(payment_hash, "someone-else", {"success": True})
        assert await pg.outcomes.complete(payment_hash, "me", {"success": True, "userApiKey": TEST_API_KEY})
        amounts.append(tip)
    payment = await pg.payments.get(payment_hash)
    assert payment is not None and payment.status == PaymentStatus.COMPLETED
    assert payment.user_payment_hash == payment.leg("base").dest_payment_hash
    assert payment.tip_payment_hash == payment.leg("tip:1").dest_payment_hash
    completed = [e for e in await pg.events.of_payment(payment_hash) if e.event_type == "completed"][0]
    assert "userApiKey" not in completed.event_data["result"]
    assert completed.event_data["userPaymentHash"] == payment.user_payment_hash
    assert completed.event_data["legs"] == [
        {"leg": leg.leg, "status": "succeeded", "amount": leg.amount} for leg in payment.legs
    ]
    stats = {s.recipient_username: s for s in await pg.reports.recipient_stats(limit=10_000)}[username]
    assert (stats.total_tips_received, stats.total_tips_count) == (401, 2)
    assert str(stats.average_tip_amount) == "200.50"


async def test_fail_schedules_retry_until_attempts_run_out(migrated_url: str, keyring: KeyRing) -> None:
    pg = await PostgresStore.connect(migrated_url, min_size=1, max_size=2, max_settle_attempts=2, retry_base_seconds=0.05)
    try:
        payment_hash = await insert(pg, keyring)
        await pg.claims.claim(payment_hash, "me", 60)
        assert await pg.outcomes.fail(payment_hash, "me", "blink down")
        payment = await pg.payments.get(payment_hash)
        assert payment is not None and payment.status == PaymentStatus.FAILED and payment.next_attempt_at is not None
        assert payment.error_message == "blink down"
        await asyncio.sleep(0.1)
        assert payment_hash in await pg.claims.retryable_failed(datetime.now(UTC), limit=10_000)
        assert await pg.claims.claim(payment_hash, "me", 60) is None
        assert await pg.claims.claim(payment_hash, "me", 60, allow_failed=True) is not None
        assert await pg.outcomes.fail(payment_hash, "me", "still down")
        payment = await pg.payments.get(payment_hash)
        assert payment is not None and payment.next_attempt_at is None
        assert payment_hash not in await pg.claims.retryable_failed(datetime.now(UTC) + timedelta(days=1), limit=10_000)
    finally:
        await pg.close()


async def test_completion_and_failure_are_one_statement_each(pg: PostgresStore, keyring: KeyRing) -> None:
    warm, payment_hash = await insert(pg, keyring), await insert(pg, keyring)
    for ph in (warm, payment_hash):
        await pg.claims.claim(ph, "me", 60)
        await settle_all_legs(pg, ph)
    assert await pg.outcomes.complete(warm, "me", {"success": True}), "asyncpg learns the statements' types once"
    with QueryCounter(pg) as queries:
        assert await pg.outcomes.complete(payment_hash, "me", {"success": True})
        assert await queries.count() == 1, queries.statements
    warm, failing = await insert(pg, keyring), await insert(pg, keyring)
    for ph in (warm, failing):
        await pg.claims.claim(ph, "me", 60)
    assert await pg.outcomes.fail(warm, "me", "no route")
    with QueryCounter(pg) as queries:
        archived = await pg.outcomes.fail(failing, "me", "no route")
        assert await queries.count() == 1
    assert archived is not None and archived.recipients == ("alice_tips", "bob_tips")


async def test_an_unclaimed_failure_takes_what_a_claim_would(pg: PostgresStore, keyring: KeyRing) -> None:
    payment_hash = await insert(pg, keyring)
    assert await pg.claims.claim(payment_hash, "live", 60) is not None
    assert await pg.outcomes.fail_unclaimed(payment_hash, "remover", "stop") is None, "a live claim is respected"
    assert await pg.claims.release(payment_hash, "live", PaymentStatus.EXPIRED, "expired")
    archived = await pg.outcomes.fail_unclaimed(payment_hash, "remover", "stop")
    assert archived is not None and archived.recipients == ("alice_tips", "bob_tips")
    payment = await pg.payments.get(payment_hash)
    assert payment is not None and (payment.status, payment.settle_attempts) == (PaymentStatus.FAILED, 2)
    failed = [e.event_data for e in await pg.events.of_payment(payment_hash) if e.event_type == "failed"]
    assert failed[0]["previousStatus"] == "expired" and failed[0]["previousOwner"] is None


async def test_only_pending_payments_past_their_expiry_are_archived_expired(pg: PostgresStore, keyring: KeyRing) -> None:
    expired, claimed, current = (new_hash() for _ in range(3))
    for payment_hash in (expired, claimed):
        await insert(pg, keyring, payment_hash, expiresAt=(datetime.now(UTC) - timedelta(minutes=1)).isoformat())
    await insert(pg, keyring, current)
    assert await pg.claims.claim(claimed, "me", 60) is not None
    moved = await pg.outcomes.archive_expired([expired, claimed, current], "legacy_expired", {"source": "file"})
    assert moved == [expired]
    assert (await pg.payments.get(expired, with_legs=False)).status == PaymentStatus.EXPIRED
    assert [e.event_data for e in await pg.events.of_payment(expired) if e.event_type == "legacy_expired"] == [
        {"source": "file"}
    ]
    assert await pg.outcomes.archive_expired([], "legacy_expired", {}) == []


async def test_concurrent_unclaimed_failures_share_one_statement_each_with_its_own_answer(
    pg: PostgresStore, keyring: KeyRing
) -> None:
    free = [await insert(pg, keyring) for _ in range(3)]
    held = await insert(pg, keyring)
    assert await pg.claims.claim(held, "live", 60) is not None
    with QueryCounter(pg) as queries:
        answers = await asyncio.gather(
            *(pg.outcomes.fail_unclaimed(h, f"remover-{n}", f"stop {n}") for n, h in enumerate([*free, held]))
        )
        await queries.count()
    assert [a is not None for a in answers] == [True, True, True, False], "a live claim is respected in a batch"
    assert all(a.recipients == ("alice_tips", "bob_tips") for a in answers if a is not None)
    failing = [s for s in queries.statements if "UPDATE payment_splits" in s]
    assert len(failing) == 1, "the four failures shared one statement"
    for n, payment_hash in enumerate(free):
        payment = await pg.payments.get(payment_hash)
        assert payment is not None and (payment.status, payment.error_message) == (PaymentStatus.FAILED, f"stop {n}")
        failed = [e.event_data for e in await pg.events.of_payment(payment_hash) if e.event_type == "failed"]
        assert failed == [failed[0]] and (failed[0]["owner"], failed[0]["error"]) == (f"remover-{n}", f"stop {n}")
    assert (await pg.payments.get(held)).status == PaymentStatus.PROCESSING


async def test_an_unclaimed_failure_in_the_callers_transaction(pg: PostgresStore, keyring: KeyRing) -> None:
    payment_hash = await insert(pg, keyring)
    async with pg.db.transaction() as conn:
        archived = await pg.outcomes.fail_unclaimed(payment_hash, "remover", "stop", conn=conn)
    assert archived is not None
    assert (await pg.payments.get(payment_hash)).status == PaymentStatus.FAILED
