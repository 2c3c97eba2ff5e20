"""The HTTP surface: bad input is refused clearly, status and events are visible, secrets never leak."""

import json
from typing import Any

import pytest

from tests.services.conftest import WEBHOOK_SECRET, World, eventually
from tipsplit.blink.webhook import signed_headers
from tipsplit.store.redis_client import connect_redis

TWO_WAY = [{"username": "alice", "share": 60}, {"username": "bob", "share": 40}]


def body(world: World, **fields: Any) -> dict[str, Any]:
    return {"userWalletId": world.merchant.wallet_id, "apiKey": world.merchant.api_key, **fields}


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"baseAmount": -1}, "baseAmount"),
        ({"baseAmount": 0, "tipAmount": 0}, "amount"),
        ({"baseAmount": 2**63}, "baseAmount"),
        ({"baseAmount": "100"}, "baseAmount"),
        ({"amount": 1100, "baseAmount": 1000, "tipAmount": 50, "tipRecipients": TWO_WAY}, "amount"),
        ({"baseAmount": 100, "tipAmount": 10, "tipRecipients": [{"username": "alice", "share": 70}]}, "body"),
        ({"baseAmount": 100, "tipAmount": 10}, "tipRecipients"),
        ({"baseAmount": 100, "tipPercent": 150}, "tipPercent"),
        ({"baseAmount": 100, "memo": "x" * 5000}, "memo"),
        ({"baseAmount": 100, "tipAmount": 10, "tipRecipients": [{"username": "nobody_here", "share": 100}]},
         "tipRecipients"),
        ({"baseAmount": 100, "tipRecipients": [{"username": "a b", "share": 100}]}, "tipRecipients.0.username"),
        ({"displayCurrency": "USD", "baseAmountDisplay": "1.234", "tipPercent": 10,
          "tipRecipients": TWO_WAY}, "baseAmountDisplay"),
    ],
)
async def test_bad_invoice_requests_name_the_field(world: World, fields: dict[str, Any], field: str) -> None:
    async with world.http() as client:
        response = await client.post("/api/blink/create-invoice", json=body(world, **fields))
    assert 400 <= response.status_code < 500, response.text
    payload = response.json()
    assert payload["error"]
    assert payload["field"] == field, payload
    assert world.merchant.api_key not in response.text


async def test_the_merchant_key_must_own_the_wallet(world: World) -> None:
    async with world.http() as client:
        wrong_wallet = await client.post(
            "/api/blink/create-invoice",
            json={"userWalletId": world.recipients["alice"].wallet_id, "apiKey": world.merchant.api_key,
                  "baseAmount": 100},
        )
        bad_key = await client.post(
            "/api/blink/create-invoice",
            json={"userWalletId": world.merchant.wallet_id, "apiKey": "blink_not_a_key", "baseAmount": 100},
        )
    assert wrong_wallet.status_code == 403 and wrong_wallet.json()["field"] == "userWalletId"
    assert bad_key.status_code == 401 and bad_key.json()["field"] == "apiKey"


async def test_malformed_and_oversized_requests(world: World) -> None:
    async with world.http() as client:
        not_json = await client.post(
            "/api/blink/create-invoice", content=b"{nope", headers={"content-type": "application/json"}
        )
        huge = await client.post("/api/blink/create-invoice", content=b"x" * 300_000,
                                 headers={"content-type": "application/json"})
        bad_hash = await client.post("/api/blink/forward-with-tips", json={"paymentHash": "xyz"})
        bad_status = await client.get("/api/payment-status/not-a-hash")
        unknown_status = await client.get(f"/api/payment-status/{'cd' * 32}")
    assert not_json.status_code == 400 and not_json.json()["field"] == "body"
    assert not_json.json()["error"].startswith("body: the request body is not valid JSON (")
    assert "at character 1" in not_json.json()["error"] and "send a JSON object" in not_json.json()["error"]
    assert huge.status_code == 413 and huge.json()["error"]
    assert bad_hash.status_code == 400 and bad_hash.json()["field"] == "paymentHash"
    assert bad_status.status_code == 400
    assert unknown_status.status_code == 404 and unknown_status.json()["status"] == "not_found"


async def test_display_currency_is_converted_on_the_server(world: World) -> None:
    async with world.http() as client:
        usd = await world.create_invoice(
            client, displayCurrency="USD", baseAmountDisplay="12.50", tipPercent=10, tipRecipients=TWO_WAY
        )
        jpy = await world.create_invoice(client, displayCurrency="JPY", baseAmountDisplay="1500", tipPercent=0)
    # The simulator prices BTC at 100,000 USD and 15,000,000 JPY.
    assert usd["split"]["baseAmount"] == 12_500 and usd["split"]["tipAmount"] == 1_250
    assert usd["satoshis"] == 13_750
    assert jpy["satoshis"] == 10_000


