"""The operations dashboard: payments, their legs and audit trail, leaderboard, charts, health, CSV export,
and the retry of a failed payment.

Every route needs the operator (OPERATOR_TOKEN, by session cookie or bearer header, see http/operator_auth.py);
in sandbox mode with no token the dashboard is open and says so. Every POST is CSRF-protected (http/csrf.py).
"""

import asyncio
import time
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response

from tipsplit.blink.client import BlinkClient
from tipsplit.domain.models import HASH_RE
from tipsplit.domain.records import PaymentRecord
from tipsplit.domain.states import PaymentStatus
from tipsplit.http import csrf
from tipsplit.http.csrf import require_csrf
from tipsplit.http.deps import (
    Accounts,
    AppSettings,
    KeyPolicy,
    Operator,
    PageKeys,
    PosBlink,
    Settling,
    Records,
    Store,
    TillService,
)
from tipsplit.http.errors import error_body
from tipsplit.http.operator_auth import OPERATOR_COOKIE, OPERATOR_MAX_AGE, OperatorGate, TooManyAttempts
from tipsplit.http.pages.reports import PAGE_SIZE, PaymentFilter, chart_bars, payments_csv
from tipsplit.http.sessions import WebKeys
from tipsplit.http.templating import templates
from tipsplit.http.views import event_view, leg_reason
from tipsplit.services.operator_retry import RetryRefused, RetryResult, retry_failed_payment
from tipsplit.services.pos_accounts import PosAccounts
from tipsplit.settings import Settings
from tipsplit.store.stack import StoreStack
from tipsplit.store.metrics import CACHE_HIT, CACHE_MISS
from tipsplit.store.postgres import PostgresStore

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/dashboard", tags=["dashboard"], include_in_schema=False)

CHECK_TIMEOUT = 3.0
BACKLOG_LIMIT = 100
EXPORT_LIMIT = 10_000
EXPORT_PAGE = 500
RETRY_WAIT_SECONDS = 15.0
# What the payment page says after a retry, by the code the retry's redirect carries.
RETRY_NOTES = {
    "completed": "Retried: every leg is paid now.",
    "queued": "Retried: not every leg is paid yet. The service keeps at it: a leg that failed again is retried"
              " with backoff until its fresh attempts are used up.",
    "failed": "Retried: a leg failed again and has no attempts left; the payment is failed again.",
    "running": "Retry started; it is still talking to Blink. Reload in a moment.",
}
_retries: set[asyncio.Task[RetryResult]] = set()


def _retry_done(task: asyncio.Task[RetryResult]) -> None:
    """Forget a finished retry; one that outlived its page and then broke is logged, not lost."""
    _retries.discard(task)
    if not task.cancelled() and (exc := task.exception()) is not None and not isinstance(exc, RetryRefused):
        log.error("dashboard.retry_crashed", error=f"{type(exc).__name__}: {exc}")


def _login_page(
    request: Request, keys: WebKeys, gate: OperatorGate, status: int, error: str | None = None
) -> Response:
    context = {"error": error, "token_set": bool(gate.token), "signer": keys.signer is not None}
    return csrf.render(request, keys, "dashboard_login.html", context, status)


async def _refused(request: Request, gate: OperatorGate, *, page: bool = False) -> Response | None:
    """None when the operator may look; else a redirect to the login form (pages) or a JSON 401 (the rest)."""
    if await gate.signed_in(request):
        return None
    if page and not request.headers.get("hx-request"):
        return RedirectResponse("/dashboard/login", status_code=303)
    return JSONResponse(status_code=401, content=error_body("operator sign-in required"))


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, keys: PageKeys, gate: Operator) -> Response:
    if await gate.signed_in(request):
        return RedirectResponse("/dashboard", status_code=303)
    return _login_page(request, keys, gate, 200)


@router.post("/login", dependencies=[Depends(require_csrf)])
async def login(request: Request, keys: PageKeys, gate: Operator, token: str = Form(max_length=500)) -> Response:
    """Exchange OPERATOR_TOKEN for a server-side session behind an opaque, HttpOnly, SameSite=Strict cookie."""
    if keys.signer is None or not gate.token:
        return _login_page(request, keys, gate, 503, "Operator sign-in needs OPERATOR_TOKEN and SESSION_SECRET.")
    try:
        await gate.count_attempt(request)
    except TooManyAttempts as exc:
        message = f"Too many sign-in attempts from this address; try again in {exc.retry_after} s."
        page = _login_page(request, keys, gate, 429, message)
        page.headers["Retry-After"] = str(exc.retry_after)
        return page
    if not gate.token_matches(token):
        return _login_page(request, keys, gate, 401, "That is not the operator token.")
    session_id = await gate.start_session()
    if session_id is None:
        return _login_page(request, keys, gate, 503, "Redis, which keeps operator sessions, is not reachable;"
                           " send Authorization: Bearer <OPERATOR_TOKEN> instead.")
    response = RedirectResponse("/dashboard", status_code=303)
    flags = keys.cookie_flags(request, OPERATOR_MAX_AGE, "strict")
    response.set_cookie(OPERATOR_COOKIE, session_id, **flags)  # type: ignore[arg-type]
    return response


