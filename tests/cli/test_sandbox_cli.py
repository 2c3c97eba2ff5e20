"""Operator commands against a running sandbox find its generated settings in the data directory."""

import asyncio
from pathlib import Path
from typing import Any

import httpx

from tests.cli.conftest import Cli
from tests.services.conftest import eventually
from tests.services.test_sandbox import free_port
from tipsplit.http.app import create_app
from tipsplit.serving import BackgroundServer
from tipsplit.settings import Settings


async def test_payments_retry_works_against_the_running_sandbox(cli: Cli) -> None:
    data_dir = Path(str(cli.env["TIPSPLIT_DATA_DIR"]))
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=cli.database_url, redis_url=cli.redis_url, redis_key_prefix=cli.prefix,
        data_dir=data_dir, sim_port=0, poll_interval_seconds=0.5, reconcile_interval_seconds=0.3,
        max_leg_attempts=2, leg_retry_base_seconds=0.2,
    )
    sandbox_env: dict[str, str | None] = {"ENCRYPTION_KEYS": None}
    port = free_port()
    server = BackgroundServer(create_app(settings, public_url=f"http://127.0.0.1:{port}"), port=port)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            creds = (await client.get("/api/sandbox")).json()
            alice = creds["recipients"][0]
            async with httpx.AsyncClient(base_url=creds["simUrl"], timeout=30) as sim:
                fault = {"operation": "lnInvoicePaymentSend", "failure": True, "walletId": alice["walletId"]}
                assert (await sim.post("/sim/faults", json=fault)).status_code == 201
                created = await client.post("/api/blink/create-invoice", json={
                    "userWalletId": creds["merchant"]["walletId"], "apiKey": creds["merchant"]["apiKey"],
                    "baseAmount": 1500, "tipAmount": 150, "tipRecipients": [{"username": alice["username"]}],
                })
                assert created.status_code == 200, created.text
                invoice: dict[str, Any] = created.json()
                assert (await sim.post("/sim/pay", json={"paymentRequest": invoice["paymentRequest"]})).is_success
                await eventually(lambda: client.get(f"/api/payment-status/{invoice['paymentHash']}"),
                                 lambda r: r.json()["status"] == "failed", timeout=30)
                assert (await sim.delete("/sim/faults")).is_success

                retried = await asyncio.to_thread(cli, "payments", "retry", invoice["paymentHash"], **sandbox_env)
                assert retried.exit_code == 0, retried.output
                assert "now completed" in retried.stdout
                balance = (await sim.get(f"/sim/wallets/{alice['walletId']}")).json()["balance"]
            assert balance == 150
            shown = await asyncio.to_thread(cli, "payments", "show", invoice["paymentHash"], **sandbox_env)
            assert shown.exit_code == 0 and "completed" in shown.stdout
    finally:
        await server.stop()
    stopped = await asyncio.to_thread(cli, "payments", "retry", invoice["paymentHash"], **sandbox_env)
    assert stopped.exit_code == 2 and "no sandbox is running" in stopped.stderr
    for secret in (creds["pos"]["apiKey"], creds["merchant"]["apiKey"]):
        assert secret not in retried.output + stopped.output
