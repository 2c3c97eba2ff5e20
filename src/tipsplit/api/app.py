"""The FastAPI application: routes, error handlers, request metrics, and the runtime's lifespan."""

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response

from tipsplit import __version__
from tipsplit.api import routes_invoice, routes_ops, routes_status, routes_webhook
from tipsplit.api.errors import install_error_handlers
from tipsplit.config import Settings
from tipsplit.observability import REQUEST_LATENCY
from tipsplit.runtime import Runtime, start_runtime
from tipsplit.web import install_web

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

    app = FastAPI(title="tipsplit", version=__version__, lifespan=lifespan)
    install_error_handlers(app)

    @app.middleware("http")
    async def measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
            return Response(
                content=b'{"error":"request body too large"}', status_code=413, media_type="application/json"
            )
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        REQUEST_LATENCY.labels(
            request.method, getattr(route, "path", "unmatched"), str(response.status_code)
        ).observe(time.perf_counter() - started)
        return response

    for module in (routes_invoice, routes_webhook, routes_status, routes_ops):
        app.include_router(module.router)
    install_web(app)
    return app