@router.post("/logout", dependencies=[Depends(require_csrf)])
async def logout(request: Request, gate: Operator) -> Response:
    """End the session everywhere (it is deleted from Redis), not just in this browser."""
    await gate.end_session(request)
    response = RedirectResponse("/dashboard", status_code=303)
    response.delete_cookie(OPERATOR_COOKIE, path="/")
    return response


async def _payments_context(pg: PostgresStore, request: Request) -> dict[str, Any]:
    """One page of payments (one extra row fetched to know whether a next page exists)."""
    try:
        flt = PaymentFilter.parse(request.query_params)
    except ValueError as exc:
        return {"filter": PaymentFilter(), "payments": [], "has_next": False, "filter_error": str(exc)}
    rows = await pg.payments.page(
        flt.status, flt.since_at, flt.until_at, flt.recipient, limit=PAGE_SIZE + 1, offset=flt.offset
    )
    return {"filter": flt, "payments": rows[:PAGE_SIZE], "has_next": len(rows) > PAGE_SIZE, "filter_error": None}


@router.get("", response_class=HTMLResponse)
async def dashboard(
    request: Request, keys: PageKeys, gate: Operator, store: Store, pg: Records, tills: TillService,
    key_policy: KeyPolicy, pos: PosBlink, accounts: Accounts,
) -> Response:
    if (refusal := await _refused(request, gate, page=True)) is not None:
        return refusal
    now = datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    till_sales = tills.store
    hourly, daily, leaders, last24, cancelled, flagged = await asyncio.gather(
        pg.reports.volume_series(hour - timedelta(hours=23), "hour"),
        pg.reports.volume_series(day - timedelta(days=6), "day"),
        pg.reports.recipient_stats(limit=10),
        pg.reports.stats_24h(),
        till_sales.cancelled_unpaid_24h(),
        till_sales.paid_after_cancel(),
    )
    context = {
        **await _payments_context(pg, request),
        "open": gate.open,
        "sandbox": keys.sandbox,
        "write_keys_allowed": key_policy.allow_write,
        "stats": last24,
        "in_progress": last24["pending_count"] + last24["processing_count"] - cancelled,
        "paid_after_cancel": len(flagged),
        "leaders": leaders,
        "charts": [
            ("Last 24 hours", chart_bars(hourly, hour - timedelta(hours=23), 24, timedelta(hours=1), "%H:00")),
            ("Last 7 days", chart_bars(daily, day - timedelta(days=6), 7, timedelta(days=1), "%a %d")),
        ],
        "health": await _health(store, pg, pos, accounts),
        "statuses": ["pending", "processing", "completed", "failed", "expired"],
    }
    return csrf.render(request, keys, "dashboard.html", context)


@router.get("/payments", response_class=HTMLResponse)
async def payments_fragment(request: Request, gate: Operator, pg: Records) -> Response:
    """The payments table alone, for htmx to swap in when a filter or page changes."""
    if (refusal := await _refused(request, gate)) is not None:
        return refusal
    return templates.TemplateResponse(request, "_payments.html", await _payments_context(pg, request))


@router.get("/payments/{payment_hash}", response_class=HTMLResponse)
async def payment_detail(
    request: Request, payment_hash: str, keys: PageKeys, gate: Operator, pg: Records, settings: AppSettings
) -> Response:
    """One payment: amounts, each leg with Blink's own error text, the audit trail, and Retry when failed."""
    if (refusal := await _refused(request, gate, page=True)) is not None:
        return refusal
    note = RETRY_NOTES.get(request.query_params.get("retry", ""))
    return await _payment_page(request, keys, pg, settings, payment_hash, note=note)


async def _payment_page(
    request: Request, keys: WebKeys, pg: PostgresStore, settings: Settings, payment_hash: str, *,
    note: str | None = None, error: str | None = None, status: int = 200,
) -> Response:
    ph = payment_hash.lower()
    payment = await pg.payments.get(ph) if HASH_RE.fullmatch(ph) else None
    if payment is None:
        return csrf.render(request, keys, "payment.html", {"payment": None}, 404)
    events = [event_view(e) for e in await pg.events.of_payment(ph)]
    context = {
        "payment": payment, "events": events, "note": note, "retry_error": error,
        "reasons": {leg.leg: leg_reason(leg) for leg in payment.legs},
        "max_attempts": settings.max_leg_attempts, "failed": payment.status is PaymentStatus.FAILED,
    }
    return csrf.render(request, keys, "payment.html", context, status)


