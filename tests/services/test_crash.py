"""A service process SIGKILLed in the middle of settlement: a restarted one finishes the job exactly once."""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.services.conftest import World, eventually

TWO_WAY = [{"username": "alice", "share": 50}, {"username": "bob", "share": 50}]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_env(world: World, port: int) -> dict[str, str]:
    s = world.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "BLINK"))}
    env.update(
        DATABASE_URL=s.database_url or "",
        REDIS_URL=s.redis_url or "",
        REDIS_KEY_PREFIX=s.redis_key_prefix,
        BLINK_API_URL=s.blink_api_url or "",
        BLINKPOS_API_KEY=s.blinkpos_api_key or "",
        BLINKPOS_BTC_WALLET_ID=s.blinkpos_btc_wallet_id or "",
        BLINK_WEBHOOK_SECRET=s.blink_webhook_secret or "",
        ENCRYPTION_KEYS=s.encryption_keys,
        TIPSPLIT_DATA_DIR=str(s.data_dir),
        PORT=str(port),
        POLL_INTERVAL_SECONDS="0.5",
        RECONCILE_INTERVAL_SECONDS="0.3",
        CLAIM_LEASE_SECONDS="5",
        LOG_FORMAT="json",
    )
    return env


async def start_service(world: World, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tipsplit", "serve", "--port", str(port)],
        env=service_env(world, port), stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    async def health() -> int:
        try:
            async with httpx.AsyncClient(timeout=2) as client:
                return (await client.get(f"{url}/api/health")).status_code
        except httpx.HTTPError:
            return 0

    await eventually(health, lambda code: code == 200, timeout=30, every=0.2)
    return process, url


@pytest.mark.instances(0)
async def test_sigkill_mid_settlement_then_restart_completes_once(world: World, tmp_path: Path) -> None:
    log = tmp_path / "service.log"
    first, url = await start_service(world, log)
    try:
        await world.fault(operation="lnInvoicePaymentSend", latencyMs=1500, count=2)
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            invoice = await world.create_invoice(client, baseAmount=5000, tipAmount=500, tipRecipients=TWO_WAY)
            await world.pay(invoice["paymentRequest"])
            await eventually(
                lambda: world.status(client, invoice["paymentHash"]),
                lambda s: any(leg["status"] == "paying" for leg in s["legs"]),
                timeout=20, every=0.05,
            )
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()

    second, url = await start_service(world, log)
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            status = await world.wait_for_status(client, invoice["paymentHash"], {"completed"}, timeout=45)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(15)
    assert [leg["status"] for leg in status["legs"]] == ["succeeded"] * 3
    ledger = await world.ledger()
    for account, amount in ((world.merchant, 5000), (world.recipients["alice"], 250), (world.recipients["bob"], 250)):
        received = [p for p in ledger["payments"] if p["recipientWalletId"] == account.wallet_id]
        assert len(received) == 1, received
        assert await world.balance(account) == amount
    assert ledger["violations"] == []
