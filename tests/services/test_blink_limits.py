"""Blink's invoice limits, enforced by the simulator as Blink does: tipsplit paces itself and never trips a block.

Each test runs the simulator with its limits on, a pool of POS accounts, and one service over real HTTP.
"""

import asyncio
import os
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.services.conftest import ALL_SCOPES, MERCHANT_SCOPES, WEBHOOK_SECRET, Account, _account, service_settings
from tipsplit.http.app import create_app
from tipsplit.serving import BackgroundServer
from tipsplit.settings import Settings
from tipsplit.sim.server import SimServer


@dataclass
class Till:
    """A simulator with its limits on, POS accounts, merchants, recipients, and one service instance."""

    sim_http: httpx.AsyncClient
    pos: list[Account]
    merchants: list[Account]
    recipients: list[Account]
    settings: Settings
    http: httpx.AsyncClient
    server: BackgroundServer

    async def sell(self, merchant: Account, base: int, tip: int = 0, recipient: Account | None = None) -> httpx.Response:
        body: dict[str, Any] = {"userWalletId": merchant.wallet_id, "apiKey": merchant.api_key, "baseAmount": base}
        if tip:
            assert recipient is not None
            body |= {"tipAmount": tip, "tipRecipients": [{"username": recipient.username, "share": 100}]}
        return await self.http.post("/api/blink/create-invoice", json=body)

    async def pay(self, payment_request: str) -> None:
        (await self.sim_http.post("/sim/pay", json={"paymentRequest": payment_request})).raise_for_status()

    async def status(self, payment_hash: str) -> dict[str, Any]:
        response = await self.http.get(f"/api/payment-status/{payment_hash}")
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]

    async def refused_by_blink(self) -> int:
        limits = (await self.sim_http.get("/sim/limits")).json()
        assert limits["enabled"]
        return sum(kind["refused"] for account in limits["accounts"] for kind in account["limits"].values())

    async def ledger(self) -> dict[str, Any]:
        return (await self.sim_http.get("/sim/ledger")).json()  # type: ignore[no-any-return]

    async def settled(self, hashes: Sequence[str], timeout: float) -> list[dict[str, Any]]:
        """Wait until every payment is completed; fail naming the ones that are not."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            statuses = await asyncio.gather(*(self.status(h) for h in hashes))
            if all(s["status"] == "completed" for s in statuses):
                return statuses
            if asyncio.get_running_loop().time() > deadline:
                open_ = Counter(s["status"] for s in statuses if s["status"] != "completed")
                raise AssertionError(f"not all completed in {timeout}s: {dict(open_)}")
            await asyncio.sleep(0.5)


@pytest.fixture()
async def till_factory(
    fresh_database_url: str, redis_url: str, key_prefix: str, tmp_path: Path
) -> AsyncIterator[Any]:
    started: list[tuple[BackgroundServer, httpx.AsyncClient]] = []

    async def start(sim: SimServer, sim_http: httpx.AsyncClient, pos_accounts: int, merchants: int,
                    recipients: int, **overrides: Any) -> Till:
        pos = [await _account(sim_http, f"pos_{n}", ALL_SCOPES) for n in range(pos_accounts)]
        shops = [await _account(sim_http, f"shop_{n}", MERCHANT_SCOPES) for n in range(merchants)]
        staff = [await _account(sim_http, f"staff_{n}", MERCHANT_SCOPES) for n in range(recipients)]
        pool = ",".join(f"{a.api_key}:{a.wallet_id}" for a in pos)
        settings = service_settings(
            sim, pos[0], fresh_database_url, redis_url, key_prefix, tmp_path,
            blinkpos_api_key=None, blinkpos_btc_wallet_id=None, blinkpos_accounts=pool, **overrides,
        )
        server = BackgroundServer(create_app(settings))
        await server.start()
        http = httpx.AsyncClient(base_url=server.url, timeout=60)
        started.append((server, http))
        hook = {"url": f"{server.url}/api/blink/webhook", "secret": WEBHOOK_SECRET}
        (await sim_http.post("/sim/webhooks", json=hook)).raise_for_status()
        return Till(sim_http, pos, shops, staff, settings, http, server)

    yield start
    for server, http in started:
        await http.aclose()
        await server.stop()


@pytest.fixture()
async def sim() -> AsyncIterator[tuple[SimServer, httpx.AsyncClient]]:
    async with SimServer(seed=int.from_bytes(os.urandom(2), "big"), rate_limits=True) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
            yield server, http


async def _limits(sim_http: httpx.AsyncClient, points: int, window: float, block: float) -> None:
    body = {"enabled": True, "points": points, "windowSeconds": window, "blockSeconds": block}
    (await sim_http.post("/sim/limits", json=body)).raise_for_status()


async def _sell_all(till: Till, orders: Sequence[tuple[Account, int, int, Account | None]]) -> list[httpx.Response]:
    gate = asyncio.Semaphore(16)

    async def one(order: tuple[Account, int, int, Account | None]) -> httpx.Response:
        async with gate:
            return await till.sell(*order)

    return await asyncio.gather(*(one(order) for order in orders))


async def test_a_busy_minute_on_one_pos_account_is_refused_at_once_never_blocked(sim: Any, till_factory: Any) -> None:
    """200 sales in a minute on one POS account: 57 are made, the rest answered 503 + Retry-After; Blink refuses none."""
    server, sim_http = sim
    till = await till_factory(server, sim_http, pos_accounts=1, merchants=4, recipients=4)
    orders = [(till.merchants[n % 4], 100 + n, 10, till.recipients[n % 4]) for n in range(200)]
    answers = await _sell_all(till, orders)

    made = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 503]
    assert len(made) + len(refused) == 200, Counter(a.status_code for a in answers)
    assert len(made) == 57
    for answer in refused:
        assert 1 <= int(answer.headers["retry-after"]) <= 60
        assert "budget" in answer.json()["error"] and answer.json()["retryAfter"] >= 1
    assert await till.refused_by_blink() == 0
    health = (await till.http.get("/api/health")).json()
    assert health["posAccounts"] == [
        {"account": "pos-1", "invoiceBudgetRemaining": 0, "invoicesInWindow": 57, "blockedSeconds": 0}
    ]

    for answer in made:
        await till.pay(answer.json()["paymentRequest"])
    await till.settled([a.json()["paymentHash"] for a in made], timeout=90)
    assert await till.refused_by_blink() == 0
    assert (await till.ledger())["violations"] == []


async def test_a_pool_of_pos_accounts_makes_and_settles_the_same_load(sim: Any, till_factory: Any) -> None:
    server, sim_http = sim
    till = await till_factory(server, sim_http, pos_accounts=4, merchants=4, recipients=4)
    orders = [(till.merchants[n % 4], 100 + n, 10, till.recipients[n % 4]) for n in range(200)]
    answers = await _sell_all(till, orders)
    assert [a.status_code for a in answers] == [200] * 200

    for answer in answers:
        await till.pay(answer.json()["paymentRequest"])
    await till.settled([a.json()["paymentHash"] for a in answers], timeout=180)
    assert await till.refused_by_blink() == 0

    ledger = await till.ledger()
    assert ledger["violations"] == []
    # Sales were spread over the accounts, and each payment's legs were paid from the account that received it.
    pos_wallets = {a.wallet_id for a in till.pos}
    received = Counter(p["recipientWalletId"] for p in ledger["payments"] if p["recipientWalletId"] in pos_wallets)
    assert set(received) == pos_wallets and all(count == 50 for count in received.values())
    sent = Counter(p["senderWalletId"] for p in ledger["payments"] if p["senderWalletId"] in pos_wallets)
    assert all(sent[wallet] == 2 * 50 for wallet in pos_wallets)
    balances = {w["walletId"]: w["balance"] for w in ledger["wallets"]}
    assert all(balances[wallet] == 0 for wallet in pos_wallets)


async def test_a_merchant_busier_than_its_leg_budget_gets_every_base_late_but_once(sim: Any, till_factory: Any) -> None:
    server, sim_http = sim
    # Blink's limits shrunk to seconds on both sides, so windows pass within the test.
    await _limits(sim_http, points=10, window=3, block=10)
    till = await till_factory(
        server, sim_http, pos_accounts=2, merchants=1, recipients=0,
        blink_invoice_limit_points=10, blink_invoice_limit_window_seconds=3, blink_invoice_limit_margin=2,
    )
    shop = till.merchants[0]
    answers = await _sell_all(till, [(shop, 200 + n, 0, None) for n in range(14)])
    assert [a.status_code for a in answers] == [200] * 14
    for answer in answers:
        await till.pay(answer.json()["paymentRequest"])
    hashes = [a.json()["paymentHash"] for a in answers]

    waiting = await _first_waiting_leg(till, hashes)
    assert waiting["waitingFor"] == "destination invoice budget" and waiting["attempts"] == 0

    statuses = await till.settled(hashes, timeout=60)
    assert await till.refused_by_blink() == 0
    events = Counter(e["type"] for s in statuses for e in s["events"])
    assert events["leg_waiting"] >= 14 - 8 and events["leg_failed"] == 0
    assert all(s["legs"][0]["attempts"] == 1 for s in statuses)
    ledger = await till.ledger()
    into_shop = [p for p in ledger["payments"] if p["recipientWalletId"] == shop.wallet_id]
    assert sorted(p["amount"] for p in into_shop) == [200 + n for n in range(14)]
    assert ledger["violations"] == []


async def test_a_block_caused_from_outside_is_waited_out_without_failed_legs(sim: Any, till_factory: Any) -> None:
    server, sim_http = sim
    await _limits(sim_http, points=5, window=60, block=4)
    till = await till_factory(server, sim_http, pos_accounts=1, merchants=1, recipients=0,
                              blink_invoice_limit_block_seconds=1)
    shop = till.merchants[0]
    # Another client spends the shop's on-behalf budget and trips Blink's block.
    for _ in range(6):
        await sim_http.post("/graphql", json={
            "query": "mutation m($input: LnInvoiceCreateOnBehalfOfRecipientInput!) {"
                     " lnInvoiceCreateOnBehalfOfRecipient(input: $input) { errors { code } invoice { paymentHash } } }",
            "variables": {"input": {"recipientWalletId": shop.wallet_id, "amount": 1}},
        })
    outside = await till.refused_by_blink()
    assert outside == 1

    answer = await till.sell(shop, 321)
    assert answer.status_code == 200, answer.text
    await till.pay(answer.json()["paymentRequest"])
    (status,) = await till.settled([answer.json()["paymentHash"]], timeout=30)

    events = [e["type"] for e in status["events"]]
    assert "leg_waiting" in events and "leg_failed" not in events
    assert status["legs"][0]["attempts"] == 1
    ledger = await till.ledger()
    assert [p["amount"] for p in ledger["payments"] if p["recipientWalletId"] == shop.wallet_id] == [321]


async def _first_waiting_leg(till: Till, hashes: Sequence[str]) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + 20
    while asyncio.get_running_loop().time() < deadline:
        for payment_hash in hashes:
            leg = (await till.status(payment_hash))["legs"][0]
            if leg["waitingFor"]:
                return leg  # type: ignore[no-any-return]
        await asyncio.sleep(0.1)
    raise AssertionError("no leg waited for its destination's budget")


async def test_an_instance_never_settles_a_payment_another_pos_account_received(sim: Any, till_factory: Any) -> None:
    """Deployments sharing a database each settle only their own POS accounts' payments, from those accounts."""
    server, sim_http = sim
    till = await till_factory(server, sim_http, pos_accounts=1, merchants=1, recipients=1)
    # Funded, so a settlement from the wrong account would succeed and show in the ledger.
    funded = await sim_http.post("/sim/accounts", json={"username": "other_pos", "balance": 100_000})
    funded.raise_for_status()
    other_pos = Account("other_pos", funded.json()["apiKey"], funded.json()["btcWalletId"])
    answer = await till.sell(till.merchants[0], 900, 90, till.recipients[0])
    assert answer.status_code == 200, answer.text
    ph = answer.json()["paymentHash"]
    # The instance holding the receiving account is away; only the other deployment sees the payment.
    await till.server.stop()
    await till.pay(answer.json()["paymentRequest"])
    other = BackgroundServer(create_app(till.settings.model_copy(
        update={"blinkpos_accounts": f"{other_pos.api_key}:{other_pos.wallet_id}"}
    )))
    own = BackgroundServer(create_app(till.settings))
    await other.start()
    try:
        async with httpx.AsyncClient(base_url=other.url, timeout=30) as other_http:
            asked = await other_http.post("/api/blink/forward-with-tips", json={"paymentHash": ph})
            await asyncio.sleep(2)  # several rounds of its poller and reconciler
            status = (await other_http.get(f"/api/payment-status/{ph}")).json()
        assert asked.status_code == 202, asked.text
        assert status["status"] == "pending", "another deployment's instance left the payment alone"
        await own.start()
        await till.http.aclose()
        till.http = httpx.AsyncClient(base_url=own.url, timeout=30)
        forwarded = await till.http.post("/api/blink/forward-with-tips", json={"paymentHash": ph})
        assert forwarded.status_code in (200, 202), forwarded.text
        (status,) = await till.settled([ph], timeout=30)
        await till.http.aclose()
    finally:
        await other.stop()
        await own.stop()

    assert [leg["status"] for leg in status["legs"]] == ["succeeded", "succeeded"]
    ledger = await till.ledger()
    senders = Counter(p["senderWalletId"] for p in ledger["payments"] if p["senderWalletId"])
    assert senders == {till.pos[0].wallet_id: 2}, "legs are paid from the POS account that received the sale"
