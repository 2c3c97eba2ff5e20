"""The answer models on their own: what they let out, and how an absent field stays absent."""

import json
from typing import Any

from pydantic import TypeAdapter

from tipsplit.http.schemas.answers import (
    ForwardAnswer,
    HealthAnswer,
    InvoiceCreated,
    PaymentStatusAnswer,
    StatsAnswer,
    WebhookAnswer,
)
from tipsplit.http.views import PUBLIC_EVENT_FIELDS

WALLET = "5b0e2a4c-7c1e-4d0f-9f5e-2f4f8c1d9a77"
LEG = {
    "leg": "base", "recipient": None, "amount": 1000, "currency": "BTC", "status": "failed", "attempts": 1,
    "maxAttempts": 1, "attemptsLeft": 0, "retrying": False, "waitingFor": None,
    "reason": "the merchant's wallet could not be paid yet", "completedAt": None,
}
VIEW: dict[str, Any] = {
    "paymentHash": "ab" * 32, "status": "failed", "totalAmount": 1100, "baseAmount": 1000, "tipAmount": 100,
    "tipPercent": 10.0, "displayCurrency": "BTC", "memo": None, "createdAt": "2026-12-01T10:00:00+00:00",
    "expiresAt": "2026-12-02T10:00:00+00:00", "paidAt": None, "processedAt": None,
    "error": "not forwarded: merchant (the merchant's wallet could not be paid yet)",
    "tipRecipients": [{"username": "alice", "share": 100.0}], "legs": [LEG],
    "events": [{"id": 1, "type": "leg_failed", "data": {"leg": "base", "attempts": 1},
                "at": "2026-12-01T10:00:01+00:00"}],
}


def _sent(model: type[Any], body: Any) -> Any:
    """What FastAPI sends for `body` under `response_model=model`: validated, then dumped as JSON."""
    adapter = TypeAdapter(model)
    return json.loads(adapter.dump_json(adapter.validate_python(body)))


def test_the_status_answer_sends_exactly_the_public_view() -> None:
    assert _sent(PaymentStatusAnswer, VIEW) == VIEW


def test_internal_fields_are_dropped_at_every_level() -> None:
    leaky = {
        **VIEW, "userWalletId": WALLET,
        "legs": [{**LEG, "destinationWalletId": WALLET, "lastError": "amount exceeds balance '12'"}],
        "events": [{**VIEW["events"][0], "data": {**VIEW["events"][0]["data"], "walletId": WALLET,
                                                   "error": "Blink: insufficient balance"}}],
    }
    assert _sent(PaymentStatusAnswer, leaky) == VIEW
    created = {"success": True, "paymentRequest": "lnbc1", "paymentHash": "ab" * 32, "satoshis": 1100,
               "expiresAt": "2026-12-02T10:00:00+00:00", "userWalletId": WALLET,
               "split": {"baseAmount": 1000, "tipAmount": 100, "tipPercent": 10.0, "walletId": WALLET,
                         "legs": [{"leg": "base", "amount": 1000, "recipient": None, "share": None,
                                   "skipped": False, "walletId": WALLET}]}}
    assert WALLET not in str(_sent(InvoiceCreated, created))


def test_event_data_keeps_only_the_public_fields_it_has() -> None:
    sent = _sent(PaymentStatusAnswer, VIEW)["events"][0]["data"]
    assert sent == {"leg": "base", "attempts": 1}, "fields the event lacks stay absent, not null"
    assert PUBLIC_EVENT_FIELDS == {"leg", "legs", "amount", "recipient", "attempts", "result", "status"}


def test_optional_fields_are_absent_when_the_answer_lacks_them() -> None:
    running = ForwardAnswer(paymentHash="ab" * 32, status="processing")
    assert _sent(ForwardAnswer, running) == {"paymentHash": "ab" * 32, "status": "processing"}
    assert _sent(WebhookAnswer, {"received": True, "action": "ignored"}) == {"received": True, "action": "ignored"}
    checks = {"postgres": {"status": "up", "latencyMs": 1.5}, "redis": {"status": "disabled"},
              "blink": {"status": "down", "error": "TimeoutError"}}
    health = {"status": "unhealthy", "sandbox": False, "checks": checks, "posAccounts": []}
    assert _sent(HealthAnswer, health) == health
    degraded = {"last24Hours": None, "storage": "degraded: PostgreSQL unavailable", "journalPending": 2,
                "fileStore": {"payments": 3}, "generatedAt": "2026-12-01T10:00:00+00:00"}
    assert _sent(StatsAnswer, degraded) == degraded
