"""receive.lightning webhooks: Blink's payload, Svix signatures that verify, redelivery until a 2xx."""

import asyncio
import base64
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.sim.conftest import Sim
from tipsplit.blink.webhook import WebhookVerificationError, verify

SECRET = "whsec_" + base64.b64encode(b"simulator-webhook-test-secret!!").decode()


@dataclass
class Receiver:
    """A tiny webhook endpoint that fails the first `failures` deliveries."""

    url: str = ""
    failures: int = 0
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: Request) -> Response:
        self.received.append((dict(request.headers), await request.body()))
        status = 500 if len(self.answered) < self.failures else 204
        self.answered.append(status)
        if status == 204:
            self.arrived.set()
        return Response(status_code=status)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    target = Receiver()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    target.url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    app = Starlette(routes=[Route("/hook", target.handle, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign, assignment]
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    yield target
    server.should_exit = True
    await task


async def register(sim: Sim, receiver: Receiver, **extra: object) -> None:
    response = await sim.http.post("/sim/webhooks", json={"url": receiver.url, "secret": SECRET, "backoffMs": 50, **extra})
    assert response.status_code == 201, response.text


async def test_a_receive_is_posted_signed_in_blinks_shape(sim: Sim, receiver: Receiver) -> None:
    await register(sim, receiver)
    shop = await sim.account()
    invoice = await sim.invoice(shop.btc_wallet_id, 2_707, "table 4")
    await sim.http.post("/sim/pay", json={"paymentRequest": invoice["paymentRequest"]})
    await asyncio.wait_for(receiver.arrived.wait(), 5)
    headers, body = receiver.received[0]
    verify(SECRET, headers, body)
    event = json.loads(body)
    assert (event["eventType"], event["accountId"], event["walletId"]) == ("receive.lightning", shop.account_id, shop.btc_wallet_id)
    tx = event["transaction"]
    assert tx["initiationVia"]["type"] == "lightning" and tx["initiationVia"]["paymentHash"] == invoice["paymentHash"]
    assert (tx["settlementAmount"], tx["settlementCurrency"], tx["status"], tx["memo"]) == (2_707, "BTC", "success", "table 4")
    assert tx["createdAt"].endswith("Z") and tx["settlementVia"]["type"] == "lightning"


async def test_a_failed_delivery_is_retried_with_the_same_id_until_2xx(sim: Sim, receiver: Receiver) -> None:
    receiver.failures = 2
    await register(sim, receiver)
    pos, staff = await sim.account(balance=100), await sim.account()
    invoice = await sim.invoice(staff.btc_wallet_id, 60)
    await sim.send(pos, invoice["paymentRequest"])
    await asyncio.wait_for(receiver.arrived.wait(), 5)
    assert receiver.answered == [500, 500, 204]
    ids = {headers["svix-id"] for headers, _ in receiver.received}
    assert len(ids) == 1
    for headers, body in receiver.received:
        verify(SECRET, headers, body)
    deliveries = (await sim.http.get("/sim/webhooks")).json()["deliveries"]
    mine = [d for d in deliveries if d["msgId"] in ids][0]
    assert mine["delivered"] and [a["statusCode"] for a in mine["attempts"]] == [500, 500, 204]
    assert mine["payload"]["transaction"]["settlementVia"]["type"] == "intraledger"


async def test_tampering_is_refused_by_verification(sim: Sim, receiver: Receiver) -> None:
    await register(sim, receiver)
    shop = await sim.account()
    invoice = await sim.invoice(shop.btc_wallet_id, 5)
    await sim.http.post("/sim/pay", json={"paymentRequest": invoice["paymentRequest"]})
    await asyncio.wait_for(receiver.arrived.wait(), 5)
    headers, body = receiver.received[0]
    with pytest.raises(WebhookVerificationError):
        verify(SECRET, headers, body.replace(b"5", b"6"))
    with pytest.raises(WebhookVerificationError):
        verify("whsec_" + base64.b64encode(b"another secret").decode(), headers, body)


async def test_an_account_scoped_endpoint_hears_only_its_account(sim: Sim, receiver: Receiver) -> None:
    shop, other = await sim.account(), await sim.account()
    await register(sim, receiver, accountId=shop.account_id)
    elsewhere = await sim.invoice(other.btc_wallet_id, 3)
    mine = await sim.invoice(shop.btc_wallet_id, 4)
    await sim.http.post("/sim/pay", json={"paymentRequest": elsewhere["paymentRequest"]})
    await sim.http.post("/sim/pay", json={"paymentRequest": mine["paymentRequest"]})
    await asyncio.wait_for(receiver.arrived.wait(), 5)
    await asyncio.sleep(0.1)
    assert len(receiver.received) == 1
    assert b'"accountId":"' + shop.account_id.encode() in receiver.received[0][1]
