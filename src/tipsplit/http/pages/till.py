"""The till: a device the owner paired with a link, selling for one wallet and one team, with no Blink key.

The link carries a random token in its fragment (`/till#<token>`), which browsers never send to a server or
put in a log; the page posts it once to `/till/pair`, and from then on the device holds it only inside a
signed, HttpOnly cookie. Every request looks the till up by the token's hash, so revoking a till stops its
devices at their next request. A sale names only the amount and the tip percentage: wallet, key, team and
shares are the till's, read on the server.
"""

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from itsdangerous import BadSignature
from pydantic import BaseModel, ConfigDict, Field

from tipsplit.blink.errors import BlinkError
from tipsplit.domain.models import HASH_RE
from tipsplit.http import csrf
from tipsplit.http.csrf import require_csrf
from tipsplit.http.deps import ClientIp, Invoicing, Limits, PageKeys, PosBlink, TillService
from tipsplit.http.qr import sale_answer
from tipsplit.http.sessions import WebKeys
from tipsplit.services.invoicing import SAT_CURRENCIES, InvoiceRequestError
from tipsplit.services.tills import Tills, TillSetupError, display_split
from tipsplit.store.tills import Till

router = APIRouter(tags=["till"], include_in_schema=False)

TILL_COOKIE = "tipsplit_till"
TILL_MAX_AGE = 365 * 24 * 3600
REVOKED = "This till has been closed by the owner. Ask the owner for a new till link."
NOT_PAIRED = "This device is not paired with a till (or the till was closed); open the till link again."


def _error(status: int, message: str, field: str | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": message, "field": field})


async def current_till(request: Request, keys: WebKeys, tills: Tills) -> Till | None:
    """The till this device is paired with (revoked ones too), or None."""
    cookie = request.cookies.get(TILL_COOKIE)
    if not cookie or keys.signer is None:
        return None
    try:
        token = keys.signer.loads(cookie, max_age=TILL_MAX_AGE, salt="till")
    except BadSignature:
        return None
    return await tills.open(token) if isinstance(token, str) else None


async def _active_till(request: Request, keys: WebKeys, tills: Tills) -> Till | JSONResponse:
    till = await current_till(request, keys, tills)
    if till is None:
        return _error(401, NOT_PAIRED)
    if not till.active:
        return _error(403, REVOKED)
    return till


@router.get("/till", response_class=HTMLResponse)
async def till_page(request: Request, keys: PageKeys, tills: TillService) -> Response:
    """The till itself, or the pairing page (which reads the token from the link's fragment)."""
    till = await current_till(request, keys, tills)
    if till is None or not till.active:
        pairing = {"sandbox": keys.sandbox, "revoked": till is not None, "configured": keys.signer is not None}
        return csrf.render(request, keys, "till_pair.html", pairing, 403 if till is not None else 200)
    context: dict[str, Any] = {
        "sandbox": keys.sandbox, "till": till, "presets": [float(p) for p in till.tip_presets],
        "team": [m.username for m in till.team],
    }
    return csrf.render(request, keys, "till.html", context)


class PairBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=20, max_length=100)


@router.post("/till/pair", dependencies=[Depends(require_csrf)])
async def pair(body: PairBody, request: Request, keys: PageKeys, tills: TillService) -> Response:
    """Trade the link's token for the till cookie; a wrong or revoked link pairs nothing."""
    if keys.signer is None:
        return _error(503, "tills are off until the operator sets SESSION_SECRET")
    till = await tills.open(body.token)
    if till is None:
        return _error(404, "This till link is not valid. Ask the owner for the link again.", "token")
    if not till.active:
        return _error(403, REVOKED, "token")
    response = JSONResponse({"till": till.name})
    flags = keys.cookie_flags(request, TILL_MAX_AGE, "lax")
    response.set_cookie(TILL_COOKIE, keys.signer.dumps(body.token, salt="till"), **flags)  # type: ignore[arg-type]
    return response


