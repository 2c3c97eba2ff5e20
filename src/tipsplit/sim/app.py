"""The simulator as one Starlette app: GraphQL (HTTP and websocket) on /graphql, control on /sim."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send

from tipsplit.sim import control
from tipsplit.sim.graphql_http import graphql_http
from tipsplit.sim.graphql_ws import graphql_ws
from tipsplit.sim.state import SimState


class SimApp(Starlette):
    """Starlette, with POST /graphql (nearly every request) answered without the middleware and router layers.

    Those layers were about a tenth of the simulator's CPU per call and do nothing for this route but
    find it and turn an unexpected exception into a plain 500, which is done here the same way.
    Everything else (/graphql over websockets, /sim, and every request once a middleware has been
    added, as the sandbox adds one) goes through Starlette as routed below.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http" or scope["path"] != "/graphql" or scope["method"] != "POST"
            or scope.get("root_path") or self.user_middleware
        ):
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        try:
            response = await graphql_http(Request(scope, receive))
        except Exception:
            await PlainTextResponse("Internal Server Error", status_code=500)(scope, receive, send)
            raise
        await response(scope, receive, send)


def create_app(seed: int = 0, rate_limits: bool = True, latency_ms: int = 0) -> SimApp:
    """A fresh simulator with its own ledger; `app.state.sim` holds its SimState.

    `rate_limits` turns Blink's invoice-creation limits on (the default) or off; every GraphQL call over
    HTTP is answered `latency_ms` after it was executed (changed later through POST /sim/latency).

    Background work (delayed settlements, webhook retries) is cancelled by the
    app's lifespan shutdown, so run it under a server that sends lifespan events.
    """
    sim = SimState.create(seed, rate_limits, latency_ms)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await sim.aclose()

    app = SimApp(
        routes=[
            Route("/graphql", graphql_http, methods=["POST"]),
            WebSocketRoute("/graphql", graphql_ws),
            Mount("/sim", routes=control.routes),
        ],
        lifespan=lifespan,
    )
    app.state.sim = sim
    return app