@pytest.mark.settings(rate_limit_per_wallet=3)
async def test_rate_limit_answers_429_with_retry_after(world: World) -> None:
    async with world.http() as client:
        codes = []
        for _ in range(5):
            response = await client.post("/api/blink/create-invoice", json=body(world, baseAmount=10))
            codes.append(response.status_code)
        assert codes == [200, 200, 200, 429, 429]
        assert int(response.headers["Retry-After"]) > 0
        assert response.json()["error"]


async def test_webhooks_must_be_signed_and_fresh(world: World) -> None:
    event = json.dumps({"eventType": "receive.lightning",
                        "transaction": {"initiationVia": {"paymentHash": "ab" * 32}}}).encode()
    good = signed_headers(WEBHOOK_SECRET, "msg_1", event)
    async with world.http() as client:
        ok = await client.post("/api/blink/webhook", content=event, headers=good)
        tampered = await client.post("/api/blink/webhook", content=event.replace(b"ab", b"cd"), headers=good)
        stale = await client.post(
            "/api/blink/webhook", content=event, headers=signed_headers(WEBHOOK_SECRET, "msg_2", event, 1_000)
        )
        other = await client.post(
            "/api/blink/webhook", content=event,
            headers=signed_headers("whsec_" + "QUJD" * 8, "msg_3", event),
        )
        unsigned = await client.post("/api/blink/webhook", content=event)
    assert ok.status_code == 200
    for refused in (tampered, stale, other, unsigned):
        assert refused.status_code == 401 and refused.json()["error"]


async def test_status_stream_follows_a_payment_to_completion(world: World) -> None:
    async with world.http() as client:
        invoice = await world.create_invoice(client, baseAmount=900, tipPercent=10, tipRecipients=TWO_WAY)
        statuses: list[str] = []
        async with client.stream("GET", f"/api/payment-status/{invoice['paymentHash']}/events") as stream:
            async for line in stream.aiter_lines():
                if not line.startswith("data:"):
                    continue
                statuses.append(json.loads(line[5:])["status"])
                if statuses == ["pending"]:
                    await world.pay(invoice["paymentRequest"])
        assert statuses[0] == "pending" and statuses[-1] == "completed"
        assert "userApiKey" not in str(statuses)


async def test_health_stats_and_metrics(world: World) -> None:
    async with world.http() as client:
        invoice = await world.create_invoice(client, baseAmount=100, tipAmount=10, tipRecipients=TWO_WAY)
        await world.pay(invoice["paymentRequest"])
        await world.wait_for_status(client, invoice["paymentHash"], {"completed"})
        health = await client.get("/api/health")
        stats = await client.get("/api/stats", headers=world.operator)
        metrics = await client.get("/metrics", headers=world.operator)
        sandbox = await client.get("/api/sandbox")
    assert health.status_code == 200
    checks = health.json()["checks"]
    assert {checks[name]["status"] for name in ("postgres", "redis", "blink")} == {"up"}
    assert stats.status_code == 200 and "last24Hours" in stats.json()
    leaders = {r["username"]: r["totalTips"] for r in stats.json()["recipients"]}
    assert leaders == {"alice": 6, "bob": 4}
    assert "tipsplit_settlements_total" in metrics.text
    assert 'tipsplit_http_request_seconds_count{method="POST",route="/api/blink/create-invoice",status="200"}' in metrics.text
    assert sandbox.status_code == 404


OPERATIONS_PATHS = ("/api/stats", "/metrics", "/docs", "/redoc", "/openapi.json")


async def test_statistics_metrics_and_docs_are_the_operators(world: World) -> None:
    """Outside sandbox mode they answer 401 (JSON) without OPERATOR_TOKEN as a Bearer header."""
    async with world.http() as client:
        for path in OPERATIONS_PATHS:
            anonymous = await client.get(path)
            assert anonymous.status_code == 401, (path, anonymous.text[:200])
            assert anonymous.json()["error"] and anonymous.headers["www-authenticate"] == "Bearer"
            guessed = await client.get(path, headers={"authorization": "Bearer not-the-token"})
            assert guessed.status_code == 401, path
            allowed = await client.get(path, headers=world.operator)
            assert allowed.status_code == 200, (path, allowed.text[:200])
        schema = (await client.get("/openapi.json", headers=world.operator)).json()
    assert "/api/blink/create-invoice" in schema["paths"]


@pytest.mark.settings(public_metrics=True)
async def test_public_metrics_opens_statistics_metrics_and_docs(world: World) -> None:
    async with world.http() as client:
        for path in OPERATIONS_PATHS:
            response = await client.get(path)
            assert response.status_code == 200, (path, response.text[:200])


@pytest.mark.settings(poll_interval_seconds=3600)
async def test_the_subscription_alone_settles_a_payment(world: World) -> None:
    await world.sim_http.delete("/sim/webhooks")
    async with world.http() as client:
        invoice = await world.create_invoice(client, baseAmount=321, tipAmount=0)
        await world.pay(invoice["paymentRequest"])
        status = await world.wait_for_status(client, invoice["paymentHash"], {"completed"}, timeout=15)
    assert status["legs"][0]["status"] == "succeeded"


