"""The FastAPI application: routes, error handlers, request metrics, and the runtime's lifespan."""

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from tipsplit import __version__
from tipsplit.http.deps import Operator
from tipsplit.http.errors import error_body, install_error_handlers
from tipsplit.http.operator_auth import operator_required
from tipsplit.http.pages import install_web
from tipsplit.http.routes import invoice, ops, status, webhook
from tipsplit.observability import REQUEST_LATENCY
from tipsplit.runtime.assembly import Runtime, start_runtime
from tipsplit.settings import Settings

MAX_BODY_BYTES = 256 * 1024


def create_app(settings: Settings, *, public_url: str | None = None) -> FastAPI:
    """Build the app; the runtime (stores, Blink, watchers) starts with the app's lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt: Runtime = await start_runtime(settings, public_url=public_url)
        app.state.runtime = rt
        try:
            yield
        finally:
            await rt.close()

    app = FastAPI(
        title="tipsplit", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    install_error_handlers(app)
    app.add_middleware(RequestGuard)
    if settings.proxy_hosts:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.proxy_hosts)
    for module in (invoice, webhook, status, ops):
        app.include_router(module.router)
    install_docs(app)
    install_web(app)
    return app


def install_docs(app: FastAPI) -> None:
    """/openapi.json, /docs and /redoc, readable by whoever may read the statistics (see routes/ops.py)."""
    build = app.openapi

    def document() -> dict[str, Any]:
        """The OpenAPI document, built once, without the 422 FastAPI adds: an invalid request is answered 400."""
        if app.openapi_schema is None:
            built = build()
            for item in built["paths"].values():
                for operation in item.values():
                    operation.get("responses", {}).pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                built.get("components", {}).get("schemas", {}).pop(name, None)
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = document  # type: ignore[method-assign]

    async def allowed(request: Request, gate: Operator) -> None:
        if not await gate.may_read_operations(request):
            raise operator_required()

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(allowed)])
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=[Depends(allowed)])
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="tipsplit API")

    @app.get("/redoc", include_in_schema=False, dependencies=[Depends(allowed)])
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title="tipsplit API")


class BodyTooLarge(HTTPException):
    """Raised from `receive` once a request body passes MAX_BODY_BYTES; answered 413 like any HTTPException.

    The connection stays open: uvicorn discards the rest of the body as it arrives, and the client reads the
    413 once it has sent it (closing instead would reset the connection and lose the answer).
    """

    def __init__(self) -> None:
        super().__init__(413, error_body(f"request body too large (at most {MAX_BODY_BYTES} bytes)"))


class RequestGuard:
    """Caps every request body at MAX_BODY_BYTES and times every HTTP request by route and status.

    A declared Content-Length over the cap is refused before the app runs. A chunked body (no length) is
    counted as it arrives: the read that passes the cap raises BodyTooLarge, so the route answers 413 and
    no more than the cap is ever held in memory, whatever the route does with its body.

    A plain ASGI middleware rather than `@app.middleware("http")`: Starlette's
    BaseHTTPMiddleware runs each request in an extra task group with memory
    streams, about a tenth of the service's CPU under load.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
            await _too_large(scope, receive, send)
            return
        status = 500
        started_response = False
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY_BYTES:
                    raise BodyTooLarge()
            return message

        async def send_with_status(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                status = message["status"]
                started_response = True
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, counted_receive, send_with_status)
        except BodyTooLarge:
            if started_response:
                raise
            status = 413
            await _too_large(scope, receive, send)
        finally:
            route = scope.get("route")
            REQUEST_LATENCY.labels(scope["method"], getattr(route, "path", "unmatched"), str(status)).observe(
                time.perf_counter() - started
            )


async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
    refusal = Response(
        content=f'{{"error":"request body too large (at most {MAX_BODY_BYTES} bytes)"}}'.encode(),
        status_code=413, media_type="application/json",
    )
    await refusal(scope, receive, send)
