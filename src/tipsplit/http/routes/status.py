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
from tipsplit.domain.states import FINAL_PAYMENT_STATUSES
from tipsplit.http.deps import PaymentViews
from tipsplit.http.errors import error_body
from tipsplit.http.schemas.answers import PaymentStatusAnswer, PaymentView
from tipsplit.http.schemas.errors import STORAGE_DOWN, PaymentNotFound, error

router = APIRouter(prefix="/api/payment-status", tags=["status"])

STREAM_POLL_SECONDS = 0.5
STREAM_MAX_SECONDS = 30 * 60

COMPONENT = "#/components/schemas/{model}"
HashPath = Path(description="the POS invoice's payment hash, 64 hex digits")
BAD_HASH = error("the payment hash is not 64 hexadecimal characters")
NOT_FOUND = error("no payment with this hash", PaymentNotFound)


class StatusStream(EventSourceResponse):
    """The event stream, documented as one (its errors are JSON, as everywhere)."""

    media_type = "text/event-stream"


def _stream_answers() -> dict[int | str, dict[str, Any]]:
    """The stream's items as OpenAPI describes an event stream: `status` events whose data is a PaymentView.

    The view's nested schemas (legs, states) are referenced from the document's components, where the
    payment-status answer puts them; JSON errors are referenced the same way, since a `model` here would be
    documented as an event stream.
    """
    view = PaymentView.model_json_schema(mode="serialization", ref_template=COMPONENT)
    view.pop("$defs", None)
    item = {
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": {"const": "status"},
            "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": view},
        },
    }

    def json_error(answer: dict[str, Any]) -> dict[str, Any]:
        ref = {"$ref": COMPONENT.format(model=answer["model"].__name__)}
        return {"description": answer["description"], "content": {"application/json": {"schema": ref}}}

    return {
        200: {"description": "a `status` event each time the payment changes, until it is final",
              "content": {"text/event-stream": {"itemSchema": item}}},
        400: json_error(BAD_HASH), 404: json_error(NOT_FOUND), 503: json_error(STORAGE_DOWN),
    }


def _checked(payment_hash: str) -> str:
    lowered = payment_hash.lower()
    if not HASH_RE.fullmatch(lowered):
        raise HTTPException(
            status_code=400, detail=error_body("paymentHash must be 64 hexadecimal characters", field="paymentHash")
        )
    return lowered


def _not_found() -> HTTPException:
    return HTTPException(status_code=404, detail=error_body("no payment with this hash", status="not_found"))


@router.get(
    "/{payment_hash}",
    response_model=PaymentStatusAnswer,
    responses={400: BAD_HASH, 404: NOT_FOUND, 503: STORAGE_DOWN},
)
async def payment_status(views: PaymentViews, payment_hash: str = HashPath) -> dict[str, Any]:
    """Where a payment stands, with each leg's state: public, so no wallet id, balance or raw Blink error."""
    view = await views.get(_checked(payment_hash))
    if view is None:
        raise _not_found()
    return view


@router.get(
    "/{payment_hash}/events",
    response_class=StatusStream,
    responses=_stream_answers(),
)
async def payment_events(views: PaymentViews, payment_hash: str = HashPath) -> StatusStream:
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
                found = await views.get(ph)
                if found is None:
                    return
                view = PaymentView.model_validate(found)
                encoded = json.dumps(view.model_dump(mode="json"), sort_keys=True)
                if encoded != last:
                    last = encoded
                    yield {"event": "status", "data": encoded}
                if view.status in FINAL_PAYMENT_STATUSES:
                    return
                await watch.wait(STREAM_POLL_SECONDS, deadline - loop.time())

    return StatusStream(stream())
