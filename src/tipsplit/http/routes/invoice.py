"""POST /api/blink/create-invoice and /api/blink/forward-with-tips: the original app's endpoints."""

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from tipsplit.http.deps import ClientIp, Forwarding, Invoicing, Limits
from tipsplit.http.schemas import CreateInvoiceBody, ForwardBody
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


@router.post("/create-invoice")
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


@router.post("/forward-with-tips")
async def forward_with_tips(body: ForwardBody, forwards: Forwarding, limits: Limits, ip: ClientIp) -> JSONResponse:
    """Ask for settlement now; idempotent, and any amount in the body is ignored.

    Needs no credentials, so it is rate-limited per client IP and its Blink checks are shared (see forwarding.py).
    """
    await limits.admit_forward(ip)
    task = asyncio.ensure_future(forwards.settle(body.paymentHash))
    try:
        result = await asyncio.wait_for(asyncio.shield(task), FORWARD_WAIT_SECONDS)
    except TimeoutError:
        return JSONResponse(status_code=202, content={"paymentHash": body.paymentHash, "status": "processing"})
    content: dict[str, Any] = {
        "paymentHash": body.paymentHash,
        "status": result.status,
        "success": result.outcome in (Outcome.COMPLETED, Outcome.ALREADY_COMPLETED),
        "alreadyProcessed": result.outcome is Outcome.ALREADY_COMPLETED,
    }
    status_code, error = FORWARD_ANSWERS[result.outcome]
    if error is not None:
        content["error"] = error
    headers = {"Retry-After": "5"} if result.outcome is Outcome.BLINK_UNAVAILABLE else None
    return JSONResponse(status_code=status_code, content=content, headers=headers)
