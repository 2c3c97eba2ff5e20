"""Numbers for the operations dashboard, the seed's stats API and the CLI: totals, series, recipients, metrics."""

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from tipsplit.domain.records import MetricSample, RecipientStats
from tipsplit.domain.states import PaymentStatus
from tipsplit.store.database import Connection, Repository
from tipsplit.store.events import scrub

RECIPIENT_STATS_COLUMNS = (
    "recipient_username, total_tips_received, total_tips_count, average_tip_amount,"
    " first_tip_received_at, last_tip_received_at"
)


class Reports(Repository):
    """Read-only summaries of payments and system metrics, and the metrics' batched writes."""

    async def stats_24h(self, *, conn: Connection | None = None) -> dict[str, Any]:
        """The seed's last-24-hours numbers: counts by status, tips processed, average tip, volume."""
        row = await self.db.read(
            lambda c: c.fetchrow(
                """
                SELECT count(*) FILTER (WHERE status = 'pending') AS pending_count,
                       count(*) FILTER (WHERE status = 'processing') AS processing_count,
                       count(*) FILTER (WHERE status = 'completed') AS completed_count,
                       count(*) FILTER (WHERE status = 'failed') AS failed_count,
                       count(*) FILTER (WHERE status = 'expired') AS expired_count,
                       COALESCE(sum(tip_amount) FILTER (WHERE status = 'completed'), 0) AS total_tips_processed,
                       round(avg(tip_amount) FILTER (WHERE status = 'completed'), 2) AS average_tip_amount,
                       COALESCE(sum(total_amount) FILTER (WHERE status = 'completed'), 0) AS total_volume
                FROM payment_splits WHERE created_at > now() - interval '24 hours'
                """
            ),
            conn,
        )
        stats: dict[str, Any] = {key: int(row[key]) for key in row.keys() if key != "average_tip_amount"}
        average = row["average_tip_amount"]
        stats["average_tip_amount"] = float(average) if average is not None else 0.0
        return stats

    async def recipient_stats(self, limit: int = 50, *, conn: Connection | None = None) -> list[RecipientStats]:
        """Recipients by total tips received, largest first."""
        rows = await self.db.read(
            lambda c: c.fetch(
                f"SELECT {RECIPIENT_STATS_COLUMNS} FROM tip_recipients_stats"
                " ORDER BY total_tips_received DESC, recipient_username LIMIT $1",
                limit,
            ),
            conn,
        )
        return [RecipientStats(**dict(r)) for r in rows]

    async def stats_for_recipient(self, username: str, *, conn: Connection | None = None) -> RecipientStats | None:
        """One recipient's lifetime totals, or None if they were never tipped."""
        row = await self.db.read(
            lambda c: c.fetchrow(
                f"SELECT {RECIPIENT_STATS_COLUMNS} FROM tip_recipients_stats WHERE recipient_username = $1",
                username,
            ),
            conn,
        )
        return RecipientStats(**dict(row)) if row is not None else None

    async def volume_series(
        self, since: datetime, bucket: str, *, conn: Connection | None = None
    ) -> list[tuple[datetime, int, int, int]]:
        """Completed volume and tips per `hour` or `day` since a moment: (bucket start, volume, tips, count)."""
        if bucket not in ("hour", "day"):
            raise ValueError("bucket must be 'hour' or 'day'")
        rows = await self.db.read(
            lambda c: c.fetch(
                """
                SELECT date_trunc($2, created_at) AS bucket, COALESCE(sum(total_amount), 0) AS volume,
                       COALESCE(sum(tip_amount), 0) AS tips, count(*) AS payments
                FROM payment_splits WHERE status = $3 AND created_at >= $1
                GROUP BY 1 ORDER BY 1
                """,
                since,
                bucket,
                PaymentStatus.COMPLETED.value,
            ),
            conn,
        )
        return [(r["bucket"], int(r["volume"]), int(r["tips"]), int(r["payments"])) for r in rows]

    async def metric_totals(
        self, names: Sequence[str], since: datetime, *, conn: Connection | None = None
    ) -> dict[str, float]:
        """The sum of each named system metric since a moment (e.g. cache hits and misses)."""
        rows = await self.db.read(
            lambda c: c.fetch(
                'SELECT metric_name, COALESCE(sum(metric_value), 0) AS total FROM system_metrics'
                ' WHERE metric_name = ANY($1::text[]) AND "timestamp" >= $2 GROUP BY metric_name',
                list(names),
                since,
            ),
            conn,
        )
        totals = {name: 0.0 for name in names}
        totals.update({r["metric_name"]: float(r["total"]) for r in rows})
        return totals

    async def insert_metrics(self, samples: Sequence[MetricSample], *, conn: Connection | None = None) -> int:
        """Write a batch of metric rows in one statement (one round trip, one transaction)."""
        if not samples:
            return 0
        async with self.db.connection(conn) as c:
            await c.execute(
                """
                INSERT INTO system_metrics (metric_name, metric_value, metric_unit, metadata, "timestamp")
                SELECT * FROM unnest($1::text[], $2::numeric[], $3::text[], $4::jsonb[], $5::timestamptz[])
                """,
                [s.name for s in samples],
                [Decimal(str(s.value)) for s in samples],
                [s.unit for s in samples],
                [scrub(s.metadata) if s.metadata else None for s in samples],
                [s.recorded_at for s in samples],
            )
        return len(samples)
