"""The simulator as one Starlette app: GraphQL (HTTP and websocket) on /graphql, control on /sim."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.routing import Mount, Route, WebSocketRoute

from tipsplit.sim import control
from tipsplit.sim.graphql_http import graphql_http
from tipsplit.sim.graphql_ws import graphql_ws
from tipsplit.sim.state import SimState


def create_app(seed: int = 0, rate_limits: bool = True, latency_ms: int = 0) -> Starlette:
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

    app = Starlette(
        routes=[
            Route("/graphql", graphql_http, methods=["POST"]),
            WebSocketRoute("/graphql", graphql_ws),
            Mount("/sim", routes=control.routes),
        ],
        lifespan=lifespan,
    )
    app.state.sim = sim
    return app
