"""X-Forwarded-For / X-Forwarded-Proto count only from TRUSTED_PROXIES; SECURE_COOKIES forces Secure cookies."""

import httpx
import pytest

from tests.http.conftest import WEB_SETTINGS
from tests.services.conftest import World


def _sale(world: World) -> dict[str, object]:
    return {"userWalletId": world.merchant.wallet_id, "apiKey": world.merchant.api_key, "baseAmount": 10}


async def _codes_from_three_claimed_ips(world: World) -> list[int]:
    async with world.http() as client:
        return [
            (await client.post("/api/blink/create-invoice", json=_sale(world),
                               headers={"x-forwarded-for": f"198.51.100.{n}"})).status_code
            for n in range(3)
        ]


def _cookie_flags(response: httpx.Response, name: str) -> set[str]:
    header = next(h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}="))
    return {part.strip().lower() for part in header.split(";")[1:]}


@pytest.mark.settings(**WEB_SETTINGS, rate_limit_per_ip=2)
async def test_forwarded_headers_from_anyone_else_are_ignored(world: World) -> None:
    """Reproduction: any client could claim another IP (and dodge the per-IP limit) or claim HTTPS."""
    assert await _codes_from_three_claimed_ips(world) == [200, 200, 429]
    async with world.http() as client:
        page = await client.get("/", headers={"x-forwarded-proto": "https"})
    assert "secure" not in _cookie_flags(page, "tipsplit_csrf")


@pytest.mark.settings(**WEB_SETTINGS, rate_limit_per_ip=2, trusted_proxies="10.0.0.0/8, 127.0.0.1")
async def test_a_trusted_proxy_names_the_client_and_the_scheme(world: World) -> None:
    assert await _codes_from_three_claimed_ips(world) == [200, 200, 200]
    async with world.http() as client:
        page = await client.get("/", headers={"x-forwarded-proto": "https"})
        plain = await client.get("/")
    assert "secure" in _cookie_flags(page, "tipsplit_csrf")
    assert "secure" not in _cookie_flags(plain, "tipsplit_csrf")


@pytest.mark.settings(**WEB_SETTINGS, secure_cookies=True)
async def test_secure_cookies_marks_every_cookie_secure(world: World) -> None:
    async with world.http() as client:
        page = await client.get("/")
    assert "secure" in _cookie_flags(page, "tipsplit_csrf")


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    from tipsplit.settings import SettingsError, load_settings

    assert load_settings(_env_file=None, trusted_proxies=" 10.1.2.3 ,192.168.0.0/16,::1").proxy_hosts == [
        "10.1.2.3", "192.168.0.0/16", "::1"]
    with pytest.raises(SettingsError, match="TRUSTED_PROXIES: .*'lb.internal' is not an IP address"):
        load_settings(_env_file=None, trusted_proxies="lb.internal")
