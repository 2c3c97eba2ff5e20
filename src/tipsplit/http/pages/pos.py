"""The POS page: sign in with a Blink key once, then ring up sales whose invoices the server makes.

The browser sends amounts and recipients; the server adds the merchant's key
from the sealed session cookie and hands the order to the same InvoiceService
as the JSON API, so every check (ownership, recipients exist, integer split)
applies here too.
"""

import asyncio
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from tipsplit.blink.errors import BlinkAuthError, BlinkError
from tipsplit.domain.models import MAX_MEMO, MAX_RECIPIENTS, PlainText, Username
from tipsplit.http import csrf
from tipsplit.http.csrf import require_csrf
from tipsplit.http.deps import ClientIp, Invoicing, KeyPolicy, Limits, PageKeys, PosBlink
from tipsplit.http.qr import sale_answer
from tipsplit.http.sessions import POS_COOKIE, POS_MAX_AGE, MerchantSession, WebKeys, open_merchant, seal_merchant
from tipsplit.services.invoicing import SAT_CURRENCIES, InvoiceOrder, InvoiceRequestError
from tipsplit.services.merchant_keys import MerchantKeyRefused

router = APIRouter(tags=["pos page"], include_in_schema=False)

CURRENCIES = ("BTC", "USD", "EUR", "GBP", "CHF", "CAD", "BRL", "ZAR", "KES", "NGN", "JPY", "KRW", "CLP", "XOF")


class PosRecipient(BaseModel):
    username: Username
    share: Decimal | None = Field(default=None, gt=0, le=100)


class PosInvoiceBody(BaseModel):
    """A sale as the page sends it: a display amount in major units, a tip percentage, recipients."""

    model_config = ConfigDict(extra="forbid")

    displayCurrency: str = Field(default="BTC", pattern=r"^[A-Z]{3,4}$")
    amount: Decimal = Field(gt=0, le=Decimal("1e15"))
    tipPercent: Decimal = Field(default=Decimal(0), ge=0, le=100)
    recipients: list[PosRecipient] = Field(default_factory=list, max_length=MAX_RECIPIENTS)
    memo: PlainText | None = Field(default=None, max_length=MAX_MEMO)


def _error(status: int, message: str, field: str | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content={"error": message, "field": field})


def _signin_page(request: Request, keys: WebKeys, status: int = 200, error: str | None = None) -> Response:
    context = {"error": error, "sandbox": keys.sandbox, "configured": keys.signer is not None}
    return csrf.render(request, keys, "signin.html", context, status)


def _keep_session(response: Response, request: Request, keys: WebKeys, session: MerchantSession) -> None:
    flags = keys.cookie_flags(request, POS_MAX_AGE, "lax")
    response.set_cookie(POS_COOKIE, seal_merchant(keys, session), **flags)  # type: ignore[arg-type]


@router.get("/", response_class=HTMLResponse)
async def pos_page(request: Request, keys: PageKeys) -> Response:
    """The sign-in form, or the POS itself once the merchant is signed in."""
    session = open_merchant(keys, request.cookies.get(POS_COOKIE))
    if session is None:
        return _signin_page(request, keys)
    context = {"session": session, "currencies": CURRENCIES, "sandbox": keys.sandbox}
    return csrf.render(request, keys, "pos.html", context)


@router.post("/signin", dependencies=[Depends(require_csrf)])
async def sign_in(
    request: Request,
    keys: PageKeys,
    pos: PosBlink,
    key_policy: KeyPolicy,
    api_key: str = Form(min_length=1, max_length=500),
) -> Response:
    """Check the key with Blink (`me`, and its scopes: it must not be able to spend), then keep it sealed in the
    session cookie and nowhere in the page."""
    if keys.signer is None:
        return _signin_page(request, keys, 503, "Sign-in is off: the operator must set SESSION_SECRET.")
    merchant = pos.with_api_key(api_key.strip())
    try:
        me, scopes = await asyncio.gather(merchant.me(), merchant.scopes())
    except BlinkAuthError:
        return _signin_page(request, keys, 401, "Blink refused this API key.")
    except BlinkError:
        return _signin_page(request, keys, 503, "Blink could not be reached; try again shortly.")
    try:
        key_policy.check(scopes, me.username)
    except MerchantKeyRefused as exc:
        return _signin_page(request, keys, 400, f"Refused: {exc}.")
    btc = tuple(w.id for w in me.wallets if w.currency == "BTC")
    if not btc:
        return _signin_page(request, keys, 400, "This Blink account has no BTC wallet to receive sales.")
    chosen = me.default_wallet_id if me.default_wallet_id in btc else btc[0]
    session = MerchantSession(api_key.strip(), me.username, btc, chosen)
    response = RedirectResponse("/", status_code=303)
    _keep_session(response, request, keys, session)
    return response


