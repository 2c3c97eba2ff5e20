"""POST /api/blink/webhook: Blink's signed notifications, verified on the raw body, answered fast."""

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from tipsplit.blink.webhook import WebhookVerificationError, verify
from tipsplit.domain.models import HASH_RE
from tipsplit.http.deps import Watching, WebhookSecret
from tipsplit.http.errors import error_body
from tipsplit.http.schemas.answers import WebhookAnswer
from tipsplit.http.schemas.errors import error
from tipsplit.observability import WEBHOOKS

router = APIRouter(prefix="/api/blink", tags=["webhooks"])

MAX_WEBHOOK_BYTES = 64 * 1024


def _payment_hash(event: dict[str, Any]) -> str | None:
    transaction = event.get("transaction") or {}
    via = transaction.get("initiationVia") or {}
    candidate = via.get("paymentHash") or event.get("paymentHash")
    if isinstance(candidate, str) and HASH_RE.fullmatch(candidate.lower()):
        return candidate.lower()
    return None


@router.post(
    "/webhook",
    response_model=WebhookAnswer,
    responses={
        400: error("the body is not JSON"),
        401: error("the signature is missing, wrong or stale, or webhooks are not configured"),
        413: error("the body is larger than a webhook's"),
    },
)
async def webhook(request: Request, secret: WebhookSecret, watchers: Watching) -> WebhookAnswer | JSONResponse:
    """A `receive.*` event starts settlement in the background; the answer does not wait for it."""
    body = await request.body()
    if len(body) > MAX_WEBHOOK_BYTES:
        WEBHOOKS.labels(result="too_large").inc()
        return JSONResponse(status_code=413, content=error_body("webhook body too large"))
    if not secret:
        WEBHOOKS.labels(result="unconfigured").inc()
        return JSONResponse(status_code=401, content=error_body("webhooks are not configured (BLINK_WEBHOOK_SECRET)"))
    try:
        verify(secret, request.headers, body)
    except WebhookVerificationError as exc:
        WEBHOOKS.labels(result="bad_signature").inc()
        return JSONResponse(status_code=401, content=error_body(f"webhook signature refused: {exc}"))
    try:
        event = json.loads(body)
    except ValueError:
        WEBHOOKS.labels(result="bad_json").inc()
        return JSONResponse(status_code=400, content=error_body("webhook body is not JSON"))
    event_type = str(event.get("eventType", "")) if isinstance(event, dict) else ""
    payment_hash = _payment_hash(event) if isinstance(event, dict) else None
    if not event_type.startswith("receive.") or payment_hash is None:
        WEBHOOKS.labels(result="ignored").inc()
        return WebhookAnswer(received=True, action="ignored")
    watchers.trigger(payment_hash)
    WEBHOOKS.labels(result="settling").inc()
    return WebhookAnswer(received=True, action="settling", paymentHash=payment_hash)