@router.post("/till/unpair", dependencies=[Depends(require_csrf)])
async def unpair() -> Response:
    """Make this device forget its till (the till itself stays open for its other devices)."""
    response = JSONResponse({"paired": False})
    response.delete_cookie(TILL_COOKIE, path="/")
    return response


@router.get("/till/price")
async def price(request: Request, keys: PageKeys, tills: TillService, pos: PosBlink) -> JSONResponse:
    """The till's currency: fraction digits, and sats per minor unit for the running estimate."""
    till = await _active_till(request, keys, tills)
    if isinstance(till, JSONResponse):
        return till
    if till.display_currency in SAT_CURRENCIES:
        return JSONResponse({"currency": "BTC", "fractionDigits": 0, "satsPerMinorUnit": 1})
    try:
        quote = await pos.realtime_price(till.display_currency)
    except BlinkError:
        return _error(503, "The exchange rate could not be fetched; check the connection and try again.")
    per_minor = 10**quote.sat_price_offset / quote.sat_price_base
    return JSONResponse({"currency": till.display_currency, "fractionDigits": quote.fraction_digits,
                         "satsPerMinorUnit": per_minor})


class TillSaleBody(BaseModel):
    """All a till may say about a sale: the amount in its display currency and the customer's tip."""

    model_config = ConfigDict(extra="forbid")
    amount: Decimal = Field(gt=0, le=Decimal("1e15"))
    tipPercent: Decimal = Field(default=Decimal(0), ge=0, le=100)


@router.post("/till/invoice", dependencies=[Depends(require_csrf)])
async def till_invoice(
    body: TillSaleBody, request: Request, keys: PageKeys, tills: TillService, invoices: Invoicing, limits: Limits,
    ip: ClientIp,
) -> JSONResponse:
    """The sale's invoice through the one InvoiceService, with the till's sealed key opened on the server."""
    till = await _active_till(request, keys, tills)
    if isinstance(till, JSONResponse):
        return till
    try:
        order = tills.order(till, body.amount, body.tipPercent)
        await limits.admit_invoice(api_key=order.api_key, wallet_id=order.user_wallet_id, ip=ip)
        created = await invoices.create(order)
    except (InvoiceRequestError, TillSetupError) as exc:
        return _error(getattr(exc, "status", 400), _cashier_words(exc), exc.field)
    except BlinkError:
        return _error(503, "Blink could not be reached; nothing was charged. Try again in a moment.")
    await tills.store.record_sale(till.id, created.payment_hash)
    content = sale_answer(created)
    if till.display_currency not in SAT_CURRENCIES:
        content["display"] = {"currency": till.display_currency,
                              **display_split(body.amount, body.tipPercent, till.display_currency)}
    return JSONResponse(content)


def _cashier_words(exc: ValueError) -> str:
    """The refusal as a cashier can act on it; a team member Blink does not know is the owner's to fix."""
    message = str(exc)
    if getattr(exc, "field", None) == "tipRecipients":
        return f"The tip cannot be sent: {message}. Ask the owner to fix this till's team, or sell without a tip."
    return message[:1].upper() + message[1:]


@router.post("/till/sales/{payment_hash}/cancel", dependencies=[Depends(require_csrf)])
async def cancel_sale(payment_hash: str, request: Request, keys: PageKeys, tills: TillService) -> JSONResponse:
    """Mark an unpaid sale of this till cancelled. The invoice cannot be withdrawn: if it is paid anyway it is
    forwarded as usual, and the dashboard flags it."""
    till = await _active_till(request, keys, tills)
    if isinstance(till, JSONResponse):
        return till
    ph = payment_hash.lower()
    if not HASH_RE.fullmatch(ph) or not await tills.store.cancel_sale(till.id, ph):
        return _error(409, "This sale is not an unpaid sale of this till, so it was not cancelled.", "paymentHash")
    return JSONResponse({"cancelled": True})
