"""POST /graphql: Blink's HTTP transport, with X-API-KEY auth and the configured faults applied.

Status codes follow Apollo Server, which Blink runs: 200 for executed requests
(even with errors), 400 when the document does not parse or validate, 401 for
an unknown API key. An injected error answers 5xx; a lost answer commits the
work and then answers 502 with a non-JSON body, like a proxy that lost the upstream.
"""

import asyncio
import json

from graphql import OperationType
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, PlainTextResponse, Response

from tipsplit.sim.execution import Request, RequestRejected, prepare, run
from tipsplit.sim.state import RequestContext, SimState


def error_response(message: str, code: str, status: int) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status_code=status)


async def graphql_http(http: HttpRequest) -> Response:
    sim: SimState = http.app.state.sim
    key_text = http.headers.get("x-api-key")
    api_key = sim.ledger.authenticate(key_text) if key_text else None
    if key_text and api_key is None:
        return error_response("Invalid API key", "UNAUTHENTICATED", 401)
    try:
        request = Request.from_json(json.loads(await http.body()))
    except ValueError as exc:
        return error_response(f"Bad request: {exc}", "BAD_REQUEST", 400)
    try:
        document, operation, fields = prepare(request)
    except RequestRejected as exc:
        return JSONResponse({"errors": exc.formatted()}, status_code=400)
    sim.received.update(fields)
    if operation is OperationType.SUBSCRIPTION:
        return error_response("Subscriptions are served over graphql-transport-ws on this path", "BAD_REQUEST", 400)
    context = RequestContext(sim=sim, api_key=api_key)
    result = await run(document, request, context)
    if sim.latency_ms:
        await asyncio.sleep(sim.latency_ms / 1000)
    if context.abort_status is not None:
        return error_response("Simulated upstream failure", "INTERNAL_SERVER_ERROR", context.abort_status)
    if context.lose_answer_delay_ms is not None:
        await asyncio.sleep(context.lose_answer_delay_ms / 1000)
        return PlainTextResponse("502 Bad Gateway: the upstream answer was lost", status_code=502)
    return JSONResponse(result.formatted)
