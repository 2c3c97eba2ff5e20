"""A simulator on a real socket for the whole session, and thin helpers that speak to it over HTTP."""

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from graphql import parse, validate

from tests.sim.documents import LN_INVOICE_CREATE_ON_BEHALF, LN_INVOICE_PAYMENT_SEND
from tipsplit.blink.schema import blink_schema
from tipsplit.sim.server import SimServer

_names = itertools.count(1)


@dataclass(frozen=True)
class Account:
    account_id: str
    username: str
    api_key: str
    btc_wallet_id: str
    usd_wallet_id: str


class Sim:
    """One test's handle on the shared simulator: GraphQL calls and /sim/ control calls."""

    def __init__(self, server: SimServer, http: httpx.AsyncClient) -> None:
        self.server = server
        self.http = http

    async def gql(self, query: str, variables: dict[str, Any] | None = None, key: str | None = None) -> httpx.Response:
        """POST a document, after checking it validates against the Blink schema as a real client's would."""
        assert validate(blink_schema(), parse(query)) == []
        headers = {"X-API-KEY": key} if key else {}
        return await self.http.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)

    async def data(self, query: str, variables: dict[str, Any] | None = None, key: str | None = None) -> Any:
        response = await self.gql(query, variables, key)
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    async def account(self, balance: int = 0, scopes: list[str] | None = None, prefix: str = "user") -> Account:
        body: dict[str, Any] = {"username": f"{prefix}_{next(_names)}", "balance": balance}
        if scopes is not None:
            body["scopes"] = scopes
        response = await self.http.post("/sim/accounts", json=body)
        assert response.status_code == 201, response.text
        r = response.json()
        return Account(r["accountId"], r["username"], r["apiKey"], r["btcWalletId"], r["usdWalletId"])

    async def invoice(self, wallet_id: str, amount: int, memo: str | None = None, expires_in: int | None = None) -> dict[str, Any]:
        fields: dict[str, Any] = {"recipientWalletId": wallet_id, "amount": amount, "memo": memo}
        if expires_in is not None:
            fields["expiresIn"] = expires_in
        data = await self.data(LN_INVOICE_CREATE_ON_BEHALF, {"input": fields})
        payload = data["lnInvoiceCreateOnBehalfOfRecipient"]
        assert payload["errors"] == []
        invoice: dict[str, Any] = payload["invoice"]
        return invoice

    async def send(self, account: Account, payment_request: str) -> dict[str, Any]:
        data = await self.data(
            LN_INVOICE_PAYMENT_SEND,
            {"input": {"walletId": account.btc_wallet_id, "paymentRequest": payment_request}},
            account.api_key,
        )
        result: dict[str, Any] = data["lnInvoicePaymentSend"]
        return result

    async def balance(self, wallet_id: str) -> int:
        return int((await self.http.get(f"/sim/wallets/{wallet_id}")).json()["balance"])

    async def ledger(self) -> dict[str, Any]:
        result: dict[str, Any] = (await self.http.get("/sim/ledger")).json()
        return result


@pytest.fixture(scope="session")
async def server() -> AsyncIterator[SimServer]:
    async with SimServer(seed=0) as running:
        yield running


@pytest.fixture
async def sim(server: SimServer) -> AsyncIterator[Sim]:
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        yield Sim(server, http)
        await http.delete("/sim/faults")
        await http.delete("/sim/webhooks")
        assert server.ledger.audit() == []
