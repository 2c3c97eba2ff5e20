"""Reports against a real PostgreSQL: completed volume by hour and day, recipient totals, metric sums."""

from datetime import UTC, datetime, timedelta

import pytest

from tests.store.conftest import insert, new_hash, settle_all_legs
from tipsplit.domain.records import MetricSample
from tipsplit.keyring import KeyRing
from tipsplit.store.postgres import PostgresStore


async def completed(pg: PostgresStore, keyring: KeyRing, **overrides: object) -> str:
    payment_hash = await insert(pg, keyring, **overrides)
    await pg.claims.claim(payment_hash, "me", 60)
    await settle_all_legs(pg, payment_hash)
    assert await pg.outcomes.complete(payment_hash, "me", {"success": True})
    return payment_hash


async def test_volume_series_counts_completed_payments_only(pg: PostgresStore, keyring: KeyRing) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    before = {bucket: (volume, tips, count) for bucket, volume, tips, count in await pg.reports.volume_series(since, "hour")}
    await completed(pg, keyring)
    await insert(pg, keyring)
    after = await pg.reports.volume_series(since, "hour")
    bucket, volume, tips, count = after[-1]
    old_volume, old_tips, old_count = before.get(bucket, (0, 0, 0))
    assert (volume - old_volume, tips - old_tips, count - old_count) == (11_500, 1_500, 1)
    assert await pg.reports.volume_series(since, "day")
    with pytest.raises(ValueError, match="bucket"):
        await pg.reports.volume_series(since, "week")


async def test_recipient_totals(pg: PostgresStore, keyring: KeyRing) -> None:
    username = f"rep_{new_hash()[:10]}"
    assert await pg.reports.stats_for_recipient(username) is None
    await completed(pg, keyring, tipRecipients=[{"username": username, "share": 100}])
    stats = await pg.reports.stats_for_recipient(username)
    assert stats is not None and (stats.total_tips_received, stats.total_tips_count) == (1_500, 1)
    assert username in {s.recipient_username for s in await pg.reports.recipient_stats(limit=10_000)}


async def test_metric_totals_sum_what_was_inserted(pg: PostgresStore) -> None:
    name, other = f"m_{new_hash()[:8]}", f"m_{new_hash()[:8]}"
    now = datetime.now(UTC)
    samples = [MetricSample(name, 2.5, "count", {"token": "x", "secret": "s"}, now), MetricSample(name, 1, "count", None, now)]
    assert await pg.reports.insert_metrics(samples) == 2
    assert await pg.reports.insert_metrics([]) == 0
    assert await pg.reports.metric_totals([name, other], now - timedelta(minutes=1)) == {name: 3.5, other: 0.0}
    assert await pg.reports.metric_totals([name], now + timedelta(minutes=1)) == {name: 0.0}
