"""Every state-changing route of the pages refuses what another site could make a browser send."""

import pytest

from tests.http.conftest import OPERATOR_TOKEN, WEB_SETTINGS, form_token, sign_in_merchant
from tests.services.conftest import World

pytestmark = pytest.mark.settings(**WEB_SETTINGS)

ATTACKER_PAGE = {"origin": "https://attacker.example", "sec-fetch-site": "cross-site"}


async def _attacker_account(world: World) -> dict[str, str]:
    response = await world.sim_http.post("/sim/accounts", json={"username": "mallory", "balance": 0})
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


async def test_a_cross_site_sign_in_cannot_switch_the_till_to_another_account(world: World) -> None:
    """The auto-submitting form of a page the till's browser opens: no token, the browser's cross-site headers."""
    attacker = await _attacker_account(world)
    async with world.http() as till:
        await sign_in_merchant(till, world)
        forged = await till.post("/signin", data={"api_key": attacker["apiKey"]}, headers=ATTACKER_PAGE)
        assert forged.status_code == 403, forged.text
        assert forged.json()["field"] == "csrf_token" and "cross-site" in forged.json()["error"]
        assert "tipsplit_pos" not in forged.headers.get("set-cookie", "")
        page = await till.get("/")
        assert 'id="base-username">@merchant<' in page.text.replace("\n", "")
        assert "mallory" not in page.text


async def test_a_stolen_token_is_refused_from_another_origin(world: World) -> None:
    """Even with a valid token and cookie, a request whose Origin is another site's is refused."""
    async with world.http() as http:
        token = await form_token(http)
        for headers in (ATTACKER_PAGE, {"origin": "https://attacker.example"}, {"sec-fetch-site": "same-site"},
                        {"origin": "null"}):
            response = await http.post("/signin", data={"api_key": world.merchant.api_key, "csrf_token": token},
                                       headers=headers)
            assert response.status_code == 403, (headers, response.text)
        own_origin = {"origin": world.service.url, "sec-fetch-site": "same-origin"}
        ok = await http.post("/signin", data={"api_key": world.merchant.api_key, "csrf_token": token},
                             headers=own_origin)
        assert ok.status_code == 303, ok.text


async def test_without_browser_headers_the_token_alone_decides(world: World) -> None:
    """curl sends neither Origin nor Sec-Fetch-Site: no token, a forged one, or another browser's one is refused."""
    async with world.http() as http, world.http() as other:
        token = await form_token(http)
        foreign = await form_token(other)
        for data in ({}, {"csrf_token": "forged"}, {"csrf_token": foreign}, {"csrf_token": token[:-2] + "xx"}):
            response = await http.post("/signin", data={"api_key": world.merchant.api_key, **data})
            assert response.status_code == 403, (data, response.text)
            assert response.json()["field"] == "csrf_token"
        http.cookies.clear()
        cookieless = await http.post("/signin", data={"api_key": world.merchant.api_key, "csrf_token": token})
        assert cookieless.status_code == 403


async def test_every_state_changing_route_needs_the_token(world: World) -> None:
    """Sign-in, sign-out, wallet choice, sale, dashboard login, logout and retry: 403 without the token,
    and nothing changes (the merchant stays signed in, the operator stays signed out)."""
    async with world.http() as http:
        await sign_in_merchant(http, world)
        del http.headers["x-csrf-token"]
        attempts = [
            ("/signin", {"data": {"api_key": world.merchant.api_key}}),
            ("/signout", {}),
            ("/pos/wallet", {"data": {"wallet_id": world.merchant.wallet_id}}),
            ("/pos/invoice", {"json": {"amount": "100"}}),
            ("/dashboard/login", {"data": {"token": OPERATOR_TOKEN}}),
            ("/dashboard/logout", {}),
            (f"/dashboard/payments/{'ab' * 32}/retry", {"headers": {"authorization": f"Bearer {OPERATOR_TOKEN}"}}),
        ]
        for path, kwargs in attempts:
            response = await http.post(path, **kwargs)  # type: ignore[arg-type]
            assert response.status_code == 403, (path, response.status_code, response.text[:200])
            assert response.json()["field"] == "csrf_token", path
        assert 'id="keypad"' in (await http.get("/")).text, "still signed in"
        assert (await http.get("/dashboard")).status_code == 303, "no operator session was made"


async def test_the_page_token_lets_the_pos_sell_and_sign_out(world: World) -> None:
    async with world.http() as http:
        await sign_in_merchant(http, world)
        page = (await http.get("/")).text
        assert f'<meta name="csrf-token" content="{http.headers["x-csrf-token"]}">' in page
        sale = await http.post("/pos/invoice", json={"amount": "100"})
        assert sale.status_code == 200, sale.text
        out = await http.post("/signout", data={"csrf_token": http.headers["x-csrf-token"]})
        assert out.status_code == 303
        assert 'id="api_key"' in (await http.get("/")).text


@pytest.mark.settings(operator_token=OPERATOR_TOKEN)
async def test_forms_are_off_without_session_secret_outside_sandbox(world: World) -> None:
    """No SESSION_SECRET, no signer: no token can be valid, and the page says why."""
    async with world.http() as http:
        page = await http.get("/")
        assert "the operator must set SESSION_SECRET" in page.text
        refused = await http.post("/signin", data={"api_key": world.merchant.api_key, "csrf_token": "x"})
        assert refused.status_code == 403 and "SESSION_SECRET" in refused.json()["error"]
