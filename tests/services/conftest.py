"""A service instance over real HTTP, against the simulator over HTTP, on real PostgreSQL and Redis."""

import asyncio
import base64
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tipsplit.http.app import create_app
from tipsplit.serving import BackgroundServer
from tipsplit.settings import Settings
from tipsplit.sim.server import SimServer

WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"tipsplit-test-webhook-secret-32b").decode()
ENCRYPTION_KEYS = "t1:" + base64.b64encode(bytes(range(32))).decode()
ALL_SCOPES = ("READ", "RECEIVE", "WRITE")
# tipsplit refuses merchant keys that can spend; a merchant signs in with a READ-only key.
MERCHANT_SCOPES = ("READ",)
OPERATOR_TOKEN = "service-test-operator-token"


@dataclass(frozen=True)
class Account:
    username: str
    api_key: str
    wallet_id: str


@dataclass
class World:
    """One simulator, its accounts, and the service instances that talk to it."""

    sim: SimServer
    sim_http: httpx.AsyncClient
    pos: Account
    merchant: Account
    recipients: dict[str, Account]
    settings: Settings
    services: list[BackgroundServer] = field(default_factory=list)

    @property
    def service(self) -> BackgroundServer:
        return self.services[0]

    def http(self, index: int = 0) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.services[index].url, timeout=30)

    async def balance(self, account: Account) -> int:
        response = await self.sim_http.get(f"/sim/wallets/{account.wallet_id}")
        response.raise_for_status()
        return int(response.json()["balance"])

    async def pay(self, payment_request: str) -> httpx.Response:
        return await self.sim_http.post("/sim/pay", json={"paymentRequest": payment_request})

    async def ledger(self) -> dict[str, Any]:
        response = await self.sim_http.get("/sim/ledger")
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]

    async def operations(self) -> dict[str, int]:
        """How often each GraphQL root field reached the simulator since the last `clear_operations`."""
        response = await self.sim_http.get("/sim/operations")
        response.raise_for_status()
        return response.json()["operations"]  # type: ignore[no-any-return]

    async def clear_operations(self) -> None:
        (await self.sim_http.delete("/sim/operations")).raise_for_status()

    @property
    def operator(self) -> dict[str, str]:
        """The operator's Bearer header (statistics, metrics, docs and the dashboard are theirs)."""
        return {"authorization": f"Bearer {self.settings.operator_token}"}

    async def metrics(self, client: httpx.AsyncClient) -> str:
        response = await client.get("/metrics", headers=self.operator)
        assert response.status_code == 200, response.text
        return response.text

    async def fault(self, **rule: Any) -> None:
        response = await self.sim_http.post("/sim/faults", json=rule)
        assert response.status_code < 300, response.text

    async def create_invoice(self, client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
        payload = {"userWalletId": self.merchant.wallet_id, "apiKey": self.merchant.api_key, **body}
        response = await client.post("/api/blink/create-invoice", json=payload)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    async def status(self, client: httpx.AsyncClient, payment_hash: str) -> dict[str, Any]:
        response = await client.get(f"/api/payment-status/{payment_hash}")
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    async def wait_for_status(
        self, client: httpx.AsyncClient, payment_hash: str, wanted: set[str], timeout: float = 30
    ) -> dict[str, Any]:
        return await eventually(lambda: self.status(client, payment_hash), lambda s: s["status"] in wanted, timeout)


async def eventually(
    fetch: Callable[[], Awaitable[Any]], done: Callable[[Any], bool], timeout: float = 30, every: float = 0.1
) -> Any:
    """Poll until `done(value)`; fail with the last value seen."""
    deadline = asyncio.get_running_loop().time() + timeout
    value = await fetch()
    while not done(value):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not reached in {timeout}s; last value: {value!r}")
        await asyncio.sleep(every)
        value = await fetch()
    return value


async def _account(http: httpx.AsyncClient, username: str, scopes: tuple[str, ...] = ALL_SCOPES) -> Account:
    response = await http.post("/sim/accounts", json={"username": username, "balance": 0, "scopes": list(scopes)})
    response.raise_for_status()
    body = response.json()
    return Account(body["username"], body["apiKey"], body["btcWalletId"])


def service_settings(world_sim: SimServer, pos: Account, database_url: str, redis_url: str, prefix: str,
                     data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        database_url=database_url,
        redis_url=redis_url,
        redis_key_prefix=prefix,
        blink_api_url=world_sim.graphql_url,
        blinkpos_api_key=pos.api_key,
        blinkpos_btc_wallet_id=pos.wallet_id,
        blink_webhook_secret=WEBHOOK_SECRET,
        encryption_keys=ENCRYPTION_KEYS,
        data_dir=data_dir,
        poll_interval_seconds=0.5,
        reconcile_interval_seconds=0.3,
        claim_lease_seconds=5,
        leg_retry_base_seconds=0.2,
        max_leg_attempts=4,
        rate_limit_per_wallet=10_000,
        rate_limit_per_ip=10_000,
        forward_rate_limit_per_ip=10_000,
        tip_store_file=data_dir / "tip-store.json",
        operator_token=OPERATOR_TOKEN,
    )
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture()
async def world(
    request: pytest.FixtureRequest, fresh_database_url: str, redis_url: str, key_prefix: str, tmp_path: Path
) -> AsyncIterator[World]:
    """The simulator with a POS account, a merchant and three recipients, and N service instances.

    `@pytest.mark.instances(n)` asks for n instances sharing PostgreSQL and Redis;
    `@pytest.mark.settings(**overrides)` changes their settings.
    """
    marker = request.node.get_closest_marker("instances")
    instances = marker.args[0] if marker else 1
    overrides_marker = request.node.get_closest_marker("settings")
    overrides = overrides_marker.kwargs if overrides_marker else {}
    # Blink's invoice limits are on, as on Blink: the service paces its own invoice creations.
    async with SimServer(seed=int.from_bytes(os.urandom(2), "big"), rate_limits=True) as sim:
        async with httpx.AsyncClient(base_url=sim.url, timeout=30) as sim_http:
            pos = await _account(sim_http, "blinkpos")
            merchant = await _account(sim_http, "merchant", MERCHANT_SCOPES)
            recipients = {name: await _account(sim_http, name) for name in ("alice", "bob", "carol")}
            settings = service_settings(sim, pos, fresh_database_url, redis_url, key_prefix, tmp_path, **overrides)
            world = World(sim, sim_http, pos, merchant, recipients, settings)
            try:
                for _ in range(instances):
                    server = BackgroundServer(create_app(settings))
                    await server.start()
                    world.services.append(server)
                for server in world.services:
                    response = await sim_http.post(
                        "/sim/webhooks", json={"url": f"{server.url}/api/blink/webhook", "secret": WEBHOOK_SECRET}
                    )
                    response.raise_for_status()
                yield world
            finally:
                for server in world.services:
                    await server.stop()
