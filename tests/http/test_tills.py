"""Tills over HTTP: the owner creates them, a device sells with no key, a revoked till is refused, and every
state-changing route refuses what another site could make a browser send."""

import re

import httpx
import pytest

from tests.http.conftest import WEB_SETTINGS, form_token
from tests.services.conftest import World
from tipsplit.services.tills import TillSetupError, parse_presets, parse_team

pytestmark = pytest.mark.settings(**WEB_SETTINGS)

ATTACKER_PAGE = {"origin": "https://attacker.example", "sec-fetch-site": "cross-site"}
LINK = re.compile(r'id="till-link" readonly value="([^"]+)"')


async def create_till(world: World, owner: httpx.AsyncClient, **fields: str) -> tuple[int, str]:
    """Create a till as the owner (Bearer operator token); its id and the link's token."""
    form = {"name": "Front counter", "api_key": world.merchant.api_key, "display_currency": "BTC",
            "tip_presets": "10, 15, 20", "team": "alice 60\nbob 40", **fields}
    form["csrf_token"] = await form_token(owner, "/dashboard/tills")
    response = await owner.post("/dashboard/tills", data=form)
    assert response.status_code == 201, response.text
    link = LINK.search(response.text)
    assert link, response.text
    till_id = int(re.findall(r'data-till="(\d+)"', response.text)[0])
    return till_id, link.group(1).split("#", 1)[1]


async def pair(device: httpx.AsyncClient, token: str) -> httpx.Response:
    """Open the till link as till-pair.js does: the page's CSRF token, then the fragment's token posted once."""
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', (await device.get("/till")).text)
    assert csrf
    device.headers["x-csrf-token"] = csrf.group(1)
    return await device.post("/till/pair", json={"token": token})


def owner_client(world: World) -> httpx.AsyncClient:
    client = world.http()
    client.headers.update(world.operator)
    return client


def test_team_and_presets_are_read_as_the_owner_writes_them() -> None:
    team = parse_team("@alice 60\nbob 40\n")
    assert [(m.username, int(m.share)) for m in team] == [("alice", 60), ("bob", 40)]
    assert [str(m.share) for m in parse_team("alice, bob, carol")] == ["33.34", "33.33", "33.33"]
    with pytest.raises(TillSetupError, match="add up to 100 %; they add up to 90 %"):
        parse_team("alice 50\nbob 40")
    with pytest.raises(TillSetupError, match="for everyone on the team, or for nobody"):
        parse_team("alice 50\nbob")
    with pytest.raises(TillSetupError, match="line 2: 'b!' is not a Blink username"):
        parse_team("alice\nb!")
    assert [str(p) for p in parse_presets("5, 12.5 %, 20")] == ["5", "12.5", "20"]
    with pytest.raises(TillSetupError, match="above 0 and at most 100 %; got 150"):
        parse_presets("10, 150")


async def test_a_device_sells_with_no_key_and_only_for_its_own_till(world: World) -> None:
    async with owner_client(world) as owner, world.http() as device:
        till_id, token = await create_till(world, owner)
        page = await owner.get("/dashboard/tills")
        assert token not in page.text and world.merchant.api_key not in page.text
        assert (await pair(device, token)).status_code == 200
        till_page = await device.get("/till")
        assert till_page.status_code == 200 and "Front counter" in till_page.text
        assert world.merchant.api_key not in till_page.text and token not in till_page.text

        sale = await device.post("/till/invoice", json={"amount": "1000", "tipPercent": "15"})
        assert sale.status_code == 200, sale.text
        split = sale.json()["split"]
        assert (split["baseAmount"], split["tipAmount"]) == (1000, 150)
        assert [(leg["recipient"], leg["amount"]) for leg in split["legs"]] == [(None, 1000), ("alice", 90), ("bob", 60)]

        for forged in ({"amount": "1000", "tipPercent": "10", "recipients": [{"username": "carol"}]},
                       {"amount": "1000", "userWalletId": world.recipients["carol"].wallet_id},
                       {"amount": "1000", "apiKey": "x"}):
            refused = await device.post("/till/invoice", json=forged)
            assert refused.status_code == 400, refused.text

        paid = await world.pay(sale.json()["paymentRequest"])
        assert paid.status_code == 200
        done = await world.wait_for_status(device, sale.json()["paymentHash"], {"completed"})
        assert done["status"] == "completed"
        assert await world.balance(world.recipients["alice"]) == 90
        assert await world.balance(world.recipients["bob"]) == 60
        receipt = await device.get(f"/receipt/{sale.json()['paymentHash']}")
        assert receipt.status_code == 200
        assert "@alice (60.0 %)" in receipt.text and "1,150 sats" in receipt.text and "Front counter" in receipt.text
        assert till_id > 0


async def test_a_revoked_till_is_refused_at_its_next_request(world: World) -> None:
    async with owner_client(world) as owner, world.http() as device, world.http() as late:
        till_id, token = await create_till(world, owner)
        assert (await pair(device, token)).status_code == 200
        revoke = await owner.post(f"/dashboard/tills/{till_id}/revoke",
                                  data={"csrf_token": await form_token(owner, "/dashboard/tills")})
        assert revoke.status_code == 303, revoke.text
        refused = await device.post("/till/invoice", json={"amount": "500", "tipPercent": "0"})
        assert refused.status_code == 403 and "closed by the owner" in refused.json()["error"]
        assert (await device.get("/till")).status_code == 403
        assert (await pair(late, token)).status_code == 403
        assert (await pair(late, "x" * 43)).status_code == 404


