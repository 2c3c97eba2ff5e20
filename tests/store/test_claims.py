"""Claims against a real PostgreSQL: one winner among concurrent claimers, leases, release, paid, work queues."""

import asyncio

import pytest

from tests.store.conftest import insert, settle_all_legs
from tests.support.pg_queries import QueryCounter
from tipsplit.domain.states import PaymentStatus
from tipsplit.keyring import KeyRing
from tipsplit.store.postgres import PostgresStore


async def test_fifty_concurrent_claimers_one_wins(migrated_url: str, keyring: KeyRing) -> None:
    stores = [await PostgresStore.connect(migrated_url, min_size=1, max_size=2) for _ in range(5)]
    try:
        payment_hash = await insert(stores[0], keyring)
        results = await asyncio.gather(
            *(stores[i % 5].claims.claim(payment_hash, f"owner-{i}", 60) for i in range(50))
        )
        winners = [r for r in results if r is not None]
        assert len(winners) == 1
        assert winners[0].status == PaymentStatus.PROCESSING
        assert len(winners[0].legs) == 3
        claimed = [e for e in await stores[0].events.of_payment(payment_hash) if e.event_type == "claimed"]
        assert len(claimed) == 1 and claimed[0].event_data["previousStatus"] == "pending"
    finally:
        for store in stores:
            await store.close()


async def test_expired_lease_is_taken_over(pg: PostgresStore, keyring: KeyRing) -> None:
    payment_hash = await insert(pg, keyring)
    assert await pg.claims.claim(payment_hash, "first", 0.2) is not None
    assert await pg.claims.claim(payment_hash, "second", 60) is None
    assert await pg.claims.stale() == [] or payment_hash not in await pg.claims.stale()
    await asyncio.sleep(0.3)
    assert payment_hash in await pg.claims.stale(limit=1000)
    taken = await pg.claims.claim(payment_hash, "second", 60)
    assert taken is not None and taken.claim_owner == "second" and taken.settle_attempts == 2
    assert not await pg.claims.renew(payment_hash, "first", 60)
    assert not await pg.claims.release(payment_hash, "first", PaymentStatus.PENDING, "not_paid_yet")
    assert await pg.claims.renew(payment_hash, "second", 60)
    claimed = [e.event_data for e in await pg.events.of_payment(payment_hash) if e.event_type == "claimed"]
    assert claimed[1]["previousOwner"] == "first" and claimed[1]["previousStatus"] == "processing"


async def test_release_back_to_pending_and_expire(pg: PostgresStore, keyring: KeyRing) -> None:
    payment_hash = await insert(pg, keyring)
    await pg.claims.claim(payment_hash, "me", 60)
    assert await pg.claims.release(payment_hash, "me", PaymentStatus.PENDING, "not_paid_yet", {"why": "unpaid"})
    assert payment_hash in await pg.claims.pending(limit=10_000)
    await pg.claims.claim(payment_hash, "me", 60)
    assert await pg.claims.expire(payment_hash, "me")
    payment = await pg.payments.get(payment_hash)
    assert payment is not None and payment.status == PaymentStatus.EXPIRED and payment.claim_owner is None
    with pytest.raises(ValueError):
        await pg.claims.release(payment_hash, "me", PaymentStatus.COMPLETED, "nope")


async def test_mark_paid_once(pg: PostgresStore, keyring: KeyRing) -> None:
    payment_hash = await insert(pg, keyring)
    assert not await pg.claims.mark_paid(payment_hash, "me")
    await pg.claims.claim(payment_hash, "me", 60)
    assert await pg.claims.mark_paid(payment_hash, "me")
    assert not await pg.claims.mark_paid(payment_hash, "me")
    assert [e.event_type for e in await pg.events.of_payment(payment_hash)].count("paid") == 1


