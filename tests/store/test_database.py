"""The database against a real PostgreSQL: broken connections are replaced, parts share a transaction, notices wait for its commit."""

import asyncio
from collections.abc import Sequence

import pytest

from tests.store.conftest import insert
from tests.support.tcp_proxy import behind, proxy_for
from tipsplit.domain.states import PaymentStatus
from tipsplit.keyring import KeyRing
from tipsplit.store.postgres import PostgresStore
from tipsplit.store.errors import StorageUnavailable


async def test_pool_recovers_after_connections_are_killed(pg: PostgresStore, keyring: KeyRing) -> None:
    payment_hash = await insert(pg, keyring)
    async with pg.db.connection() as conn:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    await asyncio.sleep(0.1)
    for _ in range(3):
        assert (await pg.payments.get(payment_hash)) is not None
    assert await pg.claims.claim(payment_hash, "me", 60) is not None


async def test_cut_connections_are_replaced_not_reused(migrated_url: str, keyring: KeyRing) -> None:
    proxy = proxy_for(migrated_url)
    port = await proxy.start()
    pg = await PostgresStore.connect(behind(migrated_url, port), min_size=3, max_size=3)
    try:
        payment_hash = await insert(pg, keyring)
        await proxy.cut()
        failures = 0
        for _ in range(10):
            try:
                await pg.events.add(payment_hash, "probe", {})
            except StorageUnavailable:
                failures += 1
        assert failures <= 3
        await proxy.stop()
        with pytest.raises(StorageUnavailable):
            await pg.payments.get(payment_hash)
        await proxy.start()
        assert await pg.payments.get(payment_hash) is not None
    finally:
        await pg.close()
        await proxy.stop()


async def test_parts_share_one_transaction_and_a_rollback_undoes_them_all(pg: PostgresStore, keyring: KeyRing) -> None:
    payment_hash = await insert(pg, keyring)
    with pytest.raises(RuntimeError, match="abort"):
        async with pg.db.transaction() as conn:
            assert await pg.claims.claim(payment_hash, "me", 60, conn=conn) is not None
            assert await pg.claims.mark_paid(payment_hash, "me", conn=conn)
            await pg.events.add(payment_hash, "probe", {"n": 1}, conn=conn)
            raise RuntimeError("abort")
    payment = await pg.payments.get(payment_hash)
    assert payment is not None and payment.status == PaymentStatus.PENDING and payment.paid_at is None
    assert [e.event_type for e in await pg.events.of_payment(payment_hash)] == ["created"]


async def test_notices_of_a_shared_transaction_are_sent_once_it_commits(pg: PostgresStore, keyring: KeyRing) -> None:
    first, second = await insert(pg, keyring), await insert(pg, keyring)
    told: list[tuple[list[str], PaymentStatus | None]] = []

    async def listener(hashes: Sequence[str]) -> None:
        seen = await pg.payments.get(first, with_legs=False)
        told.append((list(hashes), seen.status if seen else None))

    pg.change_listener = listener
    async with pg.db.transaction() as conn:
        assert await pg.claims.claim(first, "me", 60, conn=conn) is not None
        assert await pg.claims.claim(second, "me", 60, details=False, conn=conn) is not None
        assert told == [], "nothing is announced before the commit"
    assert told == [([first, second], PaymentStatus.PROCESSING)], "one notice, after the commit, that sees it"
    told.clear()
    with pytest.raises(RuntimeError):
        async with pg.db.transaction() as conn:
            assert await pg.claims.release(first, "me", PaymentStatus.PENDING, "not_paid", conn=conn)
            raise RuntimeError("abort")
    assert told == [], "a rolled back change is never announced"
    assert await pg.claims.release(first, "me", PaymentStatus.PENDING, "not_paid")
    assert told == [([first], PaymentStatus.PENDING)], "without a shared transaction: at once"
