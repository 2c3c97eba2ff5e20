"""Every error leaves as JSON that says what is wrong and, where it can, which field."""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from tipsplit.blink.errors import BlinkError, BlinkOutcomeUnknown, BlinkUnavailable
from tipsplit.services.invoicing import InvoiceRequestError
from tipsplit.services.pos_accounts import NoInvoiceBudget
from tipsplit.store.errors import StorageUnavailable


def error_body(message: str, **extra: Any) -> dict[str, Any]:
    return {"error": message, **extra}


def _field_of(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "path", "query")]
    return ".".join(parts) or "body"


def _problem(err: dict[str, Any]) -> dict[str, str]:
    """One validation problem; a body that is not JSON at all is named as such, with where parsing stopped."""
    if err.get("type") == "json_invalid":
        where = next((p for p in err.get("loc", ()) if isinstance(p, int)), None)
        detail = (err.get("ctx") or {}).get("error", "")
        at = f" at character {where}" if where is not None else ""
        return {"field": "body", "message": f"the request body is not valid JSON ({detail}{at}); send a JSON object"
                                            " with Content-Type: application/json"}
    return {"field": _field_of(tuple(err.get("loc", ()))), "message": str(err.get("msg"))}


async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = [_problem(err) for err in exc.errors()]
    first = problems[0] if problems else {"field": "body", "message": "invalid request"}
    return JSONResponse(
        status_code=400,
        content=error_body(f"{first['field']}: {first['message']}", field=first["field"], problems=problems),
    )


async def _invoice_request(_request: Request, exc: InvoiceRequestError) -> JSONResponse:
    return JSONResponse(status_code=exc.status, content=error_body(str(exc), field=exc.field))


async def _no_budget(_request: Request, exc: NoInvoiceBudget) -> JSONResponse:
    """A sale Blink would refuse now is refused at once, saying when to try again, rather than tripping a block."""
    return JSONResponse(
        status_code=503,
        content=error_body(f"{exc}; try again in {exc.retry_after} s", retryAfter=exc.retry_after),
        headers={"Retry-After": str(exc.retry_after)},
    )


async def _storage(_request: Request, exc: StorageUnavailable) -> JSONResponse:
    return JSONResponse(status_code=503, content=error_body(str(exc)), headers={"Retry-After": "5"})


async def _blink(_request: Request, exc: BlinkError) -> JSONResponse:
    """Blink failing is not the caller's fault: 503 when it may work on retry, 502 when it refused."""
    if isinstance(exc, (BlinkUnavailable, BlinkOutcomeUnknown)):
        return JSONResponse(status_code=503, content=error_body(f"Blink is unavailable: {exc.detail}"),
                            headers={"Retry-After": "5"})
    return JSONResponse(status_code=502, content=error_body(f"Blink refused {exc.operation}: {exc.detail}"))


async def _http(_request: Request, exc: HTTPException) -> JSONResponse:
    content = exc.detail if isinstance(exc.detail, dict) else error_body(str(exc.detail))
    return JSONResponse(status_code=exc.status_code, content=content, headers=getattr(exc, "headers", None))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(InvoiceRequestError, _invoice_request)  # type: ignore[arg-type]
    app.add_exception_handler(StorageUnavailable, _storage)  # type: ignore[arg-type]
    app.add_exception_handler(NoInvoiceBudget, _no_budget)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http)  # type: ignore[arg-type]
    app.add_exception_handler(BlinkError, _blink)  # type: ignore[arg-type]
