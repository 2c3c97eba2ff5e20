"""The operator CLI on real payments: settled through the simulator by a real service instance."""

import asyncio
import json
from typing import Any

import pytest
from typer.testing import Result

from tests.cli.conftest import Cli
from tests.services.conftest import World

TWO_WAY = [{"username": "alice", "share": 50}, {"username": "bob", "share": 50}]


async def run(cli: Cli, *args: str, **env: str | None) -> Result:
    """The CLI runs its own event loop, so it runs in a thread next to the test's."""
    return await asyncio.to_thread(cli, *args, **env)


async def sale(world: World, wanted: set[str], **body: Any) -> dict[str, Any]:
    async with world.http() as client:
        invoice = await world.create_invoice(client, **body)
        await world.pay(invoice["paymentRequest"])
        return await world.wait_for_status(client, invoice["paymentHash"], wanted, timeout=60)


async def test_stats_list_and_show_describe_settled_payments(world: World, world_cli: Cli) -> None:
    done = await sale(world, {"completed"}, baseAmount=1000, tipAmount=100, tipRecipients=TWO_WAY)
    async with world.http() as client:
        pending = await world.create_invoice(client, baseAmount=500, tipAmount=0)
    ph = done["paymentHash"]

    listed = await run(world_cli, "payments", "list", "--json")
    assert listed.exit_code == 0, listed.output
    rows = {row["paymentHash"]: row for row in json.loads(listed.stdout)}
    assert rows[ph]["status"] == "completed" and rows[ph]["totalAmount"] == 1100
    assert rows[pending["paymentHash"]]["status"] == "pending"

    only_done = json.loads((await run(world_cli, "payments", "list", "--status", "completed", "--json")).stdout)
    assert [row["paymentHash"] for row in only_done] == [ph]
    by_bob = json.loads((await run(world_cli, "payments", "list", "--recipient", "bob", "--since", "1h", "--json")).stdout)
    assert [row["paymentHash"] for row in by_bob] == [ph]
    assert json.loads((await run(world_cli, "payments", "list", "--since", "2099-01-01", "--json")).stdout) == []
    table = await run(world_cli, "payments", "list", "--limit", "1")
    assert table.exit_code == 0 and "payments (1)" in table.stdout

    shown = json.loads((await run(world_cli, "payments", "show", ph, "--json")).stdout)
    assert [(leg["leg"], leg["status"], leg["amount"]) for leg in shown["legs"]] == [
        ("base", "succeeded", 1000), ("tip:1", "succeeded", 50), ("tip:2", "succeeded", 50),
    ]
    types = [event["type"] for event in shown["events"]]
    assert types[0] == "created" and types[-1] == "completed"
    human = await run(world_cli, "payments", "show", ph.upper())
    assert human.exit_code == 0 and "tip:2" in human.stdout and "completed" in human.stdout
    by_prefix = json.loads((await run(world_cli, "payments", "show", ph[:8], "--json")).stdout)
    assert by_prefix["paymentHash"] == ph
    short = await run(world_cli, "payments", "show", ph[:7])
    assert short.exit_code == 2 and "at least its first 8 characters" in short.stderr
    narrow = await run(world_cli, "payments", "list", COLUMNS="80")
    assert narrow.exit_code == 0 and ph[:12] in narrow.stdout, narrow.stdout
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 80, narrow.stdout
    assert "complet" in narrow.stdout and "1,100" in narrow.stdout

    stats = json.loads((await run(world_cli, "stats", "--json")).stdout)
    assert stats["last24Hours"]["completed_count"] == 1 and stats["last24Hours"]["pending_count"] == 1
    assert {r["username"]: r["totalTipsReceived"] for r in stats["recipients"]} == {"alice": 50, "bob": 50}
    assert (await run(world_cli, "stats")).exit_code == 0

    everything = "".join([listed.stdout, human.stdout, json.dumps(shown), json.dumps(stats)])
    assert world.merchant.api_key not in everything and "enc:v1" not in everything


async def test_bad_input_exits_2_and_unknown_payments_exit_1(world_cli: Cli) -> None:
    unknown = await run(world_cli, "payments", "show", "ab" * 32)
    assert unknown.exit_code == 1 and "not stored" in unknown.stderr
    no_prefix = await run(world_cli, "payments", "show", "ab" * 5)
    assert no_prefix.exit_code == 1 and "no stored payment hash starts with ababababab" in no_prefix.stderr
    for args in (
        ("payments", "show", "xyz"),
        ("payments", "retry", "12" * 31),
        ("payments", "list", "--status", "paid"),
        ("payments", "list", "--since", "yesterday"),
        ("payments", "list", "--limit", "0"),
    ):
        result = await run(world_cli, *args)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.startswith("error:")
    broken = await run(world_cli, "stats", ENCRYPTION_KEYS="k1:not-base64")
    assert broken.exit_code == 2 and "ENCRYPTION_KEYS" in broken.stderr


async def test_retry_refuses_payments_that_are_not_failed(world: World, world_cli: Cli) -> None:
    done = await sale(world, {"completed"}, baseAmount=700, tipAmount=70, tipRecipients=TWO_WAY)
    async with world.http() as client:
        pending = await world.create_invoice(client, baseAmount=300, tipAmount=0)
    refused = await run(world_cli, "payments", "retry", done["paymentHash"])
    assert refused.exit_code == 1 and "could only pay twice" in refused.stderr
    waiting = await run(world_cli, "payments", "retry", pending["paymentHash"])
    assert waiting.exit_code == 1 and "not paid yet" in waiting.stderr
    assert await world.balance(world.recipients["alice"]) == 35


@pytest.mark.settings(max_leg_attempts=2)
async def test_retry_finishes_a_failed_payment_and_pays_each_leg_once(world: World, world_cli: Cli) -> None:
    bob = world.recipients["bob"]
    await world.fault(operation="lnInvoicePaymentSend", failure=True, walletId=bob.wallet_id)
    failed = await sale(world, {"failed"}, baseAmount=1000, tipAmount=100, tipRecipients=TWO_WAY)
    ph = failed["paymentHash"]

    still_failing = await run(world_cli, "payments", "retry", ph)
    assert still_failing.exit_code == 1, still_failing.output
    assert "tip:2: failed" in still_failing.stdout and "queued again" in still_failing.stderr
    async with world.http() as client:
        await world.wait_for_status(client, ph, {"failed"}, timeout=60)
    assert await world.balance(bob) == 0

    response = await world.sim_http.delete("/sim/faults")
    assert response.status_code < 300
    fixed = await run(world_cli, "payments", "retry", ph)
    assert fixed.exit_code == 0, fixed.output
    assert "now completed" in fixed.stdout
    again = await run(world_cli, "payments", "retry", ph)
    assert again.exit_code == 1 and "completed" in again.stderr

    assert await world.balance(bob) == 50
    assert await world.balance(world.recipients["alice"]) == 50
    assert await world.balance(world.merchant) == 1000
    into_bob = [p for p in (await world.ledger())["payments"] if p["recipientWalletId"] == bob.wallet_id]
    assert [p["status"] for p in into_bob] == ["SUCCESS"]
    events = [e["type"] for e in json.loads((await run(world_cli, "payments", "show", ph, "--json")).stdout)["events"]]
    assert events.count("legs_reset") == 2 and events[-1] == "completed"
