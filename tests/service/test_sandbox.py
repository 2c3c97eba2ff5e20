"""Sandbox mode: no Blink URL given, so the service runs the simulator itself and serves its credentials."""

import socket
from pathlib import Path

import httpx

from tests.service.conftest import eventually
from tipsplit.api.app import create_app
from tipsplit.config import Settings
from tipsplit.serving import BackgroundServer


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
            assert len(creds["recipients"]) == 2
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