async def test_a_claim_told_the_invoice_is_paid_records_it_once_in_its_one_statement(
    pg: PostgresStore, keyring: KeyRing
) -> None:
    warm, payment_hash = await insert(pg, keyring), await insert(pg, keyring)
    assert await pg.claims.claim(warm, "me", 60, paid=True), "asyncpg learns the statement's types once"
    with QueryCounter(pg) as queries:
        claimed = await pg.claims.claim(payment_hash, "me", 60, paid=True)
        assert await queries.count() == 1, "claim, paid, recipients and legs in one statement"
    assert claimed is not None and claimed.paid_at is not None
    assert [r.username for r in claimed.tip_recipients] == ["alice_tips", "bob_tips"]
    assert [leg.leg for leg in claimed.legs] == ["base", "tip:1", "tip:2"]
    assert not await pg.claims.mark_paid(payment_hash, "me"), "already recorded by the claim"
    assert await pg.claims.release(payment_hash, "me", PaymentStatus.PENDING, "not_paid_yet")
    again = await pg.claims.claim(payment_hash, "other", 60, paid=True)
    assert again is not None and again.paid_at == claimed.paid_at
    trail = [e.event_type for e in await pg.events.of_payment(payment_hash)]
    assert trail == ["created", "claimed", "paid", "not_paid_yet", "claimed"]
    unpaid = await insert(pg, keyring)
    bare = await pg.claims.claim(unpaid, "me", 60, details=False)
    assert bare is not None and bare.paid_at is None and bare.legs == []
    assert "paid" not in [e.event_type for e in await pg.events.of_payment(unpaid)]


async def test_work_queues_page_and_keep_to_their_pos_accounts(pg: PostgresStore, keyring: KeyRing) -> None:
    ours = sorted([await insert(pg, keyring, posWalletId="pos-ours") for _ in range(3)])
    default = await insert(pg, keyring)
    theirs = await insert(pg, keyring, posWalletId="pos-theirs")
    scope = (["pos-ours", "pos-default"], "pos-default")
    pending = await pg.claims.pending(limit=100_000, accounts=scope)
    assert set(ours) | {default} <= set(pending) and theirs not in pending
    assert pending == sorted(pending)
    page = await pg.claims.pending(limit=1, after=ours[0], accounts=(["pos-ours"], None))
    assert page == [ours[1]]
    for payment_hash in (ours[0], theirs):
        assert await pg.claims.claim(payment_hash, "crashed", 0.001) is not None
    await asyncio.sleep(0.05)
    stale = await pg.claims.stale(limit=100_000, accounts=scope)
    assert ours[0] in stale and theirs not in stale
    assert ours[0] not in await pg.claims.pending(limit=100_000, accounts=scope)


async def test_a_failed_payment_is_claimed_only_when_asked_and_a_completed_one_never(
    pg: PostgresStore, keyring: KeyRing
) -> None:
    done = await insert(pg, keyring)
    await pg.claims.claim(done, "me", 60)
    await settle_all_legs(pg, done)
    assert await pg.outcomes.complete(done, "me", {"success": True})
    assert await pg.claims.claim(done, "other", 60, allow_failed=True) is None
    assert await pg.outcomes.fail_unclaimed(done, "other", "late") is None
    payment_hash = await insert(pg, keyring)
    assert await pg.claims.claim(payment_hash, "me", 60, details=False) is not None
    assert await pg.claims.release(payment_hash, "me", PaymentStatus.FAILED, "gave_up", {"error": "x"})
    assert await pg.claims.claim(payment_hash, "other", 60) is None, "failed: taken up only when asked"
    again = await pg.claims.claim(payment_hash, "other", 60, allow_failed=True, details=False)
    assert again is not None and again.legs == [] and again.tip_recipients == []
    assert not await pg.claims.renew(payment_hash, "me", 60)
    assert await pg.claims.renew(payment_hash, "other", 60)
    released = [e.event_data for e in await pg.events.of_payment(payment_hash) if e.event_type == "gave_up"]
    assert released == [{"owner": "me", "status": "failed", "error": "x"}]
