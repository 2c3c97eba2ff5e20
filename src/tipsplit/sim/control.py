"""The /sim/ control API: what a test does to the simulated Blink that no Blink client can.

JSON in, JSON out. Unknown fields are refused (a misspelt fault option must not
silently do nothing); errors answer {"error": message} with 400 (bad input),
404 (unknown id) or 409 (the ledger's state forbids it).
"""

import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tipsplit.sim.faults import FaultRule
from tipsplit.sim.ledger import ALL_SCOPES, Conflict, LedgerError, NotFound, Scope, Transaction, WalletCurrency
from tipsplit.sim.limits import LIMITERS, LimitRule
from tipsplit.sim.prices import UnknownCurrency
from tipsplit.sim.state import SimState
from tipsplit.sim.webhooks import Delivery, WebhookEndpoint, iso_time


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AccountIn(Body):
    username: str
    balance: int = Field(0, ge=0)
    scopes: list[Scope] = Field(default_factory=lambda: sorted(ALL_SCOPES))
    defaultWalletCurrency: WalletCurrency = WalletCurrency.BTC


class KeyIn(Body):
    scopes: list[Scope] = Field(default_factory=lambda: sorted(ALL_SCOPES), min_length=1)


class PayIn(Body):
    paymentRequest: str


class FaultIn(Body):
    operation: str = Field(min_length=1)
    latencyMs: int = Field(0, ge=0)
    errorRate: float = Field(0.0, ge=0.0, le=1.0)
    errorStatus: int = Field(503, ge=500, le=599)
    loseAnswer: bool = False
    loseAnswerDelayMs: int = Field(0, ge=0)
    pending: bool = False
    resolveAfterMs: int = Field(1000, ge=0)
    failure: bool = False
    walletId: str | None = None
    username: str | None = None
    count: int | None = Field(None, ge=1)


class WebhookIn(Body):
    url: str = Field(pattern=r"^https?://")
    secret: str
    accountId: str | None = None
    maxAttempts: int = Field(8, ge=1, le=20)
    backoffMs: int = Field(200, ge=0)


class PriceIn(Body):
    currency: str = Field(pattern=r"^[A-Za-z]{3}$")
    btcPrice: Decimal = Field(gt=0)
    fractionDigits: int | None = Field(None, ge=0, le=8)


class LimitsIn(Body):
    """Blink's invoice limits as the simulator should apply them: on or off, and (for fast tests) smaller."""

    enabled: bool = True
    points: int = Field(60, ge=1)
    windowSeconds: float = Field(60.0, gt=0)
    blockSeconds: float = Field(300.0, ge=0)


class LatencyIn(Body):
    latencyMs: int = Field(ge=0)


class ClockIn(Body):
    advanceSeconds: float = Field(ge=0)


class BadInput(Exception):
    pass


def _sim(request: Request) -> SimState:
    state: SimState = request.app.state.sim
    return state


async def _read(request: Request, model: type[Body]) -> Any:
    try:
        return model.model_validate(json.loads(await request.body() or b"{}"))
    except ValueError as exc:
        if isinstance(exc, ValidationError):
            details = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
            raise BadInput(details) from None
        raise BadInput(f"body is not JSON: {exc}") from None


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _ledger_error(exc: LedgerError) -> JSONResponse:
    status = 404 if isinstance(exc, NotFound) else 409 if isinstance(exc, Conflict) else 400
    return JSONResponse({"error": exc.message, "code": exc.code}, status_code=status)


def tx_json(tx: Transaction) -> dict[str, Any]:
    return {
        "id": tx.id, "direction": tx.direction.value, "amount": tx.signed_amount, "status": tx.status.value,
        "paymentHash": tx.payment_hash, "paymentRequest": tx.payment_request, "memo": tx.memo,
        "settlement": tx.settlement.value, "counterpartyWalletId": tx.counterparty_wallet_id,
        "counterpartyUsername": tx.counterparty_username, "createdAt": tx.created_at,
    }


def fault_json(rule: FaultRule) -> dict[str, Any]:
    return {
        "id": rule.id, "operation": rule.operation, "latencyMs": rule.latency_ms, "errorRate": rule.error_rate,
        "errorStatus": rule.error_status, "loseAnswer": rule.lose_answer,
        "loseAnswerDelayMs": rule.lose_answer_delay_ms, "pending": rule.pending,
        "resolveAfterMs": rule.resolve_after_ms, "failure": rule.failure, "walletId": rule.wallet_id,
        "username": rule.username,
        "remaining": rule.remaining, "fired": rule.fired,
    }


