"""Blink-style webhooks: a `receive.lightning` event per settled invoice, Svix-signed, retried until 2xx.

Endpoints are registered through the control API, either for one account or for
every account (no accountId). Each event keeps one `svix-id` across retries so a
receiver can deduplicate, and is re-signed with a fresh timestamp per attempt,
as Svix does. The payload follows the example in Blink's webhook documentation
(dev.blink.sv/api/webhooks).
"""

import asyncio
import hashlib
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

from tipsplit.blink.webhook import signed_headers
from tipsplit.sim.ledger import Direction, Ledger, LedgerEvent, Settlement
from tipsplit.sim.prices import PriceBook

ATTEMPT_TIMEOUT_SECONDS = 5.0
# A delivery per settled invoice: with httpx (httpcore polls every pooled socket on each request) this
# client was an eighth of the simulator's CPU per payment; aiohttp costs a fraction of that.
ATTEMPT_TIMEOUT = aiohttp.ClientTimeout(total=ATTEMPT_TIMEOUT_SECONDS)
RECEIVER_KEEP_ALIVE_SECONDS = 5


@dataclass
class WebhookEndpoint:
    id: str
    url: str
    secret: str
    account_id: str | None = None
    max_attempts: int = 8
    backoff_ms: int = 200


@dataclass
class Attempt:
    at: float
    status_code: int | None
    error: str | None


@dataclass
class Delivery:
    msg_id: str
    endpoint_id: str
    event_type: str
    body: bytes
    attempts: list[Attempt] = field(default_factory=list)
    delivered: bool = False
    gave_up: bool = False


def iso_time(timestamp: float) -> str:
    """Blink's webhook timestamps: ISO 8601 in UTC with milliseconds and a Z."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(timestamp * 1000) % 1000:03d}Z"


class WebhookDispatcher:
    """Turns ledger receive events into signed HTTP deliveries running as background tasks."""

    def __init__(self, ledger: Ledger, prices: PriceBook, seed: int = 0) -> None:
        self._ledger = ledger
        self._prices = prices
        self._rng = random.Random(f"webhooks:{seed}")
        self._node_pubkey = "02" + hashlib.sha256(f"sim-node:{seed}".encode()).hexdigest()
        self._endpoints: dict[str, WebhookEndpoint] = {}
        self._deliveries: list[Delivery] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: aiohttp.ClientSession | None = None

    def add_endpoint(self, endpoint: WebhookEndpoint) -> WebhookEndpoint:
        """Register an endpoint; the secret must be `whsec_<base64>` so signing cannot fail later."""
        if not endpoint.secret.startswith("whsec_"):
            raise ValueError("secret must look like whsec_<base64>")
        signed_headers(endpoint.secret, "msg_check", b"")
        if endpoint.account_id is not None:
            self._ledger.account(endpoint.account_id)
        if not 1 <= endpoint.max_attempts <= 20 or endpoint.backoff_ms < 0:
            raise ValueError("maxAttempts must be 1..20 and backoffMs non-negative")
        self._endpoints[endpoint.id] = endpoint
        return endpoint

    def new_endpoint_id(self) -> str:
        return "ep_" + self._rng.randbytes(12).hex()

    def clear(self) -> int:
        count = len(self._endpoints)
        self._endpoints.clear()
        return count

    def endpoints(self) -> list[WebhookEndpoint]:
        return list(self._endpoints.values())

    def deliveries(self) -> list[Delivery]:
        return list(self._deliveries)

    def on_event(self, event: LedgerEvent) -> None:
        """Ledger listener: queue a delivery per matching endpoint for each completed receive."""
        if event.transaction.direction is not Direction.RECEIVE or event.invoice is None:
            return
        body = b""  # built for the first endpoint that wants the event: most receives have none
        for endpoint in self._endpoints.values():
            if endpoint.account_id not in (None, event.account_id):
                continue
            body = body or json.dumps(self.payload(event), separators=(",", ":")).encode()
            delivery = Delivery(
                msg_id="msg_" + self._rng.randbytes(12).hex(), endpoint_id=endpoint.id,
                event_type="receive.lightning", body=body,
            )
            self._deliveries.append(delivery)
            task = asyncio.get_running_loop().create_task(self._deliver(endpoint, delivery))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def payload(self, event: LedgerEvent) -> dict[str, Any]:
        tx = event.transaction
        account = self._ledger.account(event.account_id)
        display = account.display_currency
        unit = tx.currency.value
        price = self._prices.sat_price(display) if unit == "BTC" else self._prices.usd_cent_price(display)
        return {
            "accountId": event.account_id,
            "eventType": "receive.lightning",
            "walletId": event.wallet_id,
            "transaction": {
                "createdAt": iso_time(tx.created_at),
                "id": tx.id,
                "initiationVia": {"paymentHash": tx.payment_hash, "pubkey": self._node_pubkey, "type": "lightning"},
                "memo": tx.memo,
                "settlementAmount": tx.signed_amount,
                "settlementCurrency": unit,
                "settlementDisplayAmount": self._prices.to_display(tx.amount, unit, display),
                "settlementDisplayFee": self._prices.to_display(0, unit, display),
                "settlementDisplayPrice": {
                    "base": str(price.base), "displayCurrency": display,
                    "offset": str(price.offset), "walletCurrency": unit,
                },
                "settlementFee": 0,
                "settlementVia": {"type": "intraledger" if tx.settlement is Settlement.INTRALEDGER else "lightning"},
                "status": "success",
                "walletId": event.wallet_id,
            },
        }

    async def _deliver(self, endpoint: WebhookEndpoint, delivery: Delivery) -> None:
        if self._client is None:
            # Idle connections are dropped before a receiver's keep-alive ends (uvicorn's default is 5 s), so a
            # delivery is not spent on a connection the receiver has just closed.
            connector = aiohttp.TCPConnector(keepalive_timeout=RECEIVER_KEEP_ALIVE_SECONDS - 1)
            self._client = aiohttp.ClientSession(connector=connector, timeout=ATTEMPT_TIMEOUT)
        for attempt in range(endpoint.max_attempts):
            if attempt:
                await asyncio.sleep(endpoint.backoff_ms * 2 ** (attempt - 1) / 1000)
            headers = signed_headers(endpoint.secret, delivery.msg_id, delivery.body)
            headers["content-type"] = "application/json"
            try:
                async with self._client.post(endpoint.url, data=delivery.body, headers=headers) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                delivery.attempts.append(Attempt(self._ledger.now(), None, f"{type(exc).__name__}: {exc}"))
                continue
            delivery.attempts.append(Attempt(self._ledger.now(), status, None))
            if 200 <= status < 300:
                delivery.delivered = True
                return
        delivery.gave_up = True

    async def aclose(self) -> None:
        """Stop redelivering and release the HTTP client (on server shutdown)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.close()
            self._client = None
