"""Least privilege: a merchant's key that could spend is refused (or, where allowed, flagged); the POS key must settle."""

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.http.conftest import form_token
from tests.services.conftest import ALL_SCOPES, Account, World, _account, service_settings
from tipsplit.runtime.assembly import start_runtime
from tipsplit.services.merchant_keys import PosKeyError
from tipsplit.sim.server import SimServer

OPERATOR_TOKEN = "merchant-keys-operator-token"
SESSION_SECRET = "merchant-keys-session-secret-0123456789"
WEB = {"operator_token": OPERATOR_TOKEN, "session_secret": SESSION_SECRET}


async def spender(world: World) -> Account:
    """A second merchant whose only key may also receive and spend."""
    return await _account(world.sim_http, "spending_merchant", ALL_SCOPES)


def order(merchant: Account, **fields: Any) -> dict[str, Any]:
    return {"userWalletId": merchant.wallet_id, "apiKey": merchant.api_key, "baseAmount": 1000, **fields}


@pytest.mark.settings(**WEB)
async def test_a_merchant_key_with_write_is_refused_at_create_invoice_and_sign_in(world: World) -> None:
    merchant = await spender(world)
    await world.clear_operations()
    async with world.http() as client:
        refused = await client.post("/api/blink/create-invoice", json=order(merchant))
        signin = await client.post("/signin", data={"api_key": merchant.api_key, "csrf_token": await form_token(client)})
        page = await client.get("/")
    assert refused.status_code == 400, refused.text
    body = refused.json()
    assert body["field"] == "apiKey" and "WRITE" in body["error"]
    assert "create a READ-only API key in the Blink dashboard" in body["error"]
    assert merchant.api_key not in refused.text
    assert "lnInvoiceCreate" not in await world.operations()
    assert signin.status_code == 400 and "READ-only API key" in signin.text and "tipsplit_pos" not in signin.cookies
    assert "READ-only" in page.text
    async with world.http() as client:
        ok = await client.post("/signin", data={"api_key": world.merchant.api_key, "csrf_token": await form_token(client)})
    assert ok.status_code == 303


@pytest.mark.settings(allow_write_merchant_keys=True, **WEB)
async def test_write_keys_allowed_by_setting_are_logged_and_shown_on_the_dashboard(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    merchant = await spender(world)
    with caplog.at_level(logging.WARNING, logger="tipsplit.services.merchant_keys"):
        async with world.http() as client:
            created = await client.post("/api/blink/create-invoice", json=order(merchant))
    assert created.status_code == 200, created.text
    warnings = [r.getMessage() for r in caplog.records if r.name == "tipsplit.services.merchant_keys"]
    assert any("WRITE" in w and "spending_merchant" in w for w in warnings), warnings
    assert not any(merchant.api_key in r.getMessage() for r in caplog.records)
    async with world.http() as client:
        dashboard = await client.get("/dashboard", headers={"authorization": f"Bearer {OPERATOR_TOKEN}"})
    assert dashboard.status_code == 200 and "ALLOW_WRITE_MERCHANT_KEYS is on" in dashboard.text


async def test_a_read_only_key_is_checked_once_per_cache_period(world: World) -> None:
    await world.clear_operations()
    async with world.http() as client:
        for base in (100, 200, 300):
            await world.create_invoice(client, baseAmount=base, tipAmount=0)
    asked = await world.operations()
    assert asked.get("me") == 1 and asked.get("authorization") == 1, asked
    assert asked.get("lnInvoiceCreate") == 3


@pytest.mark.parametrize("scopes, missing", [
    (("READ", "RECEIVE"), "lacks the Blink scope\\(s\\) WRITE"),
    (("READ", "WRITE"), "lacks the Blink scope\\(s\\) RECEIVE"),
    (("RECEIVE", "WRITE"), "Blink refused BLINKPOS_API_KEY"),
])
async def test_the_service_does_not_start_with_a_pos_key_that_cannot_settle(
    fresh_database_url: str, redis_url: str, key_prefix: str, tmp_path: Path, scopes: tuple[str, ...], missing: str
) -> None:
    async with SimServer() as sim, httpx.AsyncClient(base_url=sim.url) as sim_http:
        pos = await _account(sim_http, "weak_pos", scopes)
        settings = service_settings(sim, pos, fresh_database_url, redis_url, key_prefix, tmp_path)
        with pytest.raises(PosKeyError, match=missing) as refused:
            await start_runtime(settings)
    assert pos.api_key not in str(refused.value)
