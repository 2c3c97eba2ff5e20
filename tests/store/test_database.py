"""The pool against a real PostgreSQL: killed and cut connections are replaced, never reused."""

import asyncio

import pytest

from tests.store.conftest import insert
from tests.support.tcp_proxy import behind, proxy_for
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