@pytest.mark.settings(poll_interval_seconds=0.3)
async def test_the_poller_alone_settles_a_payment(world: World) -> None:
    await world.sim_http.delete("/sim/webhooks")
    await world.sim_http.post("/sim/subscriptions/drop")
    await world.fault(operation="myUpdates", errorRate=1.0)
    async with world.http() as client:
        invoice = await world.create_invoice(client, baseAmount=222, tipAmount=0)
        await world.pay(invoice["paymentRequest"])
        await world.wait_for_status(client, invoice["paymentHash"], {"completed"}, timeout=15)
    assert await world.balance(world.merchant) == 222


async def test_health_is_503_when_blink_is_down(world: World) -> None:
    await world.fault(operation="realtimePrice", errorRate=1.0)
    async with world.http() as client:
        response = await eventually(lambda: client.get("/api/health"), lambda r: r.status_code == 503, timeout=15)
    assert response.json()["checks"]["blink"]["status"] == "down"


async def test_nothing_stored_anywhere_holds_the_plaintext_key(world: World) -> None:
    import asyncpg
    async with world.http() as client:
        invoice = await world.create_invoice(client, baseAmount=500, tipAmount=50, tipRecipients=TWO_WAY)
        await world.pay(invoice["paymentRequest"])
        await world.wait_for_status(client, invoice["paymentHash"], {"completed"})
        await world.create_invoice(client, baseAmount=77, tipAmount=0)
    key = world.merchant.api_key
    conn = await asyncpg.connect(world.settings.database_url)
    try:
        for table in ("payment_splits", "payment_events", "payment_legs", "payment_tip_recipients"):
            rows = await conn.fetch(f"SELECT t::text AS row FROM {table} t")
            assert rows, table
            assert not [r for r in rows if key in r["row"]], table
    finally:
        await conn.close()
    client = connect_redis(world.settings.redis_url or "", decode_responses=True)
    try:
        keys = [k async for k in client.scan_iter(match=f"{world.settings.redis_key_prefix}*")]
        assert keys
        for name in keys:
            kind = await client.type(name)
            value = await client.get(name) if kind == "string" else str(await client.zrange(name, 0, -1))
            assert key not in (value or ""), name
    finally:
        await client.aclose()


async def test_recipient_lookups_are_cached_between_sales(world: World) -> None:
    async with world.http() as client:
        await world.create_invoice(client, baseAmount=100, tipAmount=10, tipRecipients=TWO_WAY)
        await world.fault(operation="accountDefaultWallet", errorRate=1.0)
        await world.fault(operation="me", errorRate=1.0)
        second = await world.create_invoice(client, baseAmount=200, tipAmount=20, tipRecipients=TWO_WAY)
    assert second["satoshis"] == 220


async def test_an_unknown_display_currency_is_a_4xx(world: World) -> None:
    async with world.http() as client:
        response = await client.post(
            "/api/blink/create-invoice", json=body(world, displayCurrency="QQQ", baseAmountDisplay="5", tipPercent=0)
        )
    assert response.status_code == 400 and response.json()["field"] == "displayCurrency"


async def test_blink_down_during_a_sale_is_a_503_with_json(world: World) -> None:
    await world.fault(operation="lnInvoiceCreate", errorRate=1.0)
    async with world.http() as client:
        response = await client.post("/api/blink/create-invoice", json=body(world, baseAmount=100))
    assert response.status_code == 503 and response.json()["error"]
    assert response.headers["Retry-After"]


async def test_a_total_with_a_tip_percent_is_split_on_the_server(world: World) -> None:
    async with world.http() as client:
        from_total = await world.create_invoice(client, amount=1100, tipPercent=10, tipRecipients=TWO_WAY)
        with_tip = await world.create_invoice(client, amount=1100, tipAmount=150, tipRecipients=TWO_WAY)
    assert (from_total["split"]["baseAmount"], from_total["split"]["tipAmount"]) == (1000, 100)
    assert (with_tip["split"]["baseAmount"], with_tip["split"]["tipAmount"]) == (950, 150)


async def test_a_single_tip_recipient_and_a_memo_as_the_original_app_sent_them(world: World) -> None:
    async with world.http() as client:
        invoice = await world.create_invoice(
            client, baseAmount=500, tipAmount=50, tipRecipient="carol", memo="Table 7: 2 coffees"
        )
        await world.pay(invoice["paymentRequest"])
        status = await world.wait_for_status(client, invoice["paymentHash"], {"completed"})
    assert [(leg["recipient"], leg["amount"]) for leg in status["legs"]] == [(None, 500), ("carol", 50)]
    assert status["memo"] == "Table 7: 2 coffees"
    ledger = await world.ledger()
    pos_invoice = next(i for i in ledger["invoices"] if i["paymentHash"] == invoice["paymentHash"])
    assert pos_invoice["memo"] == "Table 7: 2 coffees"
    assert await world.balance(world.recipients["carol"]) == 50
