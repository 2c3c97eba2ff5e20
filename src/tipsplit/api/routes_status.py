"""GET /api/payment-status/{hash} and its server-sent event stream."""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path
from sse_starlette.sse import EventSourceResponse

from tipsplit.api.deps import runtime
from tipsplit.api.errors import error_body
from tipsplit.api.views import public_event_view, public_payment_view
from tipsplit.domain.models import HASH_RE
from tipsplit.domain.states import FINAL_PAYMENT_STATUSES, PaymentStatus
from tipsplit.runtime import Runtime

router = APIRouter(prefix="/api/payment-status", tags=["status"])

STREAM_POLL_SECONDS = 0.5
STREAM_MAX_SECONDS = 30 * 60

HashPath = Path(description="the POS invoice's payment hash, 64 hex digits")


def _checked(payment_hash: str) -> str:
    lowered = payment_hash.lower()
    if not HASH_RE.fullmatch(lowered):
        raise HTTPException(
            status_code=400, detail=error_body("paymentHash must be 64 hexadecimal characters", field="paymentHash")
        )
    return lowered


async def _snapshot(rt: Runtime, payment_hash: str) -> dict[str, Any] | None:
    payment = await rt.store.cold.get_payment(payment_hash)
    return public_payment_view(payment, rt.settings.max_leg_attempts) if payment else None


@router.get("/{payment_hash}")
async def payment_status(payment_hash: str = HashPath, rt: Runtime = Depends(runtime)) -> dict[str, Any]:
    """Where a payment stands, with each leg's state: public, so no wallet id, balance or raw Blink error."""
    ph = _checked(payment_hash)
    view = await _snapshot(rt, ph)
    if view is None:
        raise HTTPException(status_code=404, detail=error_body("no payment with this hash", status="not_found"))
    view["events"] = [public_event_view(e) for e in await rt.store.cold.events(ph)]
    return view


@router.get("/{payment_hash}/events")
async def payment_events(payment_hash: str = HashPath, rt: Runtime = Depends(runtime)) -> EventSourceResponse:
    """A `status` event each time the payment or one of its legs changes, until it is final."""
    ph = _checked(payment_hash)
    if await _snapshot(rt, ph) is None:
        raise HTTPException(status_code=404, detail=error_body("no payment with this hash", status="not_found"))

    async def stream() -> AsyncIterator[dict[str, str]]:
        last = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STREAM_MAX_SECONDS
        while loop.time() < deadline:
            view = await _snapshot(rt, ph)
            if view is None:
                return
            encoded = json.dumps(view, sort_keys=True)
            if encoded != last:
                last = encoded
                yield {"event": "status", "data": encoded}
            if PaymentStatus(view["status"]) in FINAL_PAYMENT_STATUSES:
                return
            await asyncio.sleep(STREAM_POLL_SECONDS)

    return EventSourceResponse(stream())