async def test_the_owner_changes_the_team_and_the_next_sale_uses_it(world: World) -> None:
    async with owner_client(world) as owner, world.http() as device:
        till_id, token = await create_till(world, owner)
        await pair(device, token)
        csrf = await form_token(owner, "/dashboard/tills")
        bad = await owner.post(f"/dashboard/tills/{till_id}/team", data={
            "csrf_token": csrf, "team": "alice 70\ncarol 20", "tip_presets": "10", "display_currency": "BTC"})
        assert bad.status_code == 400 and "they add up to 90 %" in bad.text
        unknown = await owner.post(f"/dashboard/tills/{till_id}/team", data={
            "csrf_token": csrf, "team": "nobody_here", "tip_presets": "10", "display_currency": "BTC"})
        assert unknown.status_code == 400 and "Blink has no user named &#39;nobody_here&#39;" in unknown.text
        ok = await owner.post(f"/dashboard/tills/{till_id}/team", data={
            "csrf_token": csrf, "team": "carol", "tip_presets": "5, 10", "display_currency": "BTC"})
        assert ok.status_code == 303, ok.text
        sale = await device.post("/till/invoice", json={"amount": "2000", "tipPercent": "10"})
        assert [leg["recipient"] for leg in sale.json()["split"]["legs"]] == [None, "carol"]


async def test_creating_a_till_says_what_is_wrong(world: World) -> None:
    async with owner_client(world) as owner, world.http() as stranger:
        csrf = await form_token(owner, "/dashboard/tills")
        base = {"csrf_token": csrf, "name": "Bar", "api_key": world.merchant.api_key, "display_currency": "BTC",
                "tip_presets": "10", "team": "alice"}
        for change, words in (({"api_key": "not-a-key"}, "Blink refused this API key"),
                              ({"team": "alice 30\nbob 30"}, "they add up to 60 %"),
                              ({"display_currency": "XXX"}, "unknown display currency"),
                              ({"name": " "}, "give the till a name")):
            response = await owner.post("/dashboard/tills", data={**base, **change})
            assert response.status_code == 400, change
            assert words in response.text, (change, response.text[-2000:])
        csrf = await form_token(stranger, "/dashboard/login")
        anonymous = await stranger.post("/dashboard/tills", data={**base, "csrf_token": csrf})
        assert anonymous.status_code == 401


async def test_cancel_marks_only_an_unpaid_sale_of_the_same_till(world: World) -> None:
    async with owner_client(world) as owner, world.http() as device, world.http() as other:
        _, token = await create_till(world, owner)
        _, other_token = await create_till(world, owner, name="Terrace")
        await pair(device, token)
        await pair(other, other_token)
        sale = (await device.post("/till/invoice", json={"amount": "700", "tipPercent": "0"})).json()
        ph = sale["paymentHash"]
        assert "till_sale" in [e["type"] for e in (await world.status(device, ph))["events"]]
        assert (await other.post(f"/till/sales/{ph}/cancel")).status_code == 409
        assert (await device.post(f"/till/sales/{ph}/cancel")).status_code == 200
        # The status view cached in Redis by the poll above shows the cancellation at once.
        assert "sale_cancelled" in [e["type"] for e in (await world.status(device, ph))["events"]]
        assert (await device.post(f"/till/sales/{ph}/cancel")).status_code == 409
        dashboard = await owner.get("/dashboard")
        assert ">0</b><span>in progress" in dashboard.text.replace("\n", "")

        await world.pay(sale["paymentRequest"])
        done = await world.wait_for_status(device, ph, {"completed"})
        assert done["status"] == "completed", "a cancelled sale paid anyway is still forwarded"
        flagged = await owner.get("/dashboard/tills")
        assert "Cancelled but paid anyway" in flagged.text and ph in flagged.text
        assert "1 sale cancelled at a till was paid anyway" in (await owner.get("/dashboard")).text


async def test_every_till_route_refuses_a_cross_site_post(world: World) -> None:
    async with owner_client(world) as owner, world.http() as device:
        till_id, token = await create_till(world, owner)
        assert (await pair(device, token)).status_code == 200
        sale = (await device.post("/till/invoice", json={"amount": "300", "tipPercent": "0"})).json()
        owner_csrf = await form_token(owner, "/dashboard/tills")
        attempts = [
            (device, "/till/pair", {"json": {"token": token}}),
            (device, "/till/unpair", {}),
            (device, "/till/invoice", {"json": {"amount": "1", "tipPercent": "0"}}),
            (device, f"/till/sales/{sale['paymentHash']}/cancel", {}),
            (owner, "/dashboard/tills", {"data": {"csrf_token": owner_csrf, "name": "Evil", "team": "alice",
                                                  "api_key": world.merchant.api_key}}),
            (owner, f"/dashboard/tills/{till_id}/team", {"data": {"csrf_token": owner_csrf, "team": "alice",
                                                                  "tip_presets": "10", "display_currency": "BTC"}}),
            (owner, f"/dashboard/tills/{till_id}/revoke", {"data": {"csrf_token": owner_csrf}}),
        ]
        for client, path, body in attempts:
            forged = await client.post(path, headers=ATTACKER_PAGE, **body)  # type: ignore[arg-type]
            assert forged.status_code == 403, (path, forged.text)
            assert forged.json()["field"] == "csrf_token"
        device.headers.pop("x-csrf-token")
        tokenless = await device.post("/till/invoice", json={"amount": "1", "tipPercent": "0"})
        assert tokenless.status_code == 403
        assert (await owner.get("/dashboard/tills")).text.count("badge ok") == 1, "the till is still open"
