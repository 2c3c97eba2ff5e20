"""How a stored payment is shown to callers: amounts, legs and events, never a secret."""

from datetime import datetime
from typing import Any

from tipsplit.store.records import EventRecord, PaymentRecord


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def payment_view(payment: PaymentRecord) -> dict[str, Any]:
    return {
        "paymentHash": payment.payment_hash,
        "status": str(payment.status),
        "totalAmount": payment.total_amount,
        "baseAmount": payment.base_amount,
        "tipAmount": payment.tip_amount,
        "tipPercent": float(payment.tip_percent) if payment.tip_percent is not None else None,
        "displayCurrency": payment.display_currency,
        "userWalletId": payment.user_wallet_id,
        "memo": payment.memo,
        "createdAt": _iso(payment.created_at),
        "expiresAt": _iso(payment.expires_at),
        "paidAt": _iso(payment.paid_at),
        "processedAt": _iso(payment.processed_at),
        "error": payment.error_message,
        "tipRecipients": [{"username": r.username, "share": float(r.share)} for r in payment.tip_recipients],
        "legs": [
            {
                "leg": leg.leg,
                "recipient": leg.destination_username,
                "amount": leg.amount,
                "status": str(leg.status),
                "attempts": leg.attempts,
                "lastError": leg.last_error,
                "destPaymentHash": leg.dest_payment_hash,
                "completedAt": _iso(leg.completed_at),
            }
            for leg in payment.legs
        ],
    }


def event_view(event: EventRecord) -> dict[str, Any]:
    return {"id": event.id, "type": event.event_type, "data": event.event_data, "at": _iso(event.timestamp)}
