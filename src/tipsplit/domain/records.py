"""Rows as the store hands them out: plain frozen dataclasses, so callers never see a driver's types."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from tipsplit.domain.states import LegStatus, PaymentStatus, WalletCurrency


@dataclass(frozen=True, slots=True)
class TipRecipientRecord:
    """One recipient of a payment's tip and their percentage share."""

    position: int
    username: str
    share: Decimal


@dataclass(frozen=True, slots=True)
class LegRecord:
    """One outgoing transfer of a payment (`base` or `tip:<n>`) and how far it has got."""

    payment_hash: str
    leg: str
    amount: int
    status: LegStatus
    destination_username: str | None
    destination_wallet_id: str | None
    share: Decimal | None
    memo: str | None
    dest_payment_hash: str | None
    dest_payment_request: str | None
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    invoice_generation: int = 0
    waiting_for: str | None = None
    destination_currency: WalletCurrency = WalletCurrency.BTC


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    """A row of payment_splits with its tip recipients and legs (legs in order: base, tip:1, tip:2, …)."""

    payment_hash: str
    status: PaymentStatus
    user_wallet_id: str
    user_api_key_encrypted: str = field(repr=False)
    username: str | None
    total_amount: int
    base_amount: int
    tip_amount: int
    tip_percent: Decimal | None
    display_currency: str
    base_amount_display: Decimal | None
    tip_amount_display: Decimal | None
    tip_recipient: str | None
    memo: str | None
    invoice_satoshis: int | None
    payment_request: str | None
    created_at: datetime
    expires_at: datetime
    paid_at: datetime | None
    processed_at: datetime | None
    user_payment_hash: str | None
    tip_payment_hash: str | None
    error_message: str | None
    claim_owner: str | None
    claim_expires_at: datetime | None
    settle_attempts: int
    next_attempt_at: datetime | None
    updated_at: datetime
    pos_wallet_id: str | None = None
    tip_recipients: list[TipRecipientRecord] = field(default_factory=list)
    legs: list[LegRecord] = field(default_factory=list)

    def leg(self, name: str) -> LegRecord | None:
        """The leg called `name`, if the payment has one."""
        return next((leg for leg in self.legs if leg.leg == name), None)


@dataclass(frozen=True, slots=True)
class Archived:
    """A payment this call archived, with its tip recipients (whose cached stats it made stale).

    Returned by the archiving statement itself so that the caller need not read
    the payment again; always truthy, unlike an empty list of recipients.
    """

    recipients: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One line of a payment's audit trail."""

    id: int
    payment_hash: str
    event_type: str
    event_data: dict[str, Any]
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class RecipientStats:
    """Lifetime tip totals of one recipient, kept in tip_recipients_stats."""

    recipient_username: str
    total_tips_received: int
    total_tips_count: int
    average_tip_amount: Decimal | None
    first_tip_received_at: datetime | None
    last_tip_received_at: datetime | None


@dataclass(frozen=True, slots=True)
class MetricSample:
    """One buffered system_metrics row, stamped when it was recorded rather than when it is written."""

    name: str
    value: float
    unit: str
    metadata: dict[str, Any] | None
    recorded_at: datetime
