"""Sandbox mode: no Blink URL given, so the service runs the simulator itself and serves its credentials."""

import shutil
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.services.conftest import eventually
from tipsplit.http.app import create_app
from tipsplit.runtime.sandbox import SNAPSHOT_FILE
from tipsplit.serving import BackgroundServer
from tipsplit.settings import Settings
from tipsplit.sim import persist
from tipsplit.sim.ledger import LedgerError
from tipsplit.sim.state import SimState


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_sandbox_serves_credentials_and_settles_a_sale(
    fresh_database_url: str, redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    port = free_port()
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=fresh_database_url, redis_url=redis_url, redis_key_prefix=key_prefix,
        data_dir=tmp_path, sim_port=0, poll_interval_seconds=0.5,
    )
    server = BackgroundServer(create_app(settings, public_url=f"http://127.0.0.1:{port}"), port=port)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            creds = (await client.get("/api/sandbox")).json()
            assert {"simUrl", "pos", "merchant", "recipients"} <= set(creds)
            assert [r["username"] for r in creds["recipients"]] == ["alice_tips", "bob_tips", "carol_tips"]
            assert (tmp_path / "encryption.keys").exists()
            merchant = creds["merchant"]
            names = [r["username"] for r in creds["recipients"]]
            created = await client.post("/api/blink/create-invoice", json={
                "userWalletId": merchant["walletId"], "apiKey": merchant["apiKey"], "baseAmount": 2000,
                "tipPercent": 10, "tipRecipients": [{"username": names[0], "share": 50},
                                                    {"username": names[1], "share": 50}],
            })
            assert created.status_code == 200, created.text
            invoice = created.json()
            async with httpx.AsyncClient(base_url=creds["simUrl"], timeout=30) as sim:
                paid = await sim.post("/sim/pay", json={"paymentRequest": invoice["paymentRequest"]})
                assert paid.status_code == 200
                status = await eventually(
                    lambda: client.get(f"/api/payment-status/{invoice['paymentHash']}"),
                    lambda r: r.json()["status"] == "completed", timeout=20,
                )
                balance = (await sim.get(f"/sim/wallets/{merchant['walletId']}")).json()["balance"]
            assert balance == 2000
            assert [leg["amount"] for leg in status.json()["legs"]] == [2000, 100, 100]
            health = await client.get("/api/health")
            assert health.status_code == 200 and health.json()["sandbox"] is True
            for path in ("/api/stats", "/metrics", "/openapi.json"):
                assert (await client.get(path)).status_code == 200, f"{path} is open in sandbox mode"
    finally:
        await server.stop()


async def saved_status(data_dir: Path, payment_hash: str) -> str | None:
    """The invoice's status in the simulator ledger saved on disk (read into a scratch simulator)."""
    scratch = SimState.create()
    shutil.copy(data_dir / SNAPSHOT_FILE, data_dir / "scratch.pickle")
    if persist.load(scratch, data_dir / "scratch.pickle") is None:
        return None
    try:
        return scratch.ledger.invoice_status(scratch.ledger.invoice_by_hash(payment_hash)).value
    except LedgerError:
        return None


def sandbox_settings(database_url: str, redis_url: str, prefix: str, data_dir: Path) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=database_url, redis_url=redis_url, redis_key_prefix=prefix,
        data_dir=data_dir, sim_port=0, poll_interval_seconds=0.5,
    )


@asynccontextmanager
async def running_sandbox(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, Any]]]:
    """A sandbox service with its webhooks pointed at itself; yields a client and /api/sandbox's credentials."""
    port = free_port()
    server = BackgroundServer(create_app(settings, public_url=f"http://127.0.0.1:{port}"), port=port)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            yield client, (await client.get("/api/sandbox")).json()
    finally:
        await server.stop()


async def sell_and_settle(client: httpx.AsyncClient, creds: dict[str, Any]) -> dict[str, Any]:
    """The same sale every time: 2000 sats and a 10 % tip shared by the first two recipients."""
    merchant = creds["merchant"]
    created = await client.post("/api/blink/create-invoice", json={
        "userWalletId": merchant["walletId"], "apiKey": merchant["apiKey"], "baseAmount": 2000, "tipPercent": 10,
        "tipRecipients": [{"username": r["username"], "share": 50} for r in creds["recipients"][:2]],
    })
    assert created.status_code == 200, created.text
    invoice: dict[str, Any] = created.json()
    fresh = (await client.get(f"/api/payment-status/{invoice['paymentHash']}")).json()
    assert fresh["status"] == "pending", fresh
    async with httpx.AsyncClient(base_url=creds["simUrl"], timeout=30) as sim:
        paid = await sim.post("/sim/pay", json={"paymentRequest": invoice["paymentRequest"]})
        assert paid.status_code == 200, paid.text
    await eventually(lambda: client.get(f"/api/payment-status/{invoice['paymentHash']}"),
                     lambda r: r.json()["status"] == "completed", timeout=20)
    return invoice


async def test_a_restarted_sandbox_keeps_its_ledger_and_credentials_and_never_repeats_a_hash(
    fresh_database_url: str, redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    settings = sandbox_settings(fresh_database_url, redis_url, key_prefix, tmp_path)
    async with running_sandbox(settings) as (client, creds):
        first = await sell_and_settle(client, creds)
        # Saved while running, not only at shutdown: a crash would lose at most the last second.
        await eventually(lambda: saved_status(tmp_path, first["paymentHash"]), lambda status: status == "PAID",
                         timeout=10)
    async with running_sandbox(settings) as (client, again):
        assert {k: v for k, v in again.items() if k != "simUrl"} == {k: v for k, v in creds.items() if k != "simUrl"}
        second = await sell_and_settle(client, again)
        assert second["paymentHash"] != first["paymentHash"]
        async with httpx.AsyncClient(base_url=again["simUrl"], timeout=30) as sim:
            merchant = (await sim.get(f"/sim/wallets/{again['merchant']['walletId']}")).json()
            old_invoice = (await sim.get("/sim/ledger")).json()["invoices"]
    assert merchant["balance"] == 4000, "the first run's sale is still in the simulator's ledger"
    assert first["paymentHash"] in {i["paymentHash"] for i in old_invoice}
    assert not (tmp_path / "sandbox.json").exists()
