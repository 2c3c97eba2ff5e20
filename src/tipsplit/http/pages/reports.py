"""What the dashboard shows, computed from store records: filters, chart bars and the CSV export.

The export has one row per payment, base and tip in separate columns, then
one `tip:<username>` column per recipient found in the export holding the
sats that recipient's leg carries, so the end-of-day tip payout is a column
sum. `unsettled_legs` names every leg not (yet) paid, so an owed tip is never
mistaken for a paid one. Last come the currency each destination received in
(`BTC` or `USD`, the sats bought cents at Blink's price): `base_currency`,
then one `currency:<username>` column per recipient (blank when the payment
has no leg to them).
"""

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from tipsplit.domain.records import LegRecord, PaymentRecord
from tipsplit.domain.states import BASE_LEG, FINAL_LEG_STATUSES, PaymentStatus

PAGE_SIZE = 25
CSV_BASE_COLUMNS = (
    "created_at", "paid_at", "payment_hash", "status", "display_currency", "total_sats", "base_sats", "tip_sats",
    "tip_percent", "merchant_wallet_id", "base_status",
)
CHART_WIDTH = 720
CHART_HEIGHT = 160


@dataclass(frozen=True)
class PaymentFilter:
    """The payments table's filters as the query string gives them; dates are whole UTC days."""

    status: PaymentStatus | None = None
    since: date | None = None
    until: date | None = None
    recipient: str | None = None
    page: int = 1

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> "PaymentFilter":
        """Blank fields mean no filter; a malformed one raises ValueError naming it."""
        def day(name: str) -> date | None:
            raw = params.get(name, "").strip()
            try:
                return date.fromisoformat(raw) if raw else None
            except ValueError:
                raise ValueError(f"{name}: expected a date as YYYY-MM-DD") from None

        raw_status = params.get("status", "").strip()
        try:
            status = PaymentStatus(raw_status) if raw_status else None
        except ValueError:
            raise ValueError(f"status: expected one of {', '.join(s.value for s in PaymentStatus)}") from None
        raw_page = params.get("page", "1").strip() or "1"
        if not raw_page.isdigit() or int(raw_page) < 1:
            raise ValueError("page: expected a positive whole number")
        recipient = params.get("recipient", "").strip().lstrip("@") or None
        return cls(status, day("since"), day("until"), recipient, int(raw_page))

    @property
    def since_at(self) -> datetime | None:
        return datetime.combine(self.since, datetime.min.time(), UTC) if self.since else None

    @property
    def until_at(self) -> datetime | None:
        """The end of the `until` day, so the range includes it."""
        return datetime.combine(self.until, datetime.min.time(), UTC) + timedelta(days=1) if self.until else None

    @property
    def offset(self) -> int:
        return (self.page - 1) * PAGE_SIZE

    def query(self, **changes: object) -> str:
        """This filter as a query string, with some fields changed (for page links and the CSV link)."""
        values: dict[str, object] = {
            "status": self.status.value if self.status else "", "since": self.since or "",
            "until": self.until or "", "recipient": self.recipient or "", "page": self.page,
        }
        values.update(changes)
        return "&".join(f"{k}={v}" for k, v in values.items() if v not in ("", None))


@dataclass(frozen=True)
class Bar:
    """One bucket of a chart, with its geometry worked out so the template only draws."""

    label: str
    volume: int
    tips: int
    count: int
    x: float
    width: float
    volume_height: float
    tips_height: float


def chart_bars(
    rows: Iterable[tuple[datetime, int, int, int]], start: datetime, buckets: int, step: timedelta, fmt: str
) -> list[Bar]:
    """Zero-filled buckets from `start`, each bar scaled to the busiest bucket."""
    by_start = {moment.astimezone(UTC): (volume, tips, count) for moment, volume, tips, count in rows}
    starts = [start + step * i for i in range(buckets)]
    values = [by_start.get(moment, (0, 0, 0)) for moment in starts]
    peak = max((volume for volume, _, _ in values), default=0) or 1
    slot = CHART_WIDTH / buckets
    return [
        Bar(
            label=moment.strftime(fmt), volume=volume, tips=tips, count=count,
            x=round(i * slot + slot * 0.1, 2), width=round(slot * 0.8, 2),
            volume_height=round(CHART_HEIGHT * volume / peak, 2), tips_height=round(CHART_HEIGHT * tips / peak, 2),
        )
        for i, (moment, (volume, tips, count)) in enumerate(zip(starts, values, strict=True))
    ]


def _unsettled(legs: Sequence[LegRecord]) -> str:
    return "; ".join(
        f"{leg.leg} {leg.destination_username or 'merchant'} {leg.status}"
        for leg in legs
        if leg.status not in FINAL_LEG_STATUSES
    )


def payments_csv(payments: Sequence[PaymentRecord], legs: Mapping[str, Sequence[LegRecord]]) -> str:
    """The export as CSV text (see the module docstring for its columns)."""
    recipients = sorted(
        {leg.destination_username for rows in legs.values() for leg in rows if leg.destination_username}
        | {r.username for p in payments for r in p.tip_recipients}
    )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([
        *CSV_BASE_COLUMNS, *(f"tip:{name}" for name in recipients), "unsettled_legs",
        "base_currency", *(f"currency:{name}" for name in recipients),
    ])
    for payment in payments:
        own = legs.get(payment.payment_hash, [])
        base = next((leg for leg in own if leg.leg == BASE_LEG), None)
        tips = {leg.destination_username: leg.amount for leg in own if leg.leg != BASE_LEG}
        currencies = {leg.destination_username: leg.destination_currency.value for leg in own if leg.leg != BASE_LEG}
        writer.writerow([
            payment.created_at.astimezone(UTC).isoformat(),
            payment.paid_at.astimezone(UTC).isoformat() if payment.paid_at else "",
            payment.payment_hash, payment.status.value, payment.display_currency,
            payment.total_amount, payment.base_amount, payment.tip_amount,
            "" if payment.tip_percent is None else str(payment.tip_percent),
            payment.user_wallet_id, base.status.value if base else "",
            *(tips.get(name, 0) for name in recipients),
            _unsettled(own),
            base.destination_currency.value if base else "",
            *(currencies.get(name, "") for name in recipients),
        ])
    return out.getvalue()
