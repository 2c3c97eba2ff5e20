"""POST /api/blink/create-invoice and /api/blink/forward-with-tips: the original app's endpoints."""

import asyncio
from typing import Any

from fastapi import APIRouter, Response

from tipsplit.http.deps import ClientIp, Forwarding, Invoicing, Limits
from tipsplit.http.schemas.answers import ForwardAnswer, InvoiceCreated
from tipsplit.http.schemas.errors import INVALID, InvalidRequest, error
from tipsplit.http.schemas.requests import CreateInvoiceBody, ForwardBody
from tipsplit.services.invoicing import InvoiceOrder
from tipsplit.services.settlement import Outcome

router = APIRouter(prefix="/api/blink", tags=["payments"])

FORWARD_WAIT_SECONDS = 15.0

# What forward-with-tips answers for each settlement outcome: the HTTP status, and the error to show, if any.
FORWARD_ANSWERS: dict[Outcome, tuple[int, str | None]] = {
    Outcome.COMPLETED: (200, None),
    Outcome.ALREADY_COMPLETED: (200, None),
    Outcome.IN_PROGRESS: (202, None),
    Outcome.NOT_PAID: (409, "the invoice is not paid yet; nothing was forwarded"),
    Outcome.EXPIRED: (410, "the invoice expired unpaid; nothing was forwarded"),
    Outcome.FAILED: (409, "forwarding failed after every retry; see payment-status for each leg"),
    Outcome.NOT_FOUND: (404, "no payment with this hash"),
    Outcome.BLINK_UNAVAILABLE: (503, "Blink could not be asked; try again shortly"),
}


@router.post(
    "/create-invoice",
    response_model=InvoiceCreated,
    response_description="the invoice to show the customer, and how it will be split",
    responses={
        400: error("invalid, or the order cannot become an invoice (e.g. an unknown recipient); `field` names the"
                   " part at fault", InvalidRequest),
        401: error("Blink refused the API key"),
        403: error("the wallet does not belong to the API key's account, or the key can spend"),
        429: error("too many requests from this address or for this wallet (Retry-After)"),
        502: error("Blink refused to make the invoice"),
        503: error("Blink or PostgreSQL is unreachable, or the POS account's invoice budget is spent (Retry-After)"),
    },
)
async def create_invoice(
    body: CreateInvoiceBody, invoices: Invoicing, limits: Limits, ip: ClientIp
) -> dict[str, Any]:
    """Create the POS invoice for base + tip and remember how to split it."""
    await limits.admit_invoice(api_key=body.apiKey, wallet_id=body.userWalletId, ip=ip)
    recipients = tuple((r.username, r.share) for r in body.tipRecipients or ())
    if not recipients and body.tipRecipient:
        recipients = ((body.tipRecipient, None),)
    order = InvoiceOrder(
        user_wallet_id=body.userWalletId,
        api_key=body.apiKey,
        amount=body.amount,
        base_amount=body.baseAmount,
        tip_amount=body.tipAmount,
        tip_percent=body.tipPercent,
        display_currency=body.displayCurrency,
        base_amount_display=body.baseAmountDisplay,
        recipients=recipients,
        memo=body.memo,
    )
    created = await invoices.create(order)
    return {
        "success": True,
        "paymentRequest": created.payment_request,
        "paymentHash": created.payment_hash,
        "satoshis": created.satoshis,
        "expiresAt": created.expires_at.isoformat(),
        "split": created.split(),
    }


def _settlement(description: str) -> dict[str, Any]:
    """An answer other than 200 that still reports where settlement stands."""
    return error(description, ForwardAnswer)


@router.post(
    "/forward-with-tips",
    response_model=ForwardAnswer,
    response_description="every leg is paid (`alreadyProcessed` when an earlier call or the service did it)",
    responses={
        202: _settlement("settlement is under way; poll payment-status"),
        400: INVALID,
        404: _settlement("no payment with this hash"),
        409: _settlement("not paid yet, or forwarding failed after every retry"),
        410: _settlement("the invoice expired unpaid"),
        429: error("too many forward requests from this address (Retry-After)"),
        503: _settlement("Blink could not be asked (Retry-After); or PostgreSQL is unreachable (an error body)"),
    },
)
async def forward_with_tips(
    body: ForwardBody, response: Response, forwards: Forwarding, limits: Limits, ip: ClientIp
) -> ForwardAnswer:
    """Ask for settlement now; idempotent, and any amount in the body is ignored.

    Needs no credentials, so it is rate-limited per client IP and its Blink checks are shared (see forwarding.py).
    """
    await limits.admit_forward(ip)
    task = asyncio.ensure_future(forwards.settle(body.paymentHash))
    try:
        result = await asyncio.wait_for(asyncio.shield(task), FORWARD_WAIT_SECONDS)
    except TimeoutError:
        response.status_code = 202
        return ForwardAnswer(paymentHash=body.paymentHash, status="processing")
    answer = ForwardAnswer(
        paymentHash=body.paymentHash,
        status=result.status,
        success=result.outcome in (Outcome.COMPLETED, Outcome.ALREADY_COMPLETED),
        alreadyProcessed=result.outcome is Outcome.ALREADY_COMPLETED,
    )
    response.status_code, refusal = FORWARD_ANSWERS[result.outcome]
    if refusal is not None:
        answer.error = refusal
    if result.outcome is Outcome.BLINK_UNAVAILABLE:
        response.headers["Retry-After"] = "5"
    return answer