def delivery_json(delivery: Delivery) -> dict[str, Any]:
    return {
        "msgId": delivery.msg_id, "endpointId": delivery.endpoint_id, "eventType": delivery.event_type,
        "payload": json.loads(delivery.body), "delivered": delivery.delivered, "gaveUp": delivery.gave_up,
        "attempts": [{"at": iso_time(a.at), "statusCode": a.status_code, "error": a.error} for a in delivery.attempts],
    }


def endpoint_json(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id, "url": endpoint.url, "accountId": endpoint.account_id,
        "maxAttempts": endpoint.max_attempts, "backoffMs": endpoint.backoff_ms,
    }


async def create_account(request: Request) -> JSONResponse:
    body: AccountIn = await _read(request, AccountIn)
    account, key = _sim(request).ledger.create_account(body.username, body.balance, frozenset(body.scopes))
    account.default_currency = body.defaultWalletCurrency
    return JSONResponse({
        "accountId": account.id, "username": account.username, "apiKey": key.key,
        "btcWalletId": account.btc_wallet_id, "usdWalletId": account.usd_wallet_id,
        "scopes": sorted(s.value for s in key.scopes),
    }, status_code=201)


async def create_key(request: Request) -> JSONResponse:
    body: KeyIn = await _read(request, KeyIn)
    key = _sim(request).ledger.issue_api_key(request.path_params["account_id"], frozenset(body.scopes))
    return JSONResponse({"apiKey": key.key, "scopes": sorted(s.value for s in key.scopes)}, status_code=201)


async def pay(request: Request) -> JSONResponse:
    body: PayIn = await _read(request, PayIn)
    ledger = _sim(request).ledger
    payment = ledger.pay_from_outside(body.paymentRequest)
    invoice = ledger.invoice_by_hash(payment.payment_hash)
    return JSONResponse({
        "paymentId": payment.id, "paymentHash": payment.payment_hash, "preimage": invoice.preimage,
        "walletId": payment.recipient_wallet_id, "accountId": ledger.wallet(payment.recipient_wallet_id).account_id,
        "amount": payment.amount, "status": ledger.invoice_status(invoice).value,
    })


async def wallet(request: Request) -> JSONResponse:
    ledger = _sim(request).ledger
    found = ledger.wallet(request.path_params["wallet_id"])
    return JSONResponse({
        "walletId": found.id, "accountId": found.account_id, "currency": found.currency.value,
        "balance": found.balance, "transactions": [tx_json(t) for t in ledger.transactions(found.id)],
    })


async def ledger_view(request: Request) -> JSONResponse:
    return JSONResponse(_sim(request).ledger.snapshot())


async def add_fault(request: Request) -> JSONResponse:
    body: FaultIn = await _read(request, FaultIn)
    rule = _sim(request).faults.add(FaultRule(
        operation=body.operation, latency_ms=body.latencyMs, error_rate=body.errorRate,
        error_status=body.errorStatus, lose_answer=body.loseAnswer, lose_answer_delay_ms=body.loseAnswerDelayMs,
        pending=body.pending, resolve_after_ms=body.resolveAfterMs, failure=body.failure, wallet_id=body.walletId,
        username=body.username, remaining=body.count,
    ))
    return JSONResponse(fault_json(rule), status_code=201)


async def list_faults(request: Request) -> JSONResponse:
    return JSONResponse({"faults": [fault_json(r) for r in _sim(request).faults.rules()]})


async def clear_faults(request: Request) -> JSONResponse:
    return JSONResponse({"cleared": _sim(request).faults.clear()})


async def remove_fault(request: Request) -> JSONResponse:
    if not _sim(request).faults.remove(request.path_params["fault_id"]):
        return _error(f"no fault {request.path_params['fault_id']}", 404)
    return JSONResponse({"cleared": 1})


async def add_webhook(request: Request) -> JSONResponse:
    body: WebhookIn = await _read(request, WebhookIn)
    webhooks = _sim(request).webhooks
    try:
        endpoint = webhooks.add_endpoint(WebhookEndpoint(
            id=webhooks.new_endpoint_id(), url=body.url, secret=body.secret, account_id=body.accountId,
            max_attempts=body.maxAttempts, backoff_ms=body.backoffMs,
        ))
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    return JSONResponse(endpoint_json(endpoint), status_code=201)


async def list_webhooks(request: Request) -> JSONResponse:
    webhooks = _sim(request).webhooks
    return JSONResponse({
        "endpoints": [endpoint_json(e) for e in webhooks.endpoints()],
        "deliveries": [delivery_json(d) for d in webhooks.deliveries()],
    })


