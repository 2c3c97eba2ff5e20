"""Health, statistics, Prometheus metrics and the sandbox's credentials.

Statistics and metrics are the operator's (OPERATOR_TOKEN as a Bearer header, which Prometheus can send, or
the dashboard's session) unless PUBLIC_METRICS=true or in sandbox mode; health stays public for probes.
"""

import asyncio
import time
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tipsplit.http.deps import Accounts, BlinkProbe, Operator, PosBlink, Records, SandboxWorld, Store
from tipsplit.http.errors import error_body
from tipsplit.http.operator_auth import operator_required
from tipsplit.http.schemas.answers import HealthAnswer, SandboxAnswer, StatsAnswer
from tipsplit.http.schemas.errors import OPERATOR_ONLY, STORAGE_DOWN, TOO_MANY_SIGN_INS, error

router = APIRouter(tags=["operations"])

CHECK_TIMEOUT = 3.0


async def _timed(check: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check, CHECK_TIMEOUT)
    except Exception as exc:
        return {"status": "down", "error": type(exc).__name__}
    return {"status": "up", "latencyMs": round((time.perf_counter() - started) * 1000, 2)}


async def _disabled() -> dict[str, Any]:
    return {"status": "disabled"}


@router.get(
    "/api/health",
    response_model=HealthAnswer,
    responses={503: {"model": HealthAnswer, "description": "`unhealthy`: PostgreSQL or Blink does not answer"}},
)
async def health(
    response: Response, store: Store, pg: Records, pos: PosBlink, probe: BlinkProbe, accounts: Accounts,
    sandbox: SandboxWorld,
) -> dict[str, Any]:
    """200 while PostgreSQL and Blink answer; Redis down only degrades (it is a cache).

    Anyone may call this, so Blink's answer is shared by concurrent calls and reused for a few seconds.
    """
    hot = store.hot
    postgres, redis, blink = await asyncio.gather(
        _timed(pg.ping()),
        _timed(hot.ping()) if hot is not None else _disabled(),
        probe.run("blink", lambda: _timed(pos.realtime_price("USD"))),
    )
    healthy = postgres["status"] == "up" and blink["status"] == "up"
    status = "healthy" if healthy and redis["status"] != "down" else ("degraded" if healthy else "unhealthy")
    body = {
        "status": status,
        "sandbox": sandbox is not None,
        "checks": {"postgres": postgres, "redis": redis, "blink": blink},
        "posAccounts": [budget.public() for budget in await accounts.budgets()],
    }
    response.status_code = 200 if healthy else 503
    return body


OPERATOR_ERRORS: dict[int | str, dict[str, Any]] = {401: OPERATOR_ONLY, 429: TOO_MANY_SIGN_INS}


@router.get("/api/stats", response_model=StatsAnswer, responses={**OPERATOR_ERRORS, 503: STORAGE_DOWN})
async def stats(request: Request, store: Store, gate: Operator) -> dict[str, Any]:
    """Last 24 hours and per-recipient totals, served from the Redis stats cache; the operator's."""
    if not await gate.may_read_operations(request):
        raise operator_required()
    return await store.stats.get_stats()


@router.get("/metrics", response_class=PlainTextResponse, responses=OPERATOR_ERRORS)
async def metrics(request: Request, accounts: Accounts, gate: Operator) -> Response:
    """Prometheus metrics; the operator's (scrape with `authorization: Bearer <OPERATOR_TOKEN>`).

    Each POS account's invoice budget and balance are read at scrape time.
    """
    if not await gate.may_read_operations(request):
        raise operator_required()
    await accounts.statuses()
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get("/api/sandbox", response_model=SandboxAnswer, responses={404: error("not in sandbox mode")})
async def sandbox(world: SandboxWorld) -> dict[str, Any]:
    """The simulator's accounts, so a sale can be made by hand; 404 when talking to real Blink."""
    if world is None:
        raise HTTPException(status_code=404, detail=error_body("not in sandbox mode"))
    return world.credentials()
