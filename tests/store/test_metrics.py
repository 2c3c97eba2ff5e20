"""Metrics are buffered in memory and written in batches, never on the request path."""

from pathlib import Path

import psycopg

from tests.store.conftest import hybrid_settings, new_hash, tip_dict
from tests.support.tcp_proxy import behind, proxy_for
from tipsplit.keyring import KeyRing
from tipsplit.store import HybridTipStore
from tipsplit.store.postgres import PostgresStore
from tipsplit.store.metrics import MetricsCollector


async def test_n_records_are_one_insert(pg: PostgresStore, migrated_url: str) -> None:
    metrics = MetricsCollector(pg.reports, batch_size=1000)
    name = f"test_metric_{new_hash()[:8]}"
    for i in range(250):
        metrics.record(name, i, "ms", {"i": i})
    for _ in range(7):
        metrics.record_cache_hit()
    metrics.record_cache_miss()
    assert metrics.pending == 250
    assert await metrics.flush() == 252
    with psycopg.connect(migrated_url) as conn:
        count, transactions = conn.execute(
            "SELECT count(*), count(DISTINCT xmin::text) FROM system_metrics WHERE metric_name = %s", (name,)
        ).fetchone()
    assert (count, transactions) == (250, 1)
    assert metrics.pending == 0 and await metrics.flush() == 0


async def test_flush_waits_out_an_outage(migrated_url: str) -> None:
    proxy = proxy_for(migrated_url)
    port = await proxy.start()
    await proxy.stop()
    pg = PostgresStore.from_url(behind(migrated_url, port), min_size=1, max_size=2)
    metrics = MetricsCollector(pg.reports, max_buffer=5)
    name = f"outage_{new_hash()[:8]}"
    for i in range(8):
        metrics.record(name, i)
    assert await metrics.flush() == 0
    assert (metrics.pending, metrics.dropped) == (5, 3)
    await proxy.start()
    assert await metrics.flush() == 5
    await pg.close()
    await proxy.stop()


async def test_cache_hit_never_touches_postgres(
    migrated_url: str, redis_url: str, key_prefix: str, tmp_path: Path, keyring: KeyRing
) -> None:
    proxy = proxy_for(migrated_url)
    port = await proxy.start()
    store = HybridTipStore(hybrid_settings(behind(migrated_url, port), redis_url, key_prefix, tmp_path), keyring)
    await store.initialize(migrate=False)
    try:
        payment_hash = new_hash()
        await store.store_tip_data(payment_hash, tip_dict())
        await proxy.stop()
        for _ in range(20):
            assert await store.get_tip_data(payment_hash) is not None
        assert store.metrics._counters["redis_cache_hit"] == 20
    finally:
        await proxy.start()
        await store.close()
        await proxy.stop()
