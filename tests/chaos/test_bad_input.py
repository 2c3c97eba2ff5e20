"""Bad input against running service processes: schemathesis over /openapi.json, and hand-made cases.

Decision on replayed webhooks: a delivery whose svix-id was seen before is
*accepted* (200) as long as its signature and timestamp are valid. Svix
itself re-delivers with the same svix-id on retries, so refusing a repeat
would drop legitimate retries; and a webhook only starts `settle`, which is
idempotent and forwards only what Blink says was paid, to the destinations
stored at creation. A replay can therefore cost one status query, never money
(the test below checks the ledger). A re-timed or tampered copy is refused.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from tests.chaos.cluster import Cluster, Sale
from tests.chaos.conftest import ClusterFactory
from tests.chaos.invariants import Report, check_ledger, drain
from tests.services.conftest import WEBHOOK_SECRET
from tipsplit.blink.webhook import signed_headers

pytestmark = pytest.mark.chaos


def _fuzz(base_url: str, examples: int) -> dict[str, Any]:
    """Every operation of the service's OpenAPI, `examples` generated requests each (runs in a thread)."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    seen: dict[str, Any] = {"operations": 0, "requests": 0, "codes": {}}
    problems: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        seen["operations"] += 1

        @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            if case.path.endswith("/events"):
                case.headers = {**(case.headers or {}), "accept": "text/event-stream"}
            response = case.call(base_url=base_url, timeout=30)
            seen["requests"] += 1
            seen["codes"][response.status_code] = seen["codes"].get(response.status_code, 0) + 1
            where = f"{case.method} {case.formatted_path} body={str(case.body)[:200]!r}"
            if response.status_code >= 500:
                problems.append(f"{response.status_code} from {where}: {response.text[:300]}")
            elif response.status_code >= 400:
                try:
                    body = response.json()
                except ValueError:
                    problems.append(f"non-JSON {response.status_code} from {where}: {response.text[:200]}")
                    return
                if not (isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"]):
                    problems.append(f"{response.status_code} without an 'error' from {where}: {body}")

        check()
    seen["problems"] = problems
    return seen


@pytest.mark.parametrize("examples", [pytest.param(25, id="short"),
                                      pytest.param(400, id="full", marks=[pytest.mark.slow,
                                                                          pytest.mark.timeout(1800)])])
async def test_schemathesis_finds_no_5xx_and_only_json_errors(make_cluster: ClusterFactory, examples: int) -> None:
    cluster = await make_cluster(instances=1, public_metrics="true")
    # The fuzzer is synchronous; the simulator lives in this event loop, so the fuzzer gets a thread.
    seen = await asyncio.to_thread(_fuzz, cluster.instances[0].url, examples)
    print(f"[chaos] schemathesis: {seen['operations']} operations, {seen['requests']} requests, "
          f"codes {dict(sorted(seen['codes'].items()))}")
    assert seen["operations"] >= 6 and seen["requests"] >= seen["operations"] * min(examples, 10)
    assert not seen["problems"], "\n".join(seen["problems"][:20])


def _body(cluster: Cluster, **fields: Any) -> dict[str, Any]:
    return {"userWalletId": cluster.merchant.wallet_id, "apiKey": cluster.merchant.api_key, **fields}


BAD_AMOUNTS = [
    ({"baseAmount": 100, "tipAmount": -1, "tipRecipients": [{"username": "alice", "share": 100}]}, "tipAmount"),
    ({"baseAmount": 100, "tipAmount": 2**63, "tipRecipients": [{"username": "alice", "share": 100}]}, "tipAmount"),
    ({"amount": 0}, "amount"),
    ({"amount": -5}, "amount"),
    ({"amount": 2**63}, "amount"),
    ({"amount": 2**64 + 1}, "amount"),
    ({"amount": 1.5}, "amount"),
    ({"amount": True}, "amount"),
    ({"baseAmount": 100, "tipPercent": -1, "tipRecipients": [{"username": "alice", "share": 100}]}, "tipPercent"),
    ({"baseAmount": 100, "tipAmount": 10, "tipRecipients": [{"username": "alice", "share": 0}]},
     "tipRecipients.0.share"),
    ({"baseAmount": 100, "tipAmount": 10, "tipRecipients": [{"username": "alice", "share": -50},
                                                            {"username": "bob", "share": 150}]},
     "tipRecipients.0.share"),
    ({"baseAmount": 100, "tipAmount": 10, "tipRecipients": [{"username": "alice", "share": 60},
                                                            {"username": "bob", "share": 60}]}, "body"),
]


@pytest.fixture()
async def one(make_cluster: ClusterFactory) -> Cluster:
    return await make_cluster(instances=1)


async def test_hand_made_bad_input(one: Cluster) -> None:
    """Amounts, shares, hashes and bodies that are wrong in ways test_api.py does not try."""
    url = one.instances[0].url
    http = one.client
    for fields, field in BAD_AMOUNTS:
        response = await http.post(f"{url}/api/blink/create-invoice", json=_body(one, **fields))
        assert response.status_code == 400, (fields, response.text)
        assert response.json()["field"] == field, (fields, response.json())
    for bad in ("ab" * 31 + "a", "ab" * 33, "g" * 64, "Ａ" * 64, "' OR 1=1 --", None, 12, ["ab" * 32]):
        response = await http.post(f"{url}/api/blink/forward-with-tips", json={"paymentHash": bad})
        assert response.status_code == 400 and response.json()["field"] == "paymentHash", (bad, response.text)
    for path in ("%00" * 64, "ab" * 32 + "%2F..", "x" * 5000):
        response = await http.get(f"{url}/api/payment-status/{path}")
        assert 400 <= response.status_code < 500 and response.json()["error"], (path, response.text)
    # Oversized: a webhook over its 64 KiB cap, and a chunked body with no Content-Length to the invoice route.
    big = json.dumps({"eventType": "receive.lightning", "pad": "x" * 70_000}).encode()
    response = await http.post(f"{url}/api/blink/webhook", content=big,
                               headers=signed_headers(WEBHOOK_SECRET, "msg_big", big))
    assert response.status_code == 413 and response.json()["error"]

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"userWalletId": "w", "apiKey": "k", "memo": "'
        for _ in range(64):
            yield b"y" * 16_384
        yield b'"}'

    response = await http.post(f"{url}/api/blink/create-invoice", content=chunks(),
                               headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500 and response.json()["error"], response.text[:200]
    for content_type, content in (("text/plain", b"baseAmount=1"), ("application/json", b"[]"),
                                  ("application/json", b"null"), ("application/json", b'{"a":' * 2000)):
        response = await http.post(f"{url}/api/blink/create-invoice", content=content,
                                   headers={"content-type": content_type})
        assert 400 <= response.status_code < 500 and response.json()["error"], (content[:20], response.text)


async def test_forward_of_unknown_unpaid_and_foreign_hashes(one: Cluster) -> None:
    """No payment: 404. Unpaid: 409, nothing moves. Another merchant's paid hash, sent with this merchant's
    wallet and key and made-up amounts: it settles to the *stored* merchant and amounts only."""
    url = one.instances[0].url
    http = one.client
    unknown = await http.post(f"{url}/api/blink/forward-with-tips", json={"paymentHash": "ee" * 32})
    assert unknown.status_code == 404 and unknown.json()["error"]

    unpaid = await one.create_invoice(one.order(), attempts=1)
    assert unpaid is not None
    response = await http.post(f"{url}/api/blink/forward-with-tips", json={"paymentHash": unpaid.payment_hash})
    assert response.status_code == 409 and response.json()["error"]

    intruder = await one.add_merchant("intruder")
    victim_sale = await one.create_invoice(
        _body(one, baseAmount=1000, tipAmount=100, tipRecipients=[{"username": "alice", "share": 100}]), attempts=1)
    assert victim_sale is not None
    await one.pay(victim_sale)
    response = await http.post(f"{url}/api/blink/forward-with-tips", json={
        "paymentHash": victim_sale.payment_hash.upper(), "userWalletId": intruder.wallet_id,
        "apiKey": intruder.api_key, "baseAmount": 1_000_000, "tipAmount": 0, "tipRecipients": [],
    })
    assert response.status_code in (200, 202), response.text
    await drain(one, timeout=30)
    wallets = {w["walletId"]: w["balance"] for w in (await one.ledger())["wallets"]}
    assert wallets[intruder.wallet_id] == 0
    assert wallets[one.merchant.wallet_id] == 1000
    assert wallets[one.recipients["alice"].wallet_id] == 100
    await check_ledger(one, Report("bad input: foreign forward"))


async def test_replayed_retimed_and_tampered_webhooks(one: Cluster) -> None:
    """A replay (same svix-id, valid signature, inside the tolerance) is accepted and harmless; a re-timed copy
    (timestamp changed, signature not) and a body with another hash under the old signature are refused."""
    url = one.instances[0].url
    sale: Sale | None = await one.create_invoice(
        _body(one, baseAmount=700, tipAmount=70, tipRecipients=[{"username": "bob", "share": 100}]), attempts=1)
    assert sale is not None
    await one.pay(sale)
    body = json.dumps({"eventType": "receive.lightning",
                       "transaction": {"initiationVia": {"paymentHash": sale.payment_hash}}}).encode()
    headers = signed_headers(WEBHOOK_SECRET, "msg_replayed", body)
    first, *replays = await asyncio.gather(*(one.client.post(f"{url}/api/blink/webhook", content=body,
                                                             headers=headers) for _ in range(5)))
    assert first.status_code == 200 and all(r.status_code == 200 for r in replays)
    retimed = {**headers, "svix-timestamp": str(int(headers["svix-timestamp"]) + 60)}
    tampered_body = body.replace(sale.payment_hash.encode(), b"ab" * 32)
    for content, hdrs in ((body, retimed), (tampered_body, headers)):
        response = await one.client.post(f"{url}/api/blink/webhook", content=content, headers=hdrs)
        assert response.status_code == 401 and response.json()["error"], response.text
    await drain(one, timeout=30)
    # Later replays of a settled payment still move nothing.
    for _ in range(3):
        assert (await one.client.post(f"{url}/api/blink/webhook", content=body, headers=headers)).status_code == 200
    await asyncio.sleep(1.0)
    report = await check_ledger(one, Report("bad input: replayed webhooks"))
    assert report.completed == 1
    ledger = await one.ledger()
    assert len([p for p in ledger["payments"] if p["senderWalletId"] == one.pos.wallet_id]) == 2


async def test_non_ascii_credentials_are_a_4xx_not_a_500(one: Cluster) -> None:
    """Regression (found by schemathesis): control and non-ASCII characters in apiKey / userWalletId."""
    url = one.instances[0].url
    for fields in ({"userWalletId": "\U000b2b27±\x9c", "apiKey": "4¿H±á\U000d7a43"},
                   {"userWalletId": one.merchant.wallet_id, "apiKey": "key\nX-Injected: 1"},
                   {"userWalletId": "w\x00", "apiKey": one.merchant.api_key}):
        response = await one.client.post(f"{url}/api/blink/create-invoice", json={"amount": 1000, **fields})
        assert 400 <= response.status_code < 500, (fields, response.status_code, response.text, one.logs()[0])
        assert response.json()["error"]
