"""The myUpdates listener against the simulator's graphql-transport-ws endpoint."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from tests.blink.conftest import NewAccount, SimAccount, SimControl
from tipsplit.blink.client import BlinkClient
from tipsplit.blink.errors import BlinkAuthError
from tipsplit.blink.types import InvoiceStatus, LnUpdate
from tipsplit.blink.updates import Backoff, MyUpdates, parse_event, websocket_url
from tipsplit.sim.server import SimServer

QUICK = Backoff(first_delay=0.05, max_delay=0.2)


class Collector:
    """Runs a listener in a task and collects what it yields, so a test can wait for the n-th update."""

    def __init__(self, updates: MyUpdates) -> None:
        self.updates = updates
        self.received: list[LnUpdate] = []
        self._arrived = asyncio.Condition()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for update in self.updates:
            async with self._arrived:
                self.received.append(update)
                self._arrived.notify_all()

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[LnUpdate]:
        async with asyncio.timeout(timeout):
            async with self._arrived:
                await self._arrived.wait_for(lambda: len(self.received) >= count)
        return self.received[:count]

    async def live(self, timeout: float = 5.0) -> None:
        await asyncio.wait_for(self.updates.live.wait(), timeout)

    async def stop(self) -> None:
        await self.updates.aclose()
        await asyncio.wait_for(self.task, 5.0)


Listen = Callable[[str, str], Awaitable["Collector"]]


@pytest.fixture()
async def listen() -> AsyncIterator[Listen]:
    """Start listeners that are live before the test acts, and stop them all afterwards."""
    started: list[Collector] = []

    async def start(url: str, api_key: str) -> Collector:
        collector = Collector(MyUpdates(url, api_key, backoff=QUICK))
        started.append(collector)
        await collector.live()
        return collector

    yield start
    for collector in started:
        if not collector.task.done():
            await collector.stop()


async def _paid_invoices(client: BlinkClient, control: SimControl, pos: SimAccount, count: int) -> list[str]:
    hashes = []
    for n in range(count):
        invoice = await client.create_invoice(pos.btc_wallet_id, 100 + n, f"order {n}")
        await control.pay(invoice.payment_request)
        hashes.append(invoice.payment_hash)
    return hashes


async def test_updates_arrive_in_order(
    sim: SimServer, blink: BlinkClient, new_account: NewAccount, control: SimControl, listen: Listen
) -> None:
    pos = await new_account()
    collector = await listen(sim.graphql_url, pos.api_key)

    hashes = await _paid_invoices(blink.with_api_key(pos.api_key), control, pos, 3)

    updates = await collector.wait_for(3)
    assert [u.payment_hash for u in updates] == hashes
    assert {(u.wallet_id, u.status) for u in updates} == {(pos.btc_wallet_id, InvoiceStatus.PAID)}


async def test_only_receipts_on_own_wallets_are_reported(
    sim: SimServer, blink: BlinkClient, new_account: NewAccount, control: SimControl, listen: Listen
) -> None:
    """The POS paying a merchant leg is a send, not an invoice of ours: the merchant's listener sees it."""
    pos, merchant = await new_account(balance=1_000), await new_account()
    pos_updates = await listen(sim.graphql_url, pos.api_key)
    merchant_updates = await listen(sim.graphql_url, merchant.api_key)
    client = blink.with_api_key(pos.api_key)
    leg = await client.create_invoice_on_behalf_of_recipient(merchant.btc_wallet_id, 300)
    await client.pay_invoice(pos.btc_wallet_id, leg.payment_request)
    (marker,) = await _paid_invoices(client, control, pos, 1)

    assert [u.payment_hash for u in await merchant_updates.wait_for(1)] == [leg.payment_hash]
    assert [u.payment_hash for u in await pos_updates.wait_for(1)] == [marker]


async def test_resumes_after_the_server_drops_the_socket(
    sim: SimServer, blink: BlinkClient, new_account: NewAccount, control: SimControl, listen: Listen
) -> None:
    pos = await new_account()
    collector = await listen(sim.graphql_url, pos.api_key)
    client = blink.with_api_key(pos.api_key)
    first = await _paid_invoices(client, control, pos, 1)
    await collector.wait_for(1)

    assert await control.drop_subscriptions() >= 1
    await _wait_until(lambda: collector.updates.connections == 2 and collector.updates.live.is_set())

    second = await _paid_invoices(client, control, pos, 2)
    assert [u.payment_hash for u in await collector.wait_for(3)] == first + second