@router.post("/payments/{payment_hash}/retry", dependencies=[Depends(require_csrf)])
async def retry_payment(
    request: Request, payment_hash: str, keys: PageKeys, gate: Operator, pg: Records, settler: Settling,
    settings: AppSettings,
) -> Response:
    """Retry a failed payment as `tipsplit payments retry` does; other states are refused (409)."""
    if (refusal := await _refused(request, gate)) is not None:
        return refusal
    ph = payment_hash.lower()
    if not HASH_RE.fullmatch(ph):
        return JSONResponse(status_code=400, content=error_body("paymentHash must be 64 hexadecimal characters",
                                                                field="paymentHash"))
    task = asyncio.ensure_future(retry_failed_payment(pg, settler, ph, "dashboard retry"))
    _retries.add(task)
    task.add_done_callback(_retry_done)
    try:
        retried = await asyncio.wait_for(asyncio.shield(task), RETRY_WAIT_SECONDS)
    except TimeoutError:
        code = "running"
    except RetryRefused as exc:
        return await _payment_page(request, keys, pg, settings, ph, error=str(exc),
                                   status=404 if exc.unknown else 409)
    else:
        code = ("completed" if retried.completed
                else "failed" if retried.payment.status is PaymentStatus.FAILED else "queued")
    return RedirectResponse(f"/dashboard/payments/{ph}?retry={code}", status_code=303)


async def _probe(check: Awaitable[Any]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check, CHECK_TIMEOUT)
    except Exception as exc:
        return {"status": "down", "detail": type(exc).__name__}
    return {"status": "up", "detail": f"{(time.perf_counter() - started) * 1000:.1f} ms"}


async def _health(store: StoreStack, pg: PostgresStore, pos: BlinkClient, accounts: PosAccounts) -> dict[str, Any]:
    """Each dependency's status, the Redis hit rate (24 h) and what the poller/reconciler still has to do."""
    hot = store.hot
    postgres, redis, blink = await asyncio.gather(
        _probe(pg.ping()),
        _probe(hot.ping()) if hot is not None else asyncio.sleep(0, {"status": "disabled", "detail": ""}),
        _probe(pos.realtime_price("USD")),
    )
    try:
        since = datetime.now(UTC) - timedelta(hours=24)
        totals = await pg.reports.metric_totals([CACHE_HIT, CACHE_MISS], since)
        pending, stale, retry = await asyncio.gather(
            pg.claims.pending(BACKLOG_LIMIT), pg.claims.stale(BACKLOG_LIMIT),
            pg.claims.retryable_failed(datetime.now(UTC), BACKLOG_LIMIT),
        )
    except Exception:
        return {"checks": {"PostgreSQL": postgres, "Redis": redis, "Blink": blink}, "hit_rate": None, "backlog": None}
    lookups = totals[CACHE_HIT] + totals[CACHE_MISS]
    return {
        "accounts": await accounts.statuses(),
        "checks": {"PostgreSQL": postgres, "Redis": redis, "Blink": blink},
        "hit_rate": (totals[CACHE_HIT] / lookups) if lookups else None,
        "lookups": int(lookups),
        "backlog": {"awaiting payment": len(pending), "stalled claims": len(stale), "failed, awaiting an operator": len(retry)},
        "backlog_limit": BACKLOG_LIMIT,
    }


@router.get("/health", response_class=HTMLResponse)
async def health_fragment(
    request: Request, gate: Operator, store: Store, pg: Records, pos: PosBlink, accounts: Accounts
) -> Response:
    """The live health panel, refreshed by htmx every few seconds."""
    if (refusal := await _refused(request, gate)) is not None:
        return refusal
    return templates.TemplateResponse(request, "_health.html", {"health": await _health(store, pg, pos, accounts)})


@router.get("/export.csv")
async def export_csv(request: Request, gate: Operator, pg: Records) -> Response:
    """Every payment matching the filters (all pages, at most EXPORT_LIMIT), one row each."""
    if (refusal := await _refused(request, gate)) is not None:
        return refusal
    try:
        flt = PaymentFilter.parse(request.query_params)
    except ValueError as exc:
        return PlainTextResponse(str(exc), status_code=400)
    payments: list[PaymentRecord] = []
    while len(payments) < EXPORT_LIMIT:
        page = await pg.payments.page(
            flt.status, flt.since_at, flt.until_at, flt.recipient, limit=EXPORT_PAGE, offset=len(payments)
        )
        payments.extend(page)
        if len(page) < EXPORT_PAGE:
            break
    legs = await pg.legs.of_payments([p.payment_hash for p in payments])
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return Response(
        payments_csv(payments[:EXPORT_LIMIT], legs),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="tipsplit-payments-{stamp}.csv"'},
    )
