"""The statistics the API and the CLI show: read from PostgreSQL, cached in Redis for an hour.

While PostgreSQL is down (and the file fallback is on) the answer says so and
counts what waits in the journal instead of failing.
"""

import asyncio
from datetime import UTC, datetime
from typing import Any

from tipsplit.store.errors import StorageUnavailable
from tipsplit.store.hot import HotStore, if_up
from tipsplit.store.intake import number
from tipsplit.store.journal import Journal
from tipsplit.store.legacy_file import FileTipStore
from tipsplit.store.metrics import MetricsCollector
from tipsplit.store.reports import Reports


class StatsCache:
    """Last-24-hours numbers and per-recipient totals, the Redis copy first."""

    def __init__(
        self,
        reports: Reports,
        hot: HotStore | None,
        metrics: MetricsCollector,
        *,
        journal: Journal | None = None,
        file_store: FileTipStore | None = None,
    ) -> None:
        self._reports = reports
        self._hot = hot
        self._metrics = metrics
        self._journal = journal
        self._file_store = file_store

    async def get_stats(self) -> dict[str, Any]:
        """Last-24-hours numbers, from the Redis stats cache (1 h) or PostgreSQL on a miss."""
        today = datetime.now(UTC).date()
        cached = await if_up(self._hot, lambda hot: hot.get_daily_stats(today))
        if cached is not None:
            self._metrics.record_cache_hit()
            return cached
        self._metrics.record_cache_miss()
        try:
            last_24h = await self._reports.stats_24h()
        except StorageUnavailable:
            if self._journal is None or self._file_store is None:
                raise
            return await self._fallback_stats(self._journal, self._file_store)
        leaders = await self._reports.recipient_stats(limit=20)
        stats = {
            "last24Hours": last_24h,
            "recipients": [
                {
                    "username": r.recipient_username,
                    "totalTips": r.total_tips_received,
                    "count": r.total_tips_count,
                    "averageTip": float(r.average_tip_amount) if r.average_tip_amount is not None else None,
                    "lastTipAt": r.last_tip_received_at.isoformat() if r.last_tip_received_at else None,
                }
                for r in leaders
            ],
            "storage": "hybrid (Redis + PostgreSQL)" if self._hot is not None else "PostgreSQL",
            "generatedAt": datetime.now(UTC).isoformat(),
        }
        await if_up(self._hot, lambda hot: hot.set_daily_stats(today, stats))
        return stats

    async def get_recipient_stats(self, username: str) -> dict[str, Any] | None:
        """One recipient's lifetime tip totals, cached in Redis for an hour."""
        cached = await if_up(self._hot, lambda hot: hot.get_recipient_stats(username))
        if cached is not None:
            return cached
        found = await self._reports.stats_for_recipient(username)
        if found is None:
            return None
        stats = {
            "username": found.recipient_username,
            "totalTipsReceived": found.total_tips_received,
            "totalTipsCount": found.total_tips_count,
            "averageTipAmount": number(found.average_tip_amount),
            "lastTipReceivedAt": found.last_tip_received_at.isoformat() if found.last_tip_received_at else None,
        }
        await if_up(self._hot, lambda hot: hot.set_recipient_stats(username, stats))
        return stats

    @staticmethod
    async def _fallback_stats(journal: Journal, file_store: FileTipStore) -> dict[str, Any]:
        return {
            "last24Hours": None,
            "storage": "degraded: PostgreSQL unavailable",
            "journalPending": await asyncio.to_thread(len, journal),
            "fileStore": await asyncio.to_thread(file_store.stats),
            "generatedAt": datetime.now(UTC).isoformat(),
        }
