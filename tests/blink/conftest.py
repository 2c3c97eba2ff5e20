"""A real Blink simulator over HTTP for the client tests, and helpers to drive it through /sim/."""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tipsplit.blink.client import BlinkClient
from tipsplit.sim.server import SimServer


@dataclass(frozen=True)
class SimAccount:
    username: str
    api_key: str
    btc_wallet_id: str
    usd_wallet_id: str


class SimControl:
    """The simulator's /sim/ control API, used to set the scene and to look behind the client's back."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def _call(self, method: str, path: str, json: Any = None) -> Any:
        response = await self.http.request(method, path, json=json)
        response.raise_for_status()
        return response.json() if response.content else None

    async def create_account(
        self, balance: int = 0, username: str | None = None, scopes: list[str] | None = None,
        default_currency: str = "BTC",
    ) -> SimAccount:
        name = username or f"u{uuid.uuid4().hex[:12]}"
        request: dict[str, Any] = {"username": name, "balance": balance, "defaultWalletCurrency": default_currency}
        if scopes is not None:
            request["scopes"] = scopes
        body = await self._call("POST", "/sim/accounts", request)
        return SimAccount(body["username"], body["apiKey"], body["btcWalletId"], body["usdWalletId"])

    async def pay(self, payment_request: str) -> Any:
        return await self._call("POST", "/sim/pay", {"paymentRequest": payment_request})

    async def balance(self, wallet_id: str) -> int:
        return int((await self._call("GET", f"/sim/wallets/{wallet_id}"))["balance"])

    async def ledger(self) -> Any:
        return await self._call("GET", "/sim/ledger")

    async def add_fault(self, **rule: Any) -> Any:
        return await self._call("POST", "/sim/faults", rule)

    async def faults(self) -> list[Any]:
        return list((await self._call("GET", "/sim/faults"))["faults"])

    async def clear_faults(self) -> None:
        await self._call("DELETE", "/sim/faults")

    async def advance_clock(self, seconds: float) -> None:
        await self._call("POST", "/sim/clock", {"advanceSeconds": seconds})

    async def drop_subscriptions(self) -> int:
        return int((await self._call("POST", "/sim/subscriptions/drop"))["dropped"])


@pytest.fixture(scope="session")
async def sim() -> AsyncIterator[SimServer]:
    async with SimServer(host="127.0.0.1", port=0, seed=0) as server:
        yield server


@pytest.fixture(scope="session")
def sim_url(sim: SimServer) -> str:
    """The GraphQL endpoint, for tests that need a client with their own timeout or retry policy."""
    return sim.graphql_url


@pytest.fixture(scope="session")
async def control(sim: SimServer) -> AsyncIterator[SimControl]:
    async with httpx.AsyncClient(base_url=sim.url, timeout=10) as http:
        yield SimControl(http)


@pytest.fixture()
async def faults(control: SimControl) -> AsyncIterator[SimControl]:
    """The control API, with every fault removed after the test so no test leaks into another."""
    yield control
    await control.clear_faults()


@pytest.fixture(scope="session")
async def blink(sim: SimServer) -> AsyncIterator[BlinkClient]:
    """A keyless client whose pool every test shares through `with_api_key`."""
    async with BlinkClient(sim.graphql_url, None) as client:
        yield client


NewAccount = Callable[..., Awaitable[SimAccount]]


@pytest.fixture()
def new_account(control: SimControl) -> NewAccount:
    return control.create_account
