"""A send that hangs is waited for, never paid twice; leg invoices carry a deterministic externalId."""

import asyncio
from typing import Any

import psycopg
import pytest

from tests.services.conftest import World, eventually
from tipsplit.cli.output import EXIT_PARTIAL
from tipsplit.cli.payments import retry_payment
from tipsplit.domain.external_ids import leg_external_id

ALICE = [{"username": "alice", "share": 100}]
HELD_MS = 20_000


def leg(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next(item for item in status["legs"] if item["leg"] == name)


def invoices_to(ledger: dict[str, Any], wallet_id: str) -> list[dict[str, Any]]:
    return [i for i in ledger["invoices"] if i["walletId"] == wallet_id]


@pytest.mark.settings(max_leg_attempts=3)
async def test_a_hanging_send_is_waited_for_and_never_replaced(world: World) -> None:
    alice = world.recipients["alice"]
    await world.fault(operation="lnInvoicePaymentSend", pending=True, resolveAfterMs=HELD_MS, username="alice", count=1)
    async with world.http() as client:
        invoice = await world.create_invoice(client, baseAmount=1000, tipAmount=100, tipRecipients=ALICE)
        ph = invoice["paymentHash"]
        assert (await world.pay(invoice["paymentRequest"])).status_code == 200
        await eventually(lambda: world.status(client, ph), lambda s: leg(s, "tip:1")["status"] == "paying")

        # Long enough for every attempt to be used up if checks on the held send counted as attempts.
        watch_until = asyncio.get_running_loop().time() + 6
        while asyncio.get_running_loop().time() < watch_until:
            status = await world.status(client, ph)
            assert status["status"] == "processing", status
            assert leg(status, "tip:1")["status"] == "paying"
            assert leg(status, "tip:1")["attempts"] == 1
            await asyncio.sleep(0.5)

        # Past the leg invoice's expiry: Blink still shows the POS wallet's send as pending, so the
        # invoice must not be replaced, neither by the reconciler nor by an operator's retry.
        assert (await world.sim_http.post("/sim/clock", json={"advanceSeconds": 25 * 3600})).status_code == 200
        await asyncio.sleep(2)
        assert await retry_payment(world.settings, ph) == EXIT_PARTIAL  # refused: the payment is not failed
        status = await world.status(client, ph)
        assert leg(status, "tip:1")["status"] == "paying"

        status = await world.wait_for_status(client, ph, {"completed"}, timeout=HELD_MS / 1000 + 30)

    assert leg(status, "tip:1")["attempts"] == 1
    ledger = await world.ledger()
    assert ledger["violations"] == []
    assert len(invoices_to(ledger, alice.wallet_id)) == 1
    assert await world.balance(alice) == 100
    assert await world.balance(world.merchant) == 1000
    assert await world.balance(world.pos) == 0


async def test_leg_invoices_carry_their_deterministic_external_id(world: World) -> None:
    async with world.http() as client:
        invoice = await world.create_invoice(client, baseAmount=600, tipAmount=60, tipRecipients=ALICE)
        assert (await world.pay(invoice["paymentRequest"])).status_code == 200
        await world.wait_for_status(client, invoice["paymentHash"], {"completed"})
    ledger = await world.ledger()
    ph = invoice["paymentHash"]
    (base,) = invoices_to(ledger, world.merchant.wallet_id)
    (tip,) = invoices_to(ledger, world.recipients["alice"].wallet_id)
    assert base["externalId"] == leg_external_id(ph, "base", 0) == f"ts-{ph}-base-0"
    assert tip["externalId"] == leg_external_id(ph, "tip:1", 0) == f"ts-{ph}-tip1-0"


async def test_an_invoice_made_but_never_recorded_is_not_duplicated(world: World) -> None:
    """A crash between creating a leg invoice and storing its hash: Blink refuses the repeat, nothing is paid twice."""
    alice = world.recipients["alice"]
    async with world.http() as client:
        invoice = await world.create_invoice(client, baseAmount=500, tipAmount=50, tipRecipients=ALICE)
        ph = invoice["paymentHash"]
        # The invoice the crashed attempt made: same recipient, amount and externalId, hash never stored.
        orphan = await world.sim_http.post("/graphql", json={
            "query": "mutation m($input: LnInvoiceCreateOnBehalfOfRecipientInput!) {"
                     " lnInvoiceCreateOnBehalfOfRecipient(input: $input) { errors { message } invoice { paymentHash } } }",
            "variables": {"input": {"recipientWalletId": alice.wallet_id, "amount": 50,
                                    "externalId": leg_external_id(ph, "tip:1", 0)}},
        })
        assert orphan.json()["data"]["lnInvoiceCreateOnBehalfOfRecipient"]["invoice"], orphan.text
        assert (await world.pay(invoice["paymentRequest"])).status_code == 200
        status = await world.wait_for_status(client, ph, {"completed"}, timeout=60)

    events = [e["type"] for e in status["events"]]
    assert "leg_invoice_unrecorded" in events
    ledger = await world.ledger()
    assert ledger["violations"] == []
    external_ids = sorted(i["externalId"] for i in invoices_to(ledger, alice.wallet_id))
    assert external_ids == [leg_external_id(ph, "tip:1", 0), leg_external_id(ph, "tip:1", 1)]
    assert await world.balance(alice) == 50


@pytest.mark.settings(max_leg_attempts=3)
async def test_an_operator_retry_of_a_payment_failed_with_a_send_in_flight_waits_for_that_send(world: World) -> None:
    """A payment left `failed` while its send hung (as before sends were checked) is retried without a second invoice."""
    alice = world.recipients["alice"]
    await world.fault(operation="lnInvoicePaymentSend", pending=True, resolveAfterMs=8_000, username="alice", count=1)
    async with world.http() as client:
        invoice = await world.create_invoice(client, baseAmount=700, tipAmount=70, tipRecipients=ALICE)
        ph = invoice["paymentHash"]
        assert (await world.pay(invoice["paymentRequest"])).status_code == 200
        await eventually(lambda: world.status(client, ph), lambda s: leg(s, "tip:1")["status"] == "paying")
        # What the old engine left behind: the leg failed with its attempts spent, the payment failed.
        async with await psycopg.AsyncConnection.connect(world.settings.database_url or "", autocommit=True) as db:
            await db.execute("UPDATE payment_legs SET status = 'failed', attempts = 3, last_error = 'still unpaid'"
                             " WHERE payment_hash = %s AND leg = 'tip:1'", (ph,))
            await db.execute("UPDATE payment_splits SET status = 'failed', claim_owner = NULL, claim_expires_at = NULL"
                             " WHERE payment_hash = %s", (ph,))
        # Past the leg invoice's expiry, where the old engine replaced the invoice and paid it again.
        assert (await world.sim_http.post("/sim/clock", json={"advanceSeconds": 25 * 3600})).status_code == 200
        assert await retry_payment(world.settings, ph) == EXIT_PARTIAL  # not completed yet: its send is in flight
        waiting = await world.status(client, ph)
        assert leg(waiting, "tip:1")["status"] == "paying"
        assert "leg_send_in_flight" in [e["type"] for e in waiting["events"]]
        done = await world.wait_for_status(client, ph, {"completed"}, timeout=40)

    assert leg(done, "tip:1")["status"] == "succeeded"
    ledger = await world.ledger()
    assert ledger["violations"] == []
    assert len(invoices_to(ledger, alice.wallet_id)) == 1
    assert await world.balance(alice) == 70
