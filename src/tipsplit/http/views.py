"""How a stored payment is shown: in full to the operator, and to the public without anything private.

The public view (payment-status JSON, its event stream, the POS page) is readable by anyone holding the
payment hash, which every invoice QR code carries. So it shows amounts, usernames, states and attempts, and
never a wallet id, a balance or Blink's own error text (a failed send can quote the POS balance): each failure
is told as a short reason a cashier can read out. The raw text stays on the operator's dashboard.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tipsplit.domain.records import EventRecord, LegRecord, PaymentRecord
from tipsplit.domain.states import BASE_LEG, LegStatus, PaymentStatus
from tipsplit.http.schemas.answers import EventData
from tipsplit.store.live import LiveFeed, LiveViews

UNREACHABLE = "Blink could not be reached"
UNCONFIRMED = "Blink has not confirmed the payment yet"
RECIPIENT_UNPAID = "the recipient could not be paid yet"
MERCHANT_UNPAID = "the merchant's wallet could not be paid yet"
_UNREACHABLE_WORDS = ("unavailable", "unreachable", "could not be reached", "timed out", "timeout", "connect")
_UNCONFIRMED_WORDS = ("unpaid after", "outcome unknown", "pending")
# Event fields that say nothing private (no wallet ids, errors, instance names or key ids): the answer's own.
PUBLIC_EVENT_FIELDS = frozenset(EventData.model_fields)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def leg_reason(leg: LegRecord) -> str | None:
    """Why a leg is not paid yet, in a cashier's words; None while nothing went wrong."""
    if leg.status is not LegStatus.FAILED and not leg.last_error:
        return None
    if leg.status in (LegStatus.SUCCEEDED, LegStatus.SKIPPED):
        return None
    text = (leg.last_error or "").lower()
    if any(word in text for word in _UNREACHABLE_WORDS):
        return UNREACHABLE
    if any(word in text for word in _UNCONFIRMED_WORDS):
        return UNCONFIRMED
    return MERCHANT_UNPAID if leg.leg == BASE_LEG else RECIPIENT_UNPAID


def _leg_label(leg: LegRecord) -> str:
    return "merchant" if leg.leg == BASE_LEG else f"@{leg.destination_username}"


def public_leg_view(leg: LegRecord, payment_status: PaymentStatus, max_attempts: int) -> dict[str, Any]:
    """One leg: `retrying` only while the payment is being settled and attempts remain."""
    failed = leg.status is LegStatus.FAILED
    left = max(0, max_attempts - leg.attempts)
    return {
        "leg": leg.leg,
        "recipient": leg.destination_username,
        "amount": leg.amount,
        "currency": leg.destination_currency.value,
        "status": str(leg.status),
        "attempts": leg.attempts,
        "maxAttempts": max_attempts,
        "attemptsLeft": left,
        "retrying": failed and left > 0 and payment_status is PaymentStatus.PROCESSING,
        "waitingFor": leg.waiting_for if leg.status is LegStatus.PENDING else None,
        "reason": leg_reason(leg),
        "completedAt": _iso(leg.completed_at),
    }


def public_payment_view(payment: PaymentRecord, max_attempts: int) -> dict[str, Any]:
    """A payment as anyone holding its hash may see it (see the module docstring)."""
    failed_legs = [leg for leg in payment.legs if leg.status is LegStatus.FAILED]
    error = None
    if payment.status is PaymentStatus.FAILED:
        named = "; ".join(f"{_leg_label(leg)} ({leg_reason(leg)})" for leg in failed_legs)
        error = f"not forwarded: {named}" if named else "forwarding failed"
    return {
        "paymentHash": payment.payment_hash,
        "status": str(payment.status),
        "totalAmount": payment.total_amount,
        "baseAmount": payment.base_amount,
        "tipAmount": payment.tip_amount,
        "tipPercent": float(payment.tip_percent) if payment.tip_percent is not None else None,
        "displayCurrency": payment.display_currency,
        "memo": payment.memo,
        "createdAt": _iso(payment.created_at),
        "expiresAt": _iso(payment.expires_at),
        "paidAt": _iso(payment.paid_at),
        "processedAt": _iso(payment.processed_at),
        "error": error,
        "tipRecipients": [{"username": r.username, "share": float(r.share)} for r in payment.tip_recipients],
        "legs": [public_leg_view(leg, payment.status, max_attempts) for leg in payment.legs],
    }


def public_status_view(payment: PaymentRecord, events: list[EventRecord], max_attempts: int) -> dict[str, Any]:
    """The payment-status answer: the public view and the public audit trail (cached as one in Redis)."""
    return {**public_payment_view(payment, max_attempts), "events": [public_event_view(e) for e in events]}


def public_event_view(event: EventRecord) -> dict[str, Any]:
    """An audit event with only the fields that say nothing private."""
    data = {k: v for k, v in (event.event_data or {}).items() if k in PUBLIC_EVENT_FIELDS}
    return {"id": event.id, "type": event.event_type, "data": data, "at": _iso(event.timestamp)}


def event_view(event: EventRecord) -> dict[str, Any]:
    """An audit event in full, for the operator."""
    return {"id": event.id, "type": event.event_type, "data": event.event_data, "at": _iso(event.timestamp)}


@dataclass(frozen=True, slots=True)
class PublicStatus:
    """Payments as the public sees them, read through the live views (Redis, PostgreSQL on a miss)."""

    live: LiveViews
    feed: LiveFeed
    max_attempts: int

    async def get(self, payment_hash: str) -> dict[str, Any] | None:
        """The payment-status answer (the public view and trail), or None for an unknown hash."""
        return await self.live.get(payment_hash, self._render)

    def _render(self, payment: PaymentRecord, events: list[EventRecord]) -> dict[str, Any]:
        return public_status_view(payment, events, self.max_attempts)
