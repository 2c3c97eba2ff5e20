"""myUpdates and payment-status subscriptions over graphql-transport-ws, with the `websockets` client."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from graphql import parse, validate
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.sim import documents as doc
from tests.sim.conftest import Sim
from tipsplit.blink.schema import blink_schema

TIMEOUT = 5


@asynccontextmanager
async def session(sim: Sim, payload: dict[str, Any] | None = None) -> AsyncIterator[ClientConnection]:
    async with connect(sim.server.ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": payload or {}}))
        assert await receive(ws) == {"type": "connection_ack"}
        yield ws


async def receive(ws: ClientConnection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    return message


async def subscribe(ws: ClientConnection, op_id: str, query: str, variables: dict[str, Any] | None = None) -> None:
    assert validate(blink_schema(), parse(query)) == []
    await ws.send(json.dumps({"type": "subscribe", "id": op_id, "payload": {"query": query, "variables": variables or {}}}))


async def next_update(ws: ClientConnection, op_id: str) -> dict[str, Any]:
    message = await receive(ws)
    assert (message["type"], message["id"]) == ("next", op_id), message
    payload: dict[str, Any] = message["payload"]["data"]["myUpdates"]
    return payload


async def test_my_updates_streams_receives_and_sends_in_order(sim: Sim) -> None:
    pos, staff, other = await sim.account(balance=5_000), await sim.account(), await sim.account()
    async with session(sim, {"X-API-KEY": staff.api_key}) as ws:
        await subscribe(ws, "1", doc.MY_UPDATES)
        ready = await next_update(ws, "1")
        assert ready["update"]["__typename"] == "RealtimePrice" and ready["me"]["username"] == staff.username
        first = await sim.invoice(staff.btc_wallet_id, 100)
        second = await sim.invoice(staff.btc_wallet_id, 200)
        outbound = await sim.invoice(other.btc_wallet_id, 50)
        await sim.send(pos, first["paymentRequest"])
        await sim.http.post("/sim/pay", json={"paymentRequest": second["paymentRequest"]})
        await sim.send(staff, outbound["paymentRequest"])
        updates = [(await next_update(ws, "1"))["update"] for _ in range(3)]
    assert [(u["__typename"], u["transaction"]["direction"], u["transaction"]["settlementAmount"]) for u in updates] == [
        ("LnUpdate", "RECEIVE", 100), ("LnUpdate", "RECEIVE", 200), ("IntraLedgerUpdate", "SEND", -50),
    ]
    assert [updates[0]["paymentHash"], updates[1]["paymentHash"]] == [first["paymentHash"], second["paymentHash"]]
    assert updates[0]["status"] == "PAID" and updates[2]["txNotificationType"] == "IntraLedgerPayment"


async def test_a_held_payment_reaches_the_sender_as_pending_then_success(sim: Sim) -> None:
    pos, staff = await sim.account(balance=1_000), await sim.account()
    invoice = await sim.invoice(staff.btc_wallet_id, 10)
    await sim.http.post("/sim/faults", json={"operation": "lnInvoicePaymentSend", "pending": True, "resolveAfterMs": 200})
    async with session(sim, {"apiKey": pos.api_key}) as ws:
        await subscribe(ws, "a", doc.MY_UPDATES)
        await next_update(ws, "a")
        assert (await sim.send(pos, invoice["paymentRequest"]))["status"] == "PENDING"
        statuses = [(await next_update(ws, "a"))["update"]["transaction"]["status"] for _ in range(2)]
    assert statuses == ["PENDING", "SUCCESS"]


async def test_an_unknown_key_is_closed_with_4403(sim: Sim) -> None:
    async with connect(sim.server.ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {"x-api-key": "blink_wrong"}}))
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_subscribe_before_init_is_closed_with_4401(sim: Sim) -> None:
    async with connect(sim.server.ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
        await subscribe(ws, "1", doc.MY_UPDATES)
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_anonymous_my_updates_is_an_error_and_ping_is_answered(sim: Sim) -> None:
    async with session(sim) as ws:
        await ws.send(json.dumps({"type": "ping"}))
        assert await receive(ws) == {"type": "pong"}
        await subscribe(ws, "x", doc.MY_UPDATES)
        message = await receive(ws)
        assert (message["type"], message["id"]) == ("error", "x")
        assert [(e["message"], e["extensions"]["code"]) for e in message["payload"]] == [
            ("Not Authenticated for subscription", "NOT_AUTHENTICATED")]


async def test_complete_stops_one_stream_and_a_duplicate_id_closes_4409(sim: Sim) -> None:
    staff = await sim.account()
    async with session(sim, {"X-API-KEY": staff.api_key}) as ws:
        await subscribe(ws, "1", doc.MY_UPDATES)
        await next_update(ws, "1")
        await ws.send(json.dumps({"type": "complete", "id": "1"}))
        await subscribe(ws, "2", doc.MY_UPDATES)
        await next_update(ws, "2")
        invoice = await sim.invoice(staff.btc_wallet_id, 7)
        await sim.http.post("/sim/pay", json={"paymentRequest": invoice["paymentRequest"]})
        assert (await next_update(ws, "2"))["update"]["transaction"]["settlementAmount"] == 7
        await subscribe(ws, "2", doc.MY_UPDATES)
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4409


async def test_payment_status_subscription_tells_paid_and_stays_open(sim: Sim) -> None:
    staff = await sim.account()
    invoice = await sim.invoice(staff.btc_wallet_id, 21)
    async with session(sim) as ws:
        await subscribe(ws, "s", doc.STATUS_SUBSCRIPTION, {"input": {"paymentHash": invoice["paymentHash"]}})
        first = await receive(ws)
        assert first["payload"]["data"]["lnInvoicePaymentStatusByHash"]["status"] == "PENDING"
        await sim.http.post("/sim/pay", json={"paymentRequest": invoice["paymentRequest"]})
        paid = await receive(ws)
        assert paid["payload"]["data"]["lnInvoicePaymentStatusByHash"]["status"] == "PAID"
        assert paid["payload"]["data"]["lnInvoicePaymentStatusByHash"]["paymentPreimage"]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.3)


async def test_payment_status_subscription_tells_expired_then_paid_for_a_payment_held_past_expiry(sim: Sim) -> None:
    pos, staff = await sim.account(balance=1_000), await sim.account()
    invoice = await sim.invoice(staff.btc_wallet_id, 21, expires_in=1)
    await sim.http.post("/sim/faults", json={
        "operation": "lnInvoicePaymentSend", "pending": True, "resolveAfterMs": 1_500, "count": 1})
    async with session(sim) as ws:
        await subscribe(ws, "s", doc.STATUS_SUBSCRIPTION, {"input": {"paymentHash": invoice["paymentHash"]}})
        assert (await receive(ws))["payload"]["data"]["lnInvoicePaymentStatusByHash"]["status"] == "PENDING"
        assert (await sim.send(pos, invoice["paymentRequest"]))["status"] == "PENDING"
        await sim.http.post("/sim/clock", json={"advanceSeconds": 61})
        expired = (await receive(ws))["payload"]["data"]["lnInvoicePaymentStatusByHash"]
        assert (expired["status"], expired["paymentPreimage"]) == ("EXPIRED", None)
        paid = (await receive(ws))["payload"]["data"]["lnInvoicePaymentStatusByHash"]
        assert paid["status"] == "PAID" and paid["paymentPreimage"]


async def test_queries_run_over_the_socket_too(sim: Sim) -> None:
    async with session(sim) as ws:
        await subscribe(ws, "q", doc.REALTIME_PRICE, {"currency": "JPY"})
        message = await receive(ws)
        assert message["payload"]["data"]["realtimePrice"]["denominatorCurrencyDetails"]["fractionDigits"] == 0
        assert await receive(ws) == {"type": "complete", "id": "q"}


async def test_the_control_api_can_drop_sockets_and_clients_can_reconnect(sim: Sim) -> None:
    staff = await sim.account()
    async with session(sim, {"X-API-KEY": staff.api_key}) as ws:
        await subscribe(ws, "1", doc.MY_UPDATES)
        await next_update(ws, "1")
        dropped = (await sim.http.post("/sim/subscriptions/drop")).json()["dropped"]
        assert dropped >= 1
        with pytest.raises(ConnectionClosed) as closed:
            await receive(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
    async with session(sim, {"X-API-KEY": staff.api_key}) as ws:
        await subscribe(ws, "1", doc.MY_UPDATES)
        assert (await next_update(ws, "1"))["update"]["__typename"] == "RealtimePrice"


async def test_closed_sockets_leave_no_streams_behind(sim: Sim) -> None:
    staff = await sim.account()
    async with session(sim, {"X-API-KEY": staff.api_key}) as ws:
        await subscribe(ws, "1", doc.MY_UPDATES)
        await next_update(ws, "1")
        assert sim.server.state.broker.stream_count >= 1
    for _ in range(50):
        if sim.server.state.broker.stream_count == 0 and not sim.server.state.sockets:
            break
        await asyncio.sleep(0.02)
    assert sim.server.state.broker.stream_count == 0 and not sim.server.state.sockets


async def test_my_updates_needs_an_account_but_no_particular_scope(sim: Sim) -> None:
    """Blink's scope middleware covers queries and mutations only; myUpdates asks for an account."""
    shop = await sim.account()
    response = await sim.http.post(f"/sim/accounts/{shop.account_id}/keys", json={"scopes": ["RECEIVE"]})
    async with session(sim, {"X-API-KEY": response.json()["apiKey"]}) as ws:
        await subscribe(ws, "1", doc.MY_UPDATES)
        assert (await next_update(ws, "1"))["update"]["__typename"] == "RealtimePrice"