async def test_resumes_after_the_server_restarts_on_the_same_port(listen: Listen) -> None:
    """A restarted simulator with the same seed gives the same account the same key and wallets."""
    async with SimServer(port=0, seed=42) as sim:
        pos = _restart_pos(sim)
        collector = await listen(sim.graphql_url, pos.api_key)
        before = await _pay_new_invoice(sim, pos, 10)
        await collector.wait_for(1)

    restarted = SimServer(port=sim.port, seed=42)
    assert _restart_pos(restarted) == pos  # registered before serving, so no reconnect meets an unknown key
    async with restarted:
        await _wait_until(lambda: collector.updates.connections == 2 and collector.updates.live.is_set())
        after = await _pay_new_invoice(restarted, pos, 77)
        assert [u.payment_hash for u in await collector.wait_for(2)] == [before, after]


def _restart_pos(sim: SimServer) -> SimAccount:
    account, key = sim.ledger.create_account("restart_pos", 0)
    return SimAccount(account.username, key.key, account.btc_wallet_id, account.usd_wallet_id)


async def _pay_new_invoice(sim: SimServer, pos: SimAccount, sats: int) -> str:
    async with BlinkClient(sim.graphql_url, pos.api_key) as client, httpx.AsyncClient(base_url=sim.url) as http:
        invoice = await client.create_invoice(pos.btc_wallet_id, sats)
        await SimControl(http).pay(invoice.payment_request)
    return invoice.payment_hash


async def test_a_refused_key_ends_the_listener_with_an_auth_error(sim: SimServer) -> None:
    updates = MyUpdates(sim.graphql_url, "blink_not_a_key", backoff=QUICK)
    with pytest.raises(BlinkAuthError, match="myUpdates"):
        async for _ in updates:
            pass


async def test_aclose_stops_a_listener_waiting_to_reconnect() -> None:
    updates = MyUpdates("http://127.0.0.1:9/graphql", "blink_x", backoff=Backoff(first_delay=10, max_delay=10))
    collector = Collector(updates)
    await asyncio.sleep(0.1)
    await collector.stop()
    assert collector.received == []


def test_websocket_url_follows_blinks_hosts_and_the_http_scheme() -> None:
    assert websocket_url("https://api.blink.sv/graphql") == "wss://ws.blink.sv/graphql"
    assert websocket_url("https://api.staging.blink.sv/graphql") == "wss://ws.staging.blink.sv/graphql"
    assert websocket_url("http://127.0.0.1:8100/graphql") == "ws://127.0.0.1:8100/graphql"
    assert websocket_url("wss://ws.blink.sv/graphql") == "wss://ws.blink.sv/graphql"


def test_intraledger_receipt_via_lightning_counts_as_a_paid_invoice() -> None:
    payload = {"data": {"myUpdates": {"errors": [], "update": {
        "__typename": "IntraLedgerUpdate", "walletId": "w1", "txNotificationType": "IntraLedgerReceipt",
        "transaction": {"id": "t", "direction": "RECEIVE", "status": "SUCCESS",
                        "initiationVia": {"__typename": "InitiationViaLn", "paymentHash": "ab" * 32}},
    }}}}
    assert parse_event(payload) == LnUpdate("w1", "ab" * 32, InvoiceStatus.PAID)


def test_sends_and_prices_are_not_invoice_updates() -> None:
    send = {"__typename": "IntraLedgerUpdate", "walletId": "w1", "txNotificationType": "IntraLedgerPayment",
            "transaction": {"id": "t", "direction": "SEND", "status": "SUCCESS",
                            "initiationVia": {"__typename": "InitiationViaLn", "paymentHash": "ab" * 32}}}
    price = {"__typename": "RealtimePrice"}
    for update in (send, price):
        assert parse_event({"data": {"myUpdates": {"errors": [], "update": update}}}) is None


async def _wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)