@router.post("/signout", dependencies=[Depends(require_csrf)])
async def sign_out() -> Response:
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(POS_COOKIE, path="/")
    return response


@router.post("/pos/wallet", dependencies=[Depends(require_csrf)])
async def choose_wallet(request: Request, keys: PageKeys, wallet_id: str = Form(max_length=100)) -> Response:
    """Pick which of the merchant's BTC wallets receives the base of each sale."""
    session = open_merchant(keys, request.cookies.get(POS_COOKIE))
    if session is None:
        return _error(401, "sign in first")
    try:
        session = session.choose(wallet_id)
    except ValueError as exc:
        return _error(403, str(exc), "walletId")
    response = RedirectResponse("/", status_code=303)
    _keep_session(response, request, keys, session)
    return response


@router.get("/pos/currency/{code}")
async def currency(request: Request, code: str, keys: PageKeys, pos: PosBlink) -> JSONResponse:
    """How many fraction digits the keypad offers, and the price for the running total in sats."""
    if open_merchant(keys, request.cookies.get(POS_COOKIE)) is None:
        return _error(401, "sign in first")
    code = code.upper()
    if code in SAT_CURRENCIES:
        return JSONResponse({"currency": "BTC", "fractionDigits": 0, "satsPerMinorUnit": 1})
    if code not in CURRENCIES:
        return _error(400, f"unknown display currency {code!r}", "displayCurrency")
    try:
        price = await pos.realtime_price(code)
    except BlinkError:
        return _error(503, "Blink could not be asked for the price; try again shortly", "displayCurrency")
    per_minor = 10**price.sat_price_offset / price.sat_price_base
    return JSONResponse({"currency": code, "fractionDigits": price.fraction_digits, "satsPerMinorUnit": per_minor})


@router.post("/pos/invoice", dependencies=[Depends(require_csrf)])
async def create_invoice(
    body: PosInvoiceBody, request: Request, keys: PageKeys, invoices: Invoicing, limits: Limits, ip: ClientIp
) -> JSONResponse:
    """The sale's invoice, made with the session's key; errors are the JSON API's `{error, field}`."""
    session = open_merchant(keys, request.cookies.get(POS_COOKIE))
    if session is None:
        return _error(401, "your session has ended; sign in again")
    try:
        await limits.admit_invoice(api_key=session.api_key, wallet_id=session.wallet_id, ip=ip)
        created = await invoices.create(_order(session, body))
    except InvoiceRequestError as exc:
        return _error(exc.status, str(exc), exc.field)
    except BlinkError:
        return _error(503, "Blink could not be reached; nothing was charged, try again shortly")
    return JSONResponse(sale_answer(created))


def _order(session: MerchantSession, body: PosInvoiceBody) -> InvoiceOrder:
    """Sat currencies send whole sats as the base; others a display amount the server prices."""
    recipients = tuple((r.username, r.share) for r in body.recipients)
    common: dict[str, Any] = {
        "user_wallet_id": session.wallet_id, "api_key": session.api_key, "tip_percent": body.tipPercent,
        "recipients": recipients, "memo": body.memo or None,
    }
    if body.displayCurrency in SAT_CURRENCIES:
        if body.amount != body.amount.to_integral_value():
            raise InvoiceRequestError("amount", "an amount in sats must be a whole number")
        return InvoiceOrder(base_amount=int(body.amount), display_currency="BTC", **common)
    return InvoiceOrder(display_currency=body.displayCurrency, base_amount_display=body.amount, **common)
