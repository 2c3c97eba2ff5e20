"""GET /api/payment-status/{hash} and its server-sent event stream, both served from the live views in Redis.

A poll of an active payment is answered by Redis (store/live.py); PostgreSQL is
read only on a miss. A stream waits for the change notices of Redis pub/sub and
reads the view only when its payment changed; while the subscription is down it
reads every STREAM_POLL_SECONDS instead.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, HTTPException, Path
from sse_starlette.sse import EventSourceResponse

from tipsplit.domain.models import HASH_RE
from tipsplit.domain.states import FINAL_PAYMENT_STATUSES, PaymentStatus
from tipsplit.http.deps import PaymentViews
from tipsplit.http.errors import error_body

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


def _not_found() -> HTTPException:
    return HTTPException(status_code=404, detail=error_body("no payment with this hash", status="not_found"))


@router.get("/{payment_hash}")
async def payment_status(views: PaymentViews, payment_hash: str = HashPath) -> dict[str, Any]:
    """Where a payment stands, with each leg's state: public, so no wallet id, balance or raw Blink error."""
    view = await views.get(_checked(payment_hash))
    if view is None:
        raise _not_found()
    return view


@router.get("/{payment_hash}/events")
async def payment_events(views: PaymentViews, payment_hash: str = HashPath) -> EventSourceResponse:
    """A `status` event each time the payment or one of its legs changes, until it is final."""
    ph = _checked(payment_hash)
    if await views.get(ph) is None:
        raise _not_found()

    async def stream() -> AsyncIterator[dict[str, str]]:
        last = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STREAM_MAX_SECONDS
        async with views.feed.watch(ph) as watch:
            while loop.time() < deadline:
                watch.arm()
                view = await views.get(ph)
                if view is None:
                    return
                view.pop("events", None)
                encoded = json.dumps(view, sort_keys=True)
                if encoded != last:
                    last = encoded
                    yield {"event": "status", "data": encoded}
                if PaymentStatus(view["status"]) in FINAL_PAYMENT_STATUSES:
                    return
                await watch.wait(STREAM_POLL_SECONDS, deadline - loop.time())

    return EventSourceResponse(stream())
