"""Blink's `myUpdates` subscription over graphql-transport-ws, as an endless stream of LnUpdate.

The listener only makes payments visible sooner; it is not the proof of
payment (that is a status query) and it cannot replay what happened while it
was disconnected (that is what polling is for). So it reconnects forever with
a capped exponential backoff, and gives up only when Blink refuses the key or
the document.
"""

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from tipsplit.blink.documents import document
from tipsplit.blink.errors import AUTH_CODES, BlinkApiError, BlinkAuthError, BlinkError, BlinkGraphQLError
from tipsplit.blink.types import ApiErrorItem, InvoiceStatus, LnUpdate

log = logging.getLogger(__name__)

OPERATION = "myUpdates"
SUBPROTOCOL = Subprotocol("graphql-transport-ws")
SUBSCRIPTION_ID = "1"
# graphql-transport-ws close codes meaning "your credentials are refused".
AUTH_CLOSE_CODES = frozenset({4401, 4403})


@dataclass(frozen=True)
class Backoff:
    """Delay before reconnecting: doubles per consecutive failure up to a cap, with jitter."""

    first_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, failures: int) -> float:
        ceiling = min(self.max_delay, self.first_delay * 2**failures)
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def websocket_url(url: str) -> str:
    """The websocket URL for a GraphQL URL; ws:// and wss:// URLs pass through.

    Blink serves subscriptions on ws.<domain> beside api.<domain>
    (https://api.blink.sv/graphql → wss://ws.blink.sv/graphql); other hosts,
    like the simulator, serve both on the same address.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("http", "https"):
        return url
    if rest.startswith("api."):
        rest = "ws." + rest.removeprefix("api.")
    return ("wss" if scheme == "https" else "ws") + "://" + rest


class MyUpdates:
    """Iterate `async for update in MyUpdates(url, key)`; stop with `aclose()` or by leaving the loop.

    `live` is set once the current subscription has delivered its first
    message (the simulator leads with the current price; otherwise it is the
    first event) and cleared when the socket drops; `connections` counts the connections Blink has
    accepted, so callers can tell that a reconnect happened.
    """

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        backoff: Backoff = Backoff(),
        open_timeout: float = 10.0,
        ping_interval: float = 20.0,
    ) -> None:
        self.url = websocket_url(url)
        self._api_key = api_key
        self._backoff = backoff
        self._open_timeout = open_timeout
        self._ping_interval = ping_interval
        self._stopping = asyncio.Event()
        self._ws: ClientConnection | None = None
        self.live = asyncio.Event()
        self.connections = 0

    def __repr__(self) -> str:
        return f"MyUpdates(url={self.url!r})"

    def __aiter__(self) -> AsyncIterator[LnUpdate]:
        """Start listening; one listener serves one iteration at a time."""
        return self._updates()

    async def aclose(self) -> None:
        """Stop listening: the iteration ends after the socket is closed."""
        self._stopping.set()
        if self._ws is not None:
            await self._ws.close()

    async def _updates(self) -> AsyncIterator[LnUpdate]:
        failures = 0
        while not self._stopping.is_set():
            try:
                async with connect(
                    self.url,
                    subprotocols=[SUBPROTOCOL],
                    open_timeout=self._open_timeout,
                    ping_interval=self._ping_interval,
                    ping_timeout=self._ping_interval,
                ) as ws:
                    self._ws = ws
                    await self._subscribe(ws)
                    failures = 0
                    self.connections += 1
                    async for update in self._receive(ws):
                        yield update
            except InvalidStatus as exc:
                if exc.response.status_code in (401, 403):
                    raise BlinkAuthError(OPERATION, f"websocket refused (HTTP {exc.response.status_code})") from exc
                log.warning("Blink myUpdates handshake refused: HTTP %s", exc.response.status_code)
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else None
                if code in AUTH_CLOSE_CODES:
                    raise BlinkAuthError(OPERATION, f"subscription refused (close code {code})") from exc
                if not self._stopping.is_set():
                    log.warning("Blink myUpdates connection closed (code %s)", code)
            except (OSError, TimeoutError, InvalidHandshake, ValueError) as exc:
                log.warning("Blink myUpdates connection failed: %s", type(exc).__name__)
            finally:
                self._ws = None
                self.live.clear()
            delay = self._backoff.delay(failures)
            failures += 1
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)
            except TimeoutError:
                pass

    async def _subscribe(self, ws: ClientConnection) -> None:
        await _send(ws, {"type": "connection_init", "payload": {"X-API-KEY": self._api_key}})
        async with asyncio.timeout(self._open_timeout):
            while True:
                message = json.loads(await ws.recv())
                if message.get("type") == "connection_ack":
                    break
                if message.get("type") == "ping":
                    await _send(ws, {"type": "pong"})
        await _send(
            ws,
            {
                "id": SUBSCRIPTION_ID,
                "type": "subscribe",
                "payload": {"query": document(OPERATION), "operationName": OPERATION, "variables": {}},
            },
        )

    async def _receive(self, ws: ClientConnection) -> AsyncIterator[LnUpdate]:
        async for raw in ws:
            message = json.loads(raw)
            kind = message.get("type")
            if kind == "ping":
                await _send(ws, {"type": "pong"})
            elif kind == "next":
                self.live.set()
                try:
                    update = parse_event(message.get("payload") or {})
                except (BlinkApiError, BlinkGraphQLError) as exc:
                    log.warning("Blink myUpdates event with errors skipped: %s", exc)
                    continue
                except (KeyError, TypeError, ValueError) as exc:
                    log.warning("Blink myUpdates event of unexpected shape skipped: %s", type(exc).__name__)
                    continue
                if update is not None:
                    yield update
            elif kind == "error":
                # The subscription itself was refused (bad document or key): retrying cannot help.
                raise _subscription_error(message.get("payload") or [])
            elif kind == "complete":
                log.warning("Blink ended the myUpdates subscription; resubscribing")
                return


async def _send(ws: ClientConnection, message: Mapping[str, Any]) -> None:
    await ws.send(json.dumps(message))


def _subscription_error(errors: list[Mapping[str, Any]]) -> BlinkError:
    error = BlinkGraphQLError(OPERATION, errors)
    if AUTH_CODES & set(error.codes):
        return BlinkAuthError(OPERATION, error.detail)
    return error


def parse_event(payload: Mapping[str, Any]) -> LnUpdate | None:
    """The LnUpdate in one `next` payload, or None for events about no invoice of ours (prices, sends).

    Raises BlinkAuthError when the key is refused; BlinkApiError or
    BlinkGraphQLError for other errors, which the listener logs and skips.
    """
    if payload.get("errors"):
        raise _subscription_error(payload["errors"])
    result = (payload.get("data") or {}).get(OPERATION) or {}
    if result.get("errors"):
        errors = [ApiErrorItem.from_json(e) for e in result["errors"]]
        if AUTH_CODES & {e.code for e in errors}:
            raise BlinkAuthError(OPERATION, "; ".join(str(e) for e in errors))
        raise BlinkApiError(OPERATION, errors)
    update = result.get("update") or {}
    kind = update.get("__typename")
    if kind == "LnUpdate":
        return LnUpdate(
            wallet_id=update["walletId"], payment_hash=update["paymentHash"], status=InvoiceStatus(update["status"])
        )
    if kind == "IntraLedgerUpdate":
        # An invoice paid from inside Blink may arrive as an intraledger receipt initiated via Lightning.
        transaction = update["transaction"]
        via = transaction.get("initiationVia") or {}
        status = {"SUCCESS": InvoiceStatus.PAID, "PENDING": InvoiceStatus.PENDING}.get(transaction["status"])
        if transaction["direction"] == "RECEIVE" and via.get("__typename") == "InitiationViaLn" and status:
            return LnUpdate(wallet_id=update["walletId"], payment_hash=via["paymentHash"], status=status)
    return None