async def clear_webhooks(request: Request) -> JSONResponse:
    return JSONResponse({"cleared": _sim(request).webhooks.clear()})


async def set_price(request: Request) -> JSONResponse:
    body: PriceIn = await _read(request, PriceIn)
    prices = _sim(request).prices
    try:
        currency = prices.set_price(body.currency, Fraction(body.btcPrice), body.fractionDigits)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    quote = prices.sat_price(currency.code)
    return JSONResponse({
        "currency": currency.code, "btcPrice": str(body.btcPrice), "fractionDigits": currency.fraction_digits,
        "btcSatPrice": {"base": quote.base, "offset": quote.offset},
    })


async def advance_clock(request: Request) -> JSONResponse:
    body: ClockIn = await _read(request, ClockIn)
    sim = _sim(request)
    now = sim.clock.advance(body.advanceSeconds)
    sim.broker.clock_moved()
    return JSONResponse({"now": now})


async def latency_view(request: Request) -> JSONResponse:
    return JSONResponse({"latencyMs": _sim(request).latency_ms})


async def set_latency(request: Request) -> JSONResponse:
    """Answer every GraphQL call over HTTP this many ms after executing it (0: at once)."""
    body: LatencyIn = await _read(request, LatencyIn)
    _sim(request).latency_ms = body.latencyMs
    return await latency_view(request)


async def received_operations(request: Request) -> JSONResponse:
    """How many times each GraphQL root field was asked for, so a test can bound a client's calls."""
    received = _sim(request).received
    return JSONResponse({"operations": dict(received), "total": received.total()})


async def clear_received_operations(request: Request) -> JSONResponse:
    received = _sim(request).received
    cleared = received.total()
    received.clear()
    return JSONResponse({"cleared": cleared})


async def limits_view(request: Request) -> JSONResponse:
    """Blink's invoice-creation limiters, per account, on the simulator's clock."""
    sim = _sim(request)
    accounts = sim.ledger.accounts()
    return JSONResponse({
        "enabled": sim.limits.enabled,
        "accounts": [
            {"accountId": a.id, "username": a.username,
             "limits": {name: sim.limits.state(name, a.id) for name in LIMITERS}}
            for a in accounts
        ],
    })


async def set_limits(request: Request) -> JSONResponse:
    """Turn the limits on or off, or shrink them so a test can see windows pass in seconds; counts restart."""
    body: LimitsIn = await _read(request, LimitsIn)
    sim = _sim(request)
    sim.limits.configure(body.enabled, LimitRule(body.points, body.windowSeconds, body.blockSeconds))
    return await limits_view(request)


async def drop_subscriptions(request: Request) -> JSONResponse:
    sockets = list(_sim(request).sockets)
    for session in sockets:
        await session.drop()
    return JSONResponse({"dropped": len(sockets)})


Handler = Callable[[Request], Awaitable[JSONResponse]]


def _guarded(handler: Handler) -> Handler:
    """Map refusals to 4xx JSON so every handler reads as its happy path."""

    async def endpoint(request: Request) -> JSONResponse:
        try:
            return await handler(request)
        except BadInput as exc:
            return _error(str(exc), 400)
        except LedgerError as exc:
            return _ledger_error(exc)
        except UnknownCurrency as exc:
            return _error(f"unknown currency {exc.args[0]}", 404)

    return endpoint


routes = [
    Route(path, _guarded(handler), methods=[method])
    for path, method, handler in (
        ("/accounts", "POST", create_account),
        ("/accounts/{account_id}/keys", "POST", create_key),
        ("/pay", "POST", pay),
        ("/wallets/{wallet_id}", "GET", wallet),
        ("/ledger", "GET", ledger_view),
        ("/faults", "POST", add_fault),
        ("/faults", "GET", list_faults),
        ("/faults", "DELETE", clear_faults),
        ("/faults/{fault_id}", "DELETE", remove_fault),
        ("/webhooks", "POST", add_webhook),
        ("/webhooks", "GET", list_webhooks),
        ("/webhooks", "DELETE", clear_webhooks),
        ("/prices", "POST", set_price),
        ("/clock", "POST", advance_clock),
        ("/latency", "GET", latency_view),
        ("/latency", "POST", set_latency),
        ("/limits", "GET", limits_view),
        ("/limits", "POST", set_limits),
        ("/subscriptions/drop", "POST", drop_subscriptions),
        ("/operations", "GET", received_operations),
        ("/operations", "DELETE", clear_received_operations),
    )
]
