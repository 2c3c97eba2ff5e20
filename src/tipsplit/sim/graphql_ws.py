"""The graphql-transport-ws protocol on /graphql, as Blink serves `myUpdates`.

Close codes follow the protocol (github.com/enisdenjo/graphql-ws, PROTOCOL.md):
4400 bad message, 4401 subscribe before ack, 4403 bad API key, 4408 no
connection_init in time, 4409 duplicate operation id, 4429 second init.
The API key travels in the connection_init payload (`X-API-KEY`, `x-api-key`
or `apiKey`) or in the handshake's X-API-KEY header.
"""

import asyncio
import json
from typing import Any, NoReturn

from graphql import ExecutionResult, OperationType
from starlette.websockets import WebSocket, WebSocketDisconnect

from tipsplit.sim.execution import Request, RequestRejected, prepare, run, run_subscription
from tipsplit.sim.ledger import ApiKey
from tipsplit.sim.state import RequestContext, SimState

PROTOCOL = "graphql-transport-ws"
INIT_TIMEOUT_SECONDS = 10.0
KEY_FIELDS = ("X-API-KEY", "x-api-key", "apiKey")
CLOSE_SERVICE_RESTART = 1012


class Closed(Exception):
    """The session ended; `code` and `reason` were sent to the client."""


class Session:
    """One websocket connection: its handshake state and its running operations."""

    def __init__(self, websocket: WebSocket, sim: SimState) -> None:
        self.websocket = websocket
        self.sim = sim
        self.api_key: ApiKey | None = None
        self.operations: dict[str, asyncio.Task[None]] = {}
        self._send_lock = asyncio.Lock()
        self._closed = False

    async def send(self, message: dict[str, Any]) -> None:
        async with self._send_lock:
            if not self._closed:
                await self.websocket.send_text(json.dumps(message))

    async def close(self, code: int, reason: str) -> NoReturn:
        async with self._send_lock:
            if not self._closed:
                self._closed = True
                await self.websocket.close(code=code, reason=reason)
        raise Closed(reason)

    async def drop(self) -> None:
        """Cut the connection as a restarting server would (control API and shutdown)."""
        try:
            await self.close(CLOSE_SERVICE_RESTART, "Service restart")
        except Closed:
            pass

    async def run(self) -> None:
        try:
            await self._handshake()
            while True:
                await self._dispatch(await self._receive())
        except (Closed, WebSocketDisconnect):
            pass
        finally:
            for task in self.operations.values():
                task.cancel()
            await asyncio.gather(*self.operations.values(), return_exceptions=True)

    async def _receive(self) -> dict[str, Any]:
        message = await self.websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        try:
            parsed = json.loads(message.get("text") or message.get("bytes") or b"")
        except ValueError:
            await self.close(4400, "Invalid message received")
        if not isinstance(parsed, dict) or not isinstance(parsed.get("type"), str):
            await self.close(4400, "Invalid message received")
        return parsed

    async def _handshake(self) -> None:
        try:
            message = await asyncio.wait_for(self._receive(), INIT_TIMEOUT_SECONDS)
        except TimeoutError:
            await self.close(4408, "Connection initialisation timeout")
        if message["type"] != "connection_init":
            await self.close(4401, "Unauthorized")
        payload = message.get("payload") or {}
        key_text = next((payload[f] for f in KEY_FIELDS if isinstance(payload, dict) and payload.get(f)), None)
        key_text = key_text or self.websocket.headers.get("x-api-key")
        if key_text:
            self.api_key = self.sim.ledger.authenticate(str(key_text))
            if self.api_key is None:
                await self.close(4403, "Forbidden")
        await self.send({"type": "connection_ack"})

    async def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "connection_init":
            await self.close(4429, "Too many initialisation requests")
        elif kind == "ping":
            await self.send({"type": "pong"})
        elif kind == "pong":
            return
        elif kind == "subscribe":
            op_id = message.get("id")
            if not isinstance(op_id, str) or not op_id:
                await self.close(4400, "Invalid message received")
            if op_id in self.operations:
                await self.close(4409, f"Subscriber for {op_id} already exists")
            try:
                request = Request.from_json(message.get("payload"))
            except ValueError:
                await self.close(4400, "Invalid message received")
            task = asyncio.get_running_loop().create_task(self._operate(op_id, request))
            self.operations[op_id] = task
            task.add_done_callback(lambda done: self._forget(op_id, done))
        elif kind == "complete":
            finished = self.operations.pop(str(message.get("id")), None)
            if finished is not None:
                finished.cancel()
        else:
            await self.close(4400, f"Unexpected message type {kind}")

    def _forget(self, op_id: str, task: "asyncio.Task[None]") -> None:
        """Drop a finished operation, unless its id already belongs to a newer one."""
        if self.operations.get(op_id) is task:
            del self.operations[op_id]

    async def _operate(self, op_id: str, request: Request) -> None:
        context = RequestContext(sim=self.sim, api_key=self.api_key)
        try:
            document, operation, fields = prepare(request)
        except RequestRejected as exc:
            await self.send({"type": "error", "id": op_id, "payload": exc.formatted()})
            return
        self.sim.received.update(fields)
        if operation is not OperationType.SUBSCRIPTION:
            result = await run(document, request, context)
            await self.send({"type": "next", "id": op_id, "payload": result.formatted})
            await self.send({"type": "complete", "id": op_id})
            return
        stream = await run_subscription(document, request, context)
        if isinstance(stream, ExecutionResult):
            await self.send({"type": "error", "id": op_id, "payload": stream.formatted.get("errors", [])})
            return
        try:
            async for result in stream:
                await self.send({"type": "next", "id": op_id, "payload": result.formatted})
            await self.send({"type": "complete", "id": op_id})
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()


async def graphql_ws(websocket: WebSocket) -> None:
    sim: SimState = websocket.app.state.sim
    if PROTOCOL not in websocket.scope.get("subprotocols", []):
        await websocket.close(code=4406, reason="Subprotocol not acceptable")
        return
    await websocket.accept(subprotocol=PROTOCOL)
    session = Session(websocket, sim)
    sim.sockets.add(session)
    try:
        await session.run()
    finally:
        sim.sockets.discard(session)
