"""A failed payment is final until the operator retries it from the dashboard; the till is told the truth."""

from typing import Any

import pytest

from tests.http.conftest import OPERATOR_TOKEN, WEB_SETTINGS, form_token
from tests.services.conftest import World, eventually

TWO_WAY = [{"username": "alice", "share": 50}, {"username": "bob", "share": 50}]
OPERATOR = {"authorization": f"Bearer {OPERATOR_TOKEN}"}


async def _failed_sale(world: World) -> dict[str, Any]:
    await world.fault(operation="lnInvoicePaymentSend", failure=True, walletId=world.recipients["bob"].wallet_id)
    async with world.http() as http:
        sale = await world.create_invoice(http, baseAmount=1000, tipAmount=100, tipRecipients=TWO_WAY)
        await world.pay(sale["paymentRequest"])
        await world.wait_for_status(http, sale["paymentHash"], {"failed"}, timeout=60)
    return sale


def _bob_payments(ledger: dict[str, Any], world: World) -> list[dict[str, Any]]:
    bob = world.recipients["bob"].wallet_id
    return [p for p in ledger["payments"] if p["recipientWalletId"] == bob and p["status"] == "SUCCESS"]


@pytest.mark.settings(**WEB_SETTINGS, max_leg_attempts=2)
async def test_the_operator_retries_a_failed_payment_from_the_dashboard(world: World) -> None:
    sale = await _failed_sale(world)
    ph = sale["paymentHash"]
    retry = f"/dashboard/payments/{ph}/retry"
    async with world.http() as http:
        token = await form_token(http, "/dashboard/login")
        assert (await http.post(retry, data={"csrf_token": token})).status_code == 401, "operators only"
        page = await http.get(f"/dashboard/payments/{ph}", headers=OPERATOR)
        assert 'id="retry-form"' in page.text and "stays failed until it is retried" in page.text
        await world.sim_http.delete("/sim/faults")
        done = await http.post(retry, data={"csrf_token": token}, headers=OPERATOR)
        assert (done.status_code, done.headers["location"]) == (303, f"/dashboard/payments/{ph}?retry=completed")
        shown = await http.get(done.headers["location"], headers=OPERATOR)
        assert "Retried: every leg is paid now." in shown.text and 'id="retry-form"' not in shown.text
        status = await world.status(http, ph)
        assert status["status"] == "completed"
        again = await http.post(retry, data={"csrf_token": token}, headers=OPERATOR)
        assert again.status_code == 409 and "a retry could only pay twice" in again.text
        unknown = await http.post(f"/dashboard/payments/{'cd' * 32}/retry", data={"csrf_token": token},
                                  headers=OPERATOR)
        assert unknown.status_code == 404 and "No such payment" in unknown.text
    assert await world.balance(world.recipients["bob"]) == 50
    assert len(_bob_payments(await world.ledger(), world)) == 1
    events = [e["type"] for e in status["events"]]
    assert events.count("legs_reset") == 1 and events[-1] == "completed"


@pytest.mark.settings(**WEB_SETTINGS, max_leg_attempts=3, leg_retry_base_seconds=60)
async def test_a_retrying_leg_says_how_many_attempts_remain(world: World) -> None:
    await world.fault(operation="lnInvoicePaymentSend", failure=True, walletId=world.recipients["bob"].wallet_id)
    async with world.http() as http:
        sale = await world.create_invoice(http, baseAmount=1000, tipAmount=100, tipRecipients=TWO_WAY)
        await world.pay(sale["paymentRequest"])
        status = await eventually(
            lambda: world.status(http, sale["paymentHash"]),
            lambda s: any(leg["status"] == "failed" for leg in s["legs"]),
        )
    bob = next(leg for leg in status["legs"] if leg["recipient"] == "bob")
    assert status["status"] == "processing" and status["error"] is None
    assert (bob["attempts"], bob["maxAttempts"], bob["attemptsLeft"], bob["retrying"]) == (1, 3, 2, True)
    assert bob["reason"] == "the recipient could not be paid yet"
